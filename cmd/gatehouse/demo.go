package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// cmdDemo runs the demo upstreams in-process on free loopback ports and the
// gateway in front of them with examples/demo.yaml.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway `address`")
	adminListen := fs.String("admin-listen", "127.0.0.1:9901", "admin `address`")
	restListen := fs.String("rest-listen", "127.0.0.1:0", "`address` of the demo REST upstream (port 0: any free port)")
	soapListen := fs.String("soap-listen", "127.0.0.1:0", "`address` of the demo SOAP upstream (port 0: any free port)")
	issuerListen := fs.String("issuer-listen", "127.0.0.1:0", "`address` of the demo token issuer (port 0: any free port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	up, err := startDemoUpstreams(*restListen, *soapListen, *issuerListen, log)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse demo:", err)
		return 1
	}
	defer up.close()
	tokens, err := demoTokens(up.issuer)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse demo:", err)
		return 1
	}

	vars := map[string]string{
		"DEMO_LISTEN":        *listen,
		"DEMO_ADMIN_LISTEN":  *adminListen,
		"DEMO_REST_UPSTREAM": up.restURL,
		"DEMO_SOAP_UPSTREAM": up.soapURL,
		"DEMO_ISSUER":        up.issuer.URL(),
	}
	lookup := func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
	cfg, err := config.LoadBytes("examples/demo.yaml", examples.DemoConfig, lookup)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	g, err := gateway.New(cfg, gateway.Options{Registry: builtin.Registry(), Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := g.Start(); err != nil {
		fmt.Fprintln(stderr, err)
		g.Close()
		return 1
	}
	printDemoHelp(stdout, g.Addr("public").String(), g.AdminAddr(), tokens)
	fmt.Fprintf(stdout, "Demo upstreams (direct, bypassing the gateway): REST %s, SOAP %s; token issuer %s\n", up.restURL, up.soapURL, up.issuer.URL())
	return waitAndStop(g, cfg.ShutdownTimeout.Std(), nil, log)
}

type demoUpstreams struct {
	restURL, soapURL string
	issuer           *demo.Issuer
	servers          []*http.Server
}

func (d *demoUpstreams) close() {
	for _, s := range d.servers {
		s.Close()
	}
}

func startDemoUpstreams(restAddr, soapAddr, issuerAddr string, log *slog.Logger) (*demoUpstreams, error) {
	store := demo.NewStore()
	// The WSDL must point clients at the gateway, not at the upstream, so
	// its endpoint comes from the forwarding headers the gateway sets.
	endpoint := func(r *http.Request) string {
		proto, host := r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host")
		if proto == "" {
			proto = "http"
		}
		if host == "" {
			host = r.Host
		}
		return proto + "://" + host + "/soap/products"
	}
	d := &demoUpstreams{}
	var issuerURL string
	for _, h := range []struct {
		url     *string
		addr    string
		handler func(url string) (http.Handler, error)
	}{
		{&d.restURL, restAddr, func(string) (http.Handler, error) { return demo.RESTHandler(store), nil }},
		{&d.soapURL, soapAddr, func(string) (http.Handler, error) { return demo.SOAPHandler(store, endpoint), nil }},
		// The issuer's identifier is its own URL, known once it listens.
		{&issuerURL, issuerAddr, func(url string) (http.Handler, error) {
			is, err := demo.NewIssuer(url, nil)
			if err != nil {
				return nil, err
			}
			d.issuer = is
			return is.Handler(), nil
		}},
	} {
		ln, err := net.Listen("tcp", h.addr)
		if err != nil {
			d.close()
			return nil, err
		}
		*h.url = "http://" + ln.Addr().String()
		handler, err := h.handler(*h.url)
		if err != nil {
			ln.Close()
			d.close()
			return nil, err
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		d.servers = append(d.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("demo upstream stopped", "err", err)
			}
		}()
	}
	return d, nil
}

// demoClient is one of the demo's API clients and the access token it
// was given.
type demoClient struct {
	env, client, scope, dept string
	token                    string
}

// demoTokens mints a token for each demo client: a reader, a writer of the
// catalog department and a writer of another department, so that scopes
// and the expr rule each have a refusal to show.
func demoTokens(is *demo.Issuer) ([]demoClient, error) {
	clients := []demoClient{
		{env: "READER", client: "reader-app", scope: "products:read", dept: "catalog"},
		{env: "WRITER", client: "writer-app", scope: "products:read products:write", dept: "catalog"},
		{env: "SALES", client: "sales-app", scope: "products:read products:write", dept: "sales"},
	}
	for i := range clients {
		c := &clients[i]
		tok, err := is.Mint(demo.Token{Subject: c.client, ClientID: c.client, Audience: "gatehouse-demo",
			Scope: c.scope, Claims: map[string]any{"dept": c.dept}, TTL: 24 * time.Hour})
		if err != nil {
			return nil, err
		}
		c.token = tok
	}
	return clients, nil
}

func printDemoHelp(w io.Writer, addr string, admin net.Addr, clients []demoClient) {
	base := "http://" + addr
	fmt.Fprintf(w, "Gatehouse demo is running on %s\n\nAccess tokens of the demo clients (valid 24 hours):\n", base)
	for _, c := range clients {
		fmt.Fprintf(w, "  # %s: scope %q, dept %s\n  export %s=%s\n", c.client, c.scope, c.dept, c.env, c.token)
	}
	fmt.Fprintf(w, `
Try:
  curl -i %[1]s/product                             # 401: no token
  curl -i %[1]s/product -H "Authorization: Bearer $READER"
  curl -i %[1]s/product/p-1001 -H "Authorization: Bearer $READER"
  curl -i -X POST %[1]s/product -H "Authorization: Bearer $READER" \
       -H 'Content-Type: application/json' -d '{"name":"Lamp","price":25.5}'     # 403 insufficient_scope
  curl -i -X POST %[1]s/product -H "Authorization: Bearer $SALES" \
       -H 'Content-Type: application/json' -d '{"name":"Lamp","price":25.5}'     # 403 not_catalog (expr)
  curl -i -X POST %[1]s/product -H "Authorization: Bearer $WRITER" \
       -H 'Content-Type: application/json' -d '{"name":"Lamp","price":25.5,"currency":"EUR"}'
  curl -i %[1]s/product/p-1001 -X DELETE -H "Authorization: Bearer $WRITER"  # 405: the route allows GET only
  curl -i %[1]s/nowhere                           # 404 problem+json from the gateway
  curl -s '%[1]s/soap/products?wsdl' | head        # the SOAP service's WSDL
  curl -i %[1]s/soap/products -H 'Content-Type: text/xml; charset=utf-8' \
       -H 'SOAPAction: "urn:gatehouse:demo:products/GetProduct"' \
       --data '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetProduct xmlns="urn:gatehouse:demo:products"><id>p-1001</id></GetProduct></soap:Body></soap:Envelope>'
`, base)
	if admin != nil {
		fmt.Fprintf(w, "  curl -s http://%s/metrics | grep gatehouse_   # Prometheus metrics\n", admin)
	}
	fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
}
