package xmlguard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/npmtest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// nodeSOAPDir holds the node-soap client; package.json pins soap 1.13.0.
// node_modules is installed there with npm ci when missing.
const (
	nodeSOAPDir     = "testdata/nodesoap"
	nodeSOAPVersion = "1.13.0"
)

// captured is one request as it reached the test server.
type captured struct {
	header http.Header
	body   []byte
}

// TestNodeSOAPRequests runs node-soap, an independent SOAP stack, against
// the demo ProductService behind the guard (built from the service's own
// WSDL, with require_action_match), and checks that its real SOAP 1.1
// requests pass and reach the service, that its SOAP 1.2 request passes a
// 1.2 guard, and that the same requests tampered with are refused. It
// installs node-soap with npm ci when missing and skips only when node or
// npm are not installed.
func TestNodeSOAPRequests(t *testing.T) {
	node := npmtest.Install(t, nodeSOAPDir, map[string]string{"soap": nodeSOAPVersion})

	g11 := newGuard(t, writeDemoWSDL(t, "soap:\n  wsdl: products.wsdl\n"), policy.SOAP11)
	var mu sync.Mutex
	var reqs []captured // every POST, as sent, before the guard
	var denials []string
	upstream := demo.SOAPHandler(demo.NewStore(), nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			reqs = append(reqs, captured{r.Header.Clone(), body})
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		ex := policytest.Exchange(r)
		ex.Route.Protocol = policy.SOAP11
		if err := g11.Apply(r.Context(), ex); err != nil {
			d, ok := policy.AsDenial(err)
			if !ok {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			mu.Lock()
			denials = append(denials, d.Code)
			mu.Unlock()
			http.Error(w, d.Code, d.StatusCode())
			return
		}
		upstream.ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.js", srv.URL+"/soap/products?wsdl")
	cmd.Dir = nodeSOAPDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.js: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var out struct {
		SOAPVersion string `json:"soapVersion"`
		Created     struct{ Product map[string]any }
		Got         struct{ Product map[string]any }
		SOAP12      string `json:"soap12"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("decoding the client's output: %v\n%s", err, stdout.String())
	}
	if out.SOAPVersion != nodeSOAPVersion {
		t.Errorf("node-soap version %q, want %q", out.SOAPVersion, nodeSOAPVersion)
	}
	if id, _ := out.Got.Product["id"].(string); id == "" || id != out.Created.Product["id"] {
		t.Errorf("through the guard, GetProduct returned %v for created %v", out.Got.Product, out.Created.Product)
	}
	if out.SOAP12 != "failed" {
		t.Errorf("node-soap's SOAP 1.2 call %s, want it refused by the SOAP 1.1 guard", out.SOAP12)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(denials) != 1 || denials[0] != "soap_version_mismatch" {
		t.Errorf("the 1.1 guard refused %v, want only node-soap's SOAP 1.2 call (soap_version_mismatch)", denials)
	}
	if len(reqs) != 3 {
		t.Fatalf("captured %d SOAP requests, want 3 (CreateProduct, GetProduct, GetProduct 1.2)", len(reqs))
	}
	create11, get11, req12 := reqs[0], reqs[1], reqs[2]
	if !strings.Contains(string(get11.body), "GetProduct") || !strings.HasPrefix(req12.header.Get("Content-Type"), "application/soap+xml") {
		t.Fatalf("unexpected requests:\n%s\n%v %s", get11.body, req12.header, req12.body)
	}

	g12 := newGuard(t, policytest.Node(t, "soap:\n  operations: [\"{urn:gatehouse:demo:products}GetProduct\"]\n"), policy.SOAP12)
	g11list := newGuard(t, policytest.Node(t, "soap:\n  operations: [\"{urn:gatehouse:demo:products}GetProduct\"]\n"), policy.SOAP11)
	tamper := func(c captured, f func(h http.Header, body string) string) captured {
		h := c.header.Clone()
		return captured{h, []byte(f(h, string(c.body)))}
	}
	tests := []struct {
		name string
		g    *Guard
		req  captured
		code string
	}{
		{"node-soap 1.1 GetProduct", g11, get11, ""},
		{"node-soap 1.1 CreateProduct", g11, create11, ""},
		{"node-soap 1.2 GetProduct", g12, req12, ""},
		{"1.1 with the other operation's action", g11, tamper(get11, func(h http.Header, b string) string {
			h.Set("SOAPAction", `"`+demo.SOAPActionCreateProduct+`"`)
			return b
		}), CodeActionMismatch},
		{"1.1 CreateProduct not in the list", g11list, create11, CodeOperationNotAllowed},
		{"1.2 sent as text/xml", g12, tamper(req12, func(h http.Header, b string) string {
			h.Set("Content-Type", ct11)
			return b
		}), "soap_version_mismatch"},
		{"1.1 with a DTD", g11, tamper(get11, func(h http.Header, b string) string {
			return `<!DOCTYPE x [<!ENTITY e "e">]>` + stripDecl(b)
		}), "xml_dtd_forbidden"},
		{"1.1 with a PI in the Body", g11, tamper(get11, func(h http.Header, b string) string {
			return strings.Replace(b, "<soap:Body>", "<soap:Body><?x?>", 1)
		}), "xml_pi_forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/soap/products", bytes.NewReader(tt.req.body))
			r.Header = tt.req.header.Clone()
			ex := policytest.Exchange(r)
			ex.Route.Protocol = tt.g.protocol()
			err := tt.g.Apply(context.Background(), ex)
			got := ""
			if d, ok := policy.AsDenial(err); ok {
				got = d.Code
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.code {
				t.Errorf("got %q, want %q\nheaders %v\n%s", got, tt.code, tt.req.header, tt.req.body)
			}
		})
	}
}

func stripDecl(b string) string {
	if strings.HasPrefix(b, "<?xml") {
		if i := strings.Index(b, "?>"); i >= 0 {
			return b[i+2:]
		}
	}
	return b
}

// protocol is the route protocol g was built for.
func (g *Guard) protocol() policy.Protocol {
	if g.s.soap != nil && g.s.soap.versions[2] && !g.s.soap.versions[1] {
		return policy.SOAP12
	}
	return policy.SOAP11
}
