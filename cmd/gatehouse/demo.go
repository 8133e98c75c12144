package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/users"
)

// Demo-only credentials, written in examples/demo.yaml as hashes or read
// from the variables below, and printed in the banner: they are public.
const demoAlicePassword = "alice-demo-password"

// demoUsers are the people who may log in to the demo's web application
// (/app) at the embedded authorization server's login page; `gatehouse
// demo` writes them, hashed, to the users file. DEMO ONLY: public.
var demoUsers = []struct{ username, password, name, email string }{
	{"alice", demoAlicePassword, "Alice Example", "alice@example.com"},
	{"bob", "bob-demo-password", "Bob Example", "bob@example.com"},
}

// demoClients are the authorization server's demo clients (their secret
// hashes are in examples/demo.yaml) and what each shows.
var demoClients = []demoClient{
	{env: "READER", id: "demo-reader", secret: "demo-reader-secret", scope: "products:read", note: "may read"},
	{env: "WRITER", id: "demo-writer", secret: "demo-writer-secret", scope: "products:read products:write", note: "may also create (dept catalog)"},
	{env: "SALES", id: "demo-sales", secret: "demo-sales-secret", scope: "products:read products:write", note: "has the write scope, but a CEL rule lets only dept catalog create"},
}

// cmdDemo runs the demo upstreams in-process on free loopback ports and the
// gateway in front of them with examples/demo.yaml.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway `address`")
	adminListen := fs.String("admin-listen", "127.0.0.1:9901", "admin `address`")
	restListen := fs.String("rest-listen", "127.0.0.1:0", "`address` of the demo REST upstream (port 0: any free port)")
	soapListen := fs.String("soap-listen", "127.0.0.1:0", "`address` of the demo SOAP upstream (port 0: any free port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	defer tuneGC()()
	if err := runDemo(*listen, *adminListen, *restListen, *soapListen, stdout, log); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func runDemo(listen, adminListen, restListen, soapListen string, stdout io.Writer, log *slog.Logger) error {
	sigs, stopSignals := catchSignals()
	defer stopSignals()
	d, err := startDemo(listen, adminListen, restListen, soapListen, log)
	if err != nil {
		return err
	}
	defer d.close()
	printDemoHelp(stdout, d.base, d.g.AdminAddr(), d.clients, d.pki, d.up.cardProductID)
	fmt.Fprintf(stdout, "Demo upstreams (direct, bypassing the gateway): REST %s, SOAP %s\n", d.up.restURL, d.up.soapURL)
	if code := waitAndStop(d.g, sigs, d.cfg.ShutdownTimeout.Std(), nil, log); code != 0 {
		return errors.New("gatehouse demo: stopped with errors")
	}
	return nil
}

// runningDemo is a started demo: its upstreams, the gateway in front of
// them with examples/demo.yaml, and the tokens of the demo clients.
type runningDemo struct {
	g       *gateway.Gateway
	cfg     *config.Config
	base    string // the gateway's URL, http://listen
	up      *demoUpstreams
	pki     *demo.PKI
	clients []demoClient
	dir     string
}

// close stops the gateway (draining for at most 5 s; after waitAndStop,
// which drained it already, this returns at once) and the upstreams, and
// removes the demo's files.
func (d *runningDemo) close() {
	if d.g != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d.g.Shutdown(ctx)
		cancel()
	}
	if d.up != nil {
		d.up.close()
	}
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
}

// startDemo starts what `gatehouse demo` runs: the demo upstreams on
// restListen and soapListen, and the gateway with examples/demo.yaml on
// listen (a fixed port: the issuer URL and the WSDL name it) and
// adminListen; then it fetches a token for each demo client.
func startDemo(listen, adminListen, restListen, soapListen string, log *slog.Logger) (_ *runningDemo, err error) {
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "0" {
		// The issuer URL (and the WSDL's endpoint) name this address.
		return nil, fmt.Errorf("gatehouse demo: --listen %q: give a host and a fixed port", listen)
	}
	d := &runningDemo{base: "http://" + listen}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.up, err = startDemoUpstreams(restListen, soapListen, log); err != nil {
		return nil, fmt.Errorf("gatehouse demo: %w", err)
	}

	// The certificates of the signing SOAP client and the WSDL the XML
	// firewall checks operations against; gone when the demo stops.
	if d.dir, err = os.MkdirTemp("", "gatehouse-demo-"); err != nil {
		return nil, fmt.Errorf("gatehouse demo: %w", err)
	}
	if d.pki, err = demo.WritePKI(d.dir, time.Now(), 7*24*time.Hour); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "products.wsdl"), demo.WSDL(d.base+"/soap/products"), 0o644); err != nil {
		return nil, fmt.Errorf("gatehouse demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "products.openapi.yaml"), examples.ProductsOpenAPI, 0o644); err != nil {
		return nil, fmt.Errorf("gatehouse demo: %w", err)
	}
	if err := writeDemoUsers(filepath.Join(d.dir, "users.yaml")); err != nil {
		return nil, fmt.Errorf("gatehouse demo: %w", err)
	}
	kek := make([]byte, 32)
	rand.Read(kek)

	vars := map[string]string{
		"DEMO_LISTEN":         listen,
		"DEMO_ADMIN_LISTEN":   adminListen,
		"DEMO_REST_UPSTREAM":  d.up.restURL,
		"DEMO_SOAP_UPSTREAM":  d.up.soapURL,
		"DEMO_APP_UPSTREAM":   d.up.appURL,
		"DEMO_ISSUER":         d.base,
		"DEMO_AS_KEK":         base64.StdEncoding.EncodeToString(kek),
		"DEMO_DIR":            d.dir,
		"DEMO_ALICE_PASSWORD": demoAlicePassword,
	}
	lookup := func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
	if d.cfg, err = config.LoadBytes("examples/demo.yaml", examples.DemoConfig, lookup); err != nil {
		return nil, err
	}
	g, err := gateway.New(d.cfg, gateway.Options{Registry: builtin.Registry(), Logger: log})
	if err != nil {
		return nil, err
	}
	if err := g.Start(); err != nil {
		g.Close()
		return nil, err
	}
	d.g = g
	if d.clients, err = demoTokens(d.base); err != nil {
		return nil, fmt.Errorf("gatehouse demo: %w", err)
	}
	return d, nil
}

type demoUpstreams struct {
	restURL, soapURL, appURL string
	// cardProductID is the product whose name holds a card number, which
	// every data-serving route must mask.
	cardProductID string
	servers       []*http.Server
}

func (d *demoUpstreams) close() {
	for _, s := range d.servers {
		s.Close()
	}
}

func startDemoUpstreams(restAddr, soapAddr string, log *slog.Logger) (*demoUpstreams, error) {
	store := demo.NewStore()
	// A product whose name holds a test card number (a well-known one that
	// no bank issues), so that the dlp policy has something to mask.
	card, err := store.Create(demo.NewProduct{Name: "Gift card (test card 4111 1111 1111 1111)", Price: 25, Currency: "EUR"})
	if err != nil {
		return nil, err
	}
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
	d := &demoUpstreams{cardProductID: card.ID}
	for _, h := range []struct {
		url     *string
		addr    string
		handler http.Handler
	}{
		{&d.restURL, restAddr, demo.RESTHandler(store)},
		{&d.soapURL, soapAddr, demo.SOAPHandler(store, endpoint)},
		// The web application: on any free loopback port (only the
		// gateway calls it).
		{&d.appURL, "127.0.0.1:0", demo.AppHandler(store)},
	} {
		ln, err := net.Listen("tcp", h.addr)
		if err != nil {
			d.close()
			return nil, err
		}
		*h.url = "http://" + ln.Addr().String()
		srv := &http.Server{Handler: h.handler, ReadHeaderTimeout: 10 * time.Second}
		d.servers = append(d.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("demo upstream stopped", "err", err)
			}
		}()
	}
	return d, nil
}

// writeDemoUsers writes the users file of the demo's users, their
// passwords hashed with argon2id as `gatehouse users add` does.
func writeDemoUsers(path string) error {
	var b strings.Builder
	b.WriteString("# DEMO ONLY users of gatehouse demo; their passwords are public.\nusers:\n")
	for _, u := range demoUsers {
		h, err := users.HashPassword(u.password)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  - username: %s\n    password_hash: %q\n    name: %s\n    email: %s\n    email_verified: true\n",
			u.username, h, u.name, u.email)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// demoClient is one of the demo's OAuth clients and the access token it
// got from the embedded authorization server.
type demoClient struct {
	env, id, secret, scope, note string
	token                        string
}

// demoTokens gets a token for each demo client from the running gateway's
// token endpoint, the way any client would (client credentials, HTTP
// Basic), so that the banner can offer them ready to paste.
func demoTokens(base string) ([]demoClient, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	clients := append([]demoClient(nil), demoClients...)
	for i := range clients {
		c := &clients[i]
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {c.scope}}
		req, err := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.id, c.secret)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		var body struct {
			AccessToken string `json:"access_token"`
			Error       string `json:"error"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
			return nil, fmt.Errorf("getting a token for %s: %s %s %v", c.id, resp.Status, body.Error, err)
		}
		c.token = body.AccessToken
	}
	return clients, nil
}

// printDemoHelp prints the banner: the clients and their tokens, and what
// to try; cardID is the product whose name holds a card number.
func printDemoHelp(w io.Writer, base string, admin net.Addr, clients []demoClient, pki *demo.PKI, cardID string) {
	fmt.Fprintf(w, "Gatehouse demo is running on %s\n\n", base)
	fmt.Fprintf(w, "DEMO ONLY clients of the embedded authorization server (their secrets are public):\n")
	for _, c := range clients {
		fmt.Fprintf(w, "  %-12s secret %-19s scope %q: %s\n", c.id, c.secret, c.scope, c.note)
	}
	fmt.Fprintf(w, `
Get a token (client credentials) with curl or with gatehouse itself:
  curl -s -u demo-reader:demo-reader-secret -d grant_type=client_credentials -d scope=products:read %[1]s/oauth2/token
  gatehouse token --issuer %[1]s --client demo-reader --secret demo-reader-secret --scope products:read

Or take these, fetched just now (valid one hour):
`, base)
	for _, c := range clients {
		fmt.Fprintf(w, "  export %s=%s\n", c.env, c.token)
	}
	fmt.Fprintf(w, `
Try the REST API:
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
  curl -s %[1]s/product/%[6]s -H "Authorization: Bearer $READER"   # dlp: the card number in its name is masked
  curl -i "%[1]s/product/p-1001?q=1'%%20OR%%20'1'='1'%%20--" -H "Authorization: Bearer $READER"  # 403 waf_blocked
  # Every route that serves data (/product, /product/{id}, the SOAP calls)
  # has the same protections: authentication, a rate limit per caller
  # (20 a second), the WAF, dlp, a daily quota.

The SOAP ProductService (WS-Security; the WSDL is public):
  curl -s '%[1]s/soap/products?wsdl' | head
  # GetProduct as the DEMO ONLY user alice (UsernameToken; PasswordText is
  # allowed here only because the demo listens without TLS):
  curl -i %[1]s/soap/products -H 'Content-Type: text/xml; charset=utf-8' \
       -H 'SOAPAction: "urn:gatehouse:demo:products/GetProduct"' \
       --data '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsu:Timestamp><wsu:Created>'"$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)"'</wsu:Created></wsu:Timestamp><wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">%[2]s</wsse:Password></wsse:UsernameToken></wsse:Security></soap:Header><soap:Body><GetProduct xmlns="urn:gatehouse:demo:products"><id>p-1001</id></GetProduct></soap:Body></soap:Envelope>'
  # CreateProduct needs a message signed (X.509, RSA-SHA256 over Body and
  # Timestamp) with the demo client certificate; see the README for a
  # node-soap client. The certificate, its key and the CA the gateway trusts:
  #   %[3]s
  #   %[4]s
  #   %[5]s
  # GetProductCost (the purchase cost, confidential) needs the Body
  # encrypted to the gateway's certificate (XML Encryption, RSA-OAEP +
  # AES-256-GCM; xmlsec1 --encrypt, see the README):
  #   %[7]s
`, base, demoAlicePassword, pki.CertFile, pki.KeyFile, pki.CAFile, cardID, pki.EncCertFile)
	fmt.Fprintf(w, `
The web application for people (OpenID Connect login at the embedded
authorization server, a session at the gateway):
  open %[1]s/app in a browser and sign in as a DEMO ONLY user:
`, base)
	for _, u := range demoUsers {
		fmt.Fprintf(w, "    %-6s password %s\n", u.username, u.password)
	}
	fmt.Fprintf(w, `  # "Hello alice, here are your products". The page's link to %[1]s/product
  # calls the products API with the same session, through its policies
  # (scopes, WAF, rate limit, quota). Sign out: %[1]s/app/logout
  curl -i %[1]s/app -H 'Accept: text/html'       # 302 to the login page
  curl -i %[1]s/app                              # 401: an API call, no session
`, base)
	if admin != nil {
		fmt.Fprintf(w, `
Watch it:
  http://%[1]s/console                              # the web console: traffic, denials, audit events
  gatehouse explain REQUEST_ID --admin http://%[1]s   # why a request (its X-Request-Id) was refused
  curl -s http://%[1]s/api/v1/routes                # the admin API (OpenAPI: /api/v1/openapi.json)
  curl -s http://%[1]s/metrics | grep gatehouse_     # Prometheus metrics
`, admin)
	}
	fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
}
