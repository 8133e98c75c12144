package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/npmtest"
	"github.com/gatehouse/gatehouse/internal/peertest"
)

// nodeSOAPDir holds the node-soap client, its package.json pinning soap
// 1.13.0 and its package-lock.json. node_modules is installed there on
// demand and is not committed.
const nodeSOAPDir = "testdata/nodesoap"

// nodeSOAPVersion is the soap package version package.json pins.
const nodeSOAPVersion = "1.13.0"

// minNodeMajor and minNodeMinor are soap 1.13.0's engines.node (>=20.19.0).
const minNodeMajor, minNodeMinor = 20, 19

// TestNodeSOAPClient proves that an independent SOAP stack can use the
// service from its WSDL alone: node-soap builds a client from ?wsdl, calls
// CreateProduct then GetProduct at the soap:address the WSDL names, and
// gets a fault back as a fault. It installs node-soap with npm ci when
// missing and skips only when node or npm are not installed.
func TestNodeSOAPClient(t *testing.T) {
	node := npmtest.Install(t, nodeSOAPDir, map[string]string{"soap": nodeSOAPVersion})
	checkNodeVersion(t, node)

	var mu sync.Mutex
	type seen struct{ method, contentType, soapAction string }
	var requests []seen
	soapHandler := SOAPHandler(NewStore(), nil)
	mux := http.NewServeMux()
	mux.Handle("/soap/products", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			mu.Lock()
			requests = append(requests, seen{r.Method, r.Header.Get("Content-Type"), r.Header.Get("SOAPAction")})
			mu.Unlock()
		}
		soapHandler.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
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
		SOAPVersion string                               `json:"soapVersion"`
		Services    map[string]map[string]map[string]any `json:"services"`
		Created     struct{ Product map[string]any }     `json:"created"`
		Got         struct{ Product map[string]any }     `json:"got"`
		Fault       *struct {
			Faultcode, Faultstring string
			Detail                 struct{ ProductFault productFault }
		} `json:"fault"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("decoding the client's output: %v\n%s", err, stdout.String())
	}
	if out.SOAPVersion != nodeSOAPVersion {
		t.Errorf("node-soap version = %q, want %q", out.SOAPVersion, nodeSOAPVersion)
	}

	// describe() is node-soap's reading of the WSDL: service, port,
	// operations.
	ops := out.Services[ServiceName]["ProductPort"]
	for _, op := range []string{"GetProduct", "CreateProduct"} {
		if _, ok := ops[op]; !ok {
			t.Errorf("node-soap sees operations %v, want %s among them", keys(ops), op)
		}
	}

	wantCreated := map[string]any{
		"name": "Pour-over Kettle <Ø 1.2 L & more>",
		// node-soap converts only values whose type is xs:decimal itself,
		// not a restriction of it like tns:Price, so the price stays text.
		"price":    "34.9",
		"currency": "CHF",
	}
	id, _ := out.Created.Product["id"].(string)
	if !strings.HasPrefix(id, "p-") {
		t.Fatalf("created product id = %q, want a p-NNNN id; output %s", id, stdout.String())
	}
	wantCreated["id"] = id
	for k, want := range wantCreated {
		if got := out.Created.Product[k]; got != want {
			t.Errorf("CreateProduct product.%s = %#v, want %#v", k, got, want)
		}
		if got := out.Got.Product[k]; got != want {
			t.Errorf("GetProduct product.%s = %#v, want %#v", k, got, want)
		}
	}

	if out.Fault == nil {
		t.Errorf("GetProduct of a missing id did not fail")
	} else {
		if out.Fault.Faultcode != FaultClient {
			t.Errorf("fault code = %q, want %q", out.Fault.Faultcode, FaultClient)
		}
		if out.Fault.Faultstring != "product not found" {
			t.Errorf("fault string = %q, want %q", out.Fault.Faultstring, "product not found")
		}
		if got := out.Fault.Detail.ProductFault.Code; got != ProductFaultNotFound {
			t.Errorf("fault detail ProductFault.code = %q, want %q", got, ProductFaultNotFound)
		}
	}

	// What node-soap put on the wire, read from the WSDL's binding.
	mu.Lock()
	defer mu.Unlock()
	wantActions := []string{SOAPActionCreateProduct, SOAPActionGetProduct, SOAPActionGetProduct}
	if len(requests) != len(wantActions) {
		t.Fatalf("service saw %d SOAP requests %v, want %d", len(requests), requests, len(wantActions))
	}
	for i, r := range requests {
		if want := strconv.Quote(wantActions[i]); r.soapAction != want {
			t.Errorf("request %d SOAPAction = %s, want %s", i, r.soapAction, want)
		}
		if !strings.HasPrefix(r.contentType, "text/xml") {
			t.Errorf("request %d Content-Type = %q, want text/xml", i, r.contentType)
		}
	}
}

// checkNodeVersion skips when node is older than soap 1.13.0 supports:
// that is a machine lacking the tool, not a failure of the service.
func checkNodeVersion(t *testing.T, node string) {
	t.Helper()
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("node --version printed %q", out)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("node --version printed %q", out)
	}
	if major < minNodeMajor || major == minNodeMajor && minor < minNodeMinor {
		peertest.Unavailable(t, "node %s is older than %d.%d, the oldest soap %s supports", v, minNodeMajor, minNodeMinor, nodeSOAPVersion)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
