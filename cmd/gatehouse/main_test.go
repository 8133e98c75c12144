package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, `
listeners: [{address: "127.0.0.1:0"}]
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
`)
	unknown := filepath.Join(dir, "unknown.yaml")
	writeFile(t, unknown, `
listeners: [{address: "127.0.0.1:0"}]
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1", retries: 3}
`)
	ambiguous := filepath.Join(dir, "ambiguous.yaml")
	writeFile(t, ambiguous, `
listeners: [{address: "127.0.0.1:0"}]
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
  - name: b
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:2"}
`)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"valid", []string{"check", "--config", good}, 0, "ok (1 listeners, 1 routes)", ""},
		{"unknown field", []string{"check", "--config", unknown}, 1, "", unknown + ":6:"},
		{"ambiguous routes", []string{"check", "--config", ambiguous}, 1, "", ambiguous + ":8:"},
		{"missing file", []string{"check", "--config", filepath.Join(dir, "nope.yaml")}, 1, "", "nope.yaml"},
		{"no config flag", []string{"check"}, 2, "", "usage"},
		{"unknown command", []string{"frobnicate"}, 2, "", "unknown command"},
		{"version", []string{"version"}, 0, "gatehouse", ""},
		{"apikey create", []string{"apikey", "create", "--consumer", "billing-app"}, 0, `hash: "sha256:`, ""},
		{"apikey bad consumer", []string{"apikey", "create", "--consumer", "bad name"}, 1, "", "consumer"},
		{"apikey no consumer", []string{"apikey", "create"}, 2, "", "usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("run(%v) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout containing %q, stderr containing %q",
					tc.args, code, &stdout, &stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// buildBinary builds gatehouse once for the subprocess tests.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatehouse")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := buildBinary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a gatehouse subprocess with its output captured.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *safeBuffer
	done           chan error
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, args ...string) *process {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: exec.Command(bin, args...), stdout: &safeBuffer{}, stderr: &safeBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// eventually polls f every 20 ms for up to 10 s until it returns "".
func eventually(t *testing.T, what string, f func() string) {
	t.Helper()
	// Generous for a loaded CI machine; it returns as soon as f holds.
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		if last = f(); last == "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
}

func get(url string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// do sends a request with an optional bearer token and JSON body.
func do(method, url, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func bodyIs(url, want string) func() string {
	return func() string {
		code, body, err := get(url)
		if err != nil {
			return err.Error()
		}
		if code != 200 || body != want {
			return fmt.Sprintf("got %d %q, want 200 %q", code, body, want)
		}
		return ""
	}
}

func TestServeReloadsAndDrains(t *testing.T) {
	upstream := func(body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
		t.Cleanup(s.Close)
		return s.URL
	}
	upA, upB, upC := upstream("A"), upstream("B"), upstream("C")
	addr := freeAddr(t)
	admin := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "gatehouse.yaml")
	config := func(up string) string {
		return fmt.Sprintf(`
listeners: [{name: main, address: "%s"}]
admin: {address: "%s"}
access_log: {disabled: true}
routes:
  - name: r
    match: {path: /r}
    upstream: {url: "%s"}
`, addr, admin, up)
	}
	writeFile(t, cfgFile, config(upA))
	p := start(t, "serve", "--config", cfgFile)
	eventually(t, "first config", bodyIs("http://"+addr+"/r", "A"))

	// A change to the file is picked up.
	writeFile(t, cfgFile, config(upB))
	eventually(t, "reload on file change", bodyIs("http://"+addr+"/r", "B"))

	// A broken file is reported and the old config keeps serving.
	writeFile(t, cfgFile, config(upC)+"    bogus: true\n")
	eventually(t, "failed reload reported", func() string {
		if !strings.Contains(p.stderr.String(), "config reload failed") {
			return "no failure logged yet"
		}
		return ""
	})
	if f := bodyIs("http://"+addr+"/r", "B")(); f != "" {
		t.Fatalf("after a broken reload: %s", f)
	}
	if !strings.Contains(p.stderr.String(), "gatehouse.yaml:9:") {
		t.Errorf("the failure does not name the file and line:\n%s", p.stderr.String())
	}

	// SIGHUP reloads too.
	writeFile(t, cfgFile, config(upC))
	eventually(t, "reload after fix", bodyIs("http://"+addr+"/r", "C"))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SIGHUP reload logged", func() string {
		if !strings.Contains(p.stderr.String(), `"trigger":"SIGHUP"`) {
			return "no SIGHUP reload logged"
		}
		return ""
	})
	if code, body, err := get("http://" + admin + "/readyz"); err != nil || code != 200 {
		t.Errorf("readyz = %d %q %v", code, body, err)
	}

	// SIGTERM drains and exits 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
}

func TestDemo(t *testing.T) {
	addr, admin := freeAddr(t), freeAddr(t)
	p := start(t, "demo", "--listen", addr, "--admin-listen", admin)
	base := "http://" + addr
	// The tokens are the ones the demo prints for people to paste.
	tokens := map[string]string{}
	eventually(t, "demo prints its tokens", func() string {
		for _, line := range strings.Split(p.stdout.String(), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(k, "export ") {
				tokens[strings.TrimPrefix(k, "export ")] = v
			}
		}
		if tokens["READER"] == "" || tokens["WRITER"] == "" || tokens["SALES"] == "" {
			return "no READER, WRITER and SALES tokens in\n" + p.stdout.String()
		}
		return ""
	})
	eventually(t, "demo up", func() string {
		code, body, err := do("GET", base+"/product/p-1001", tokens["READER"], "")
		if err != nil || code != 200 || !strings.Contains(body, "Espresso") {
			return fmt.Sprintf("%d %q %v", code, body, err)
		}
		return ""
	})
	lamp := `{"name":"Lamp","price":25.5,"currency":"EUR"}`
	for _, c := range []struct {
		name, method, path, token, body string
		wantCode                        int
		wantBody                        string
	}{
		{"no token", "GET", "/product", "", "", 401, `"code":"missing_credentials"`},
		{"garbage token", "GET", "/product", "not.a.jwt", "", 401, `"code":"invalid_token"`},
		{"reader lists", "GET", "/product", tokens["READER"], "", 200, "Espresso"},
		{"reader cannot create", "POST", "/product", tokens["READER"], lamp, 403, `"code":"insufficient_scope"`},
		{"sales cannot create", "POST", "/product", tokens["SALES"], lamp, 403, `"code":"not_catalog"`},
		{"writer creates", "POST", "/product", tokens["WRITER"], lamp, 201, `"name":"Lamp"`},
		{"SQL injection", "GET", "/product?q=1%27%20OR%20%271%27%3D%271%27%20--", tokens["WRITER"], "", 403, `"code":"waf_blocked"`},
		{"XSS in a JSON body", "POST", "/product", tokens["WRITER"], `{"name":"<script>alert(1)</script>","price":1}`, 403, `"code":"waf_blocked"`},
		{"card number masked", "GET", "/product", tokens["READER"], "", 200, `"Gift card (test card **** **** **** 1111)"`},
		{"against the OpenAPI document", "POST", "/product", tokens["WRITER"], `{"name":"Lamp","price":-1}`, 400, `"code":"request_invalid"`},
		{"duplicate JSON key", "POST", "/product", tokens["WRITER"], `{"name":"Lamp","price":1,"price":2}`, 400, `"code":"json_duplicate_key"`},
	} {
		code, body, err := do(c.method, base+c.path, c.token, c.body)
		if err != nil || code != c.wantCode || !strings.Contains(body, c.wantBody) {
			t.Errorf("%s: %d %v\n%s\nwant %d and %s", c.name, code, err, body, c.wantCode, c.wantBody)
		}
	}
	code, body, err := get(base + "/soap/products?wsdl")
	if err != nil || code != 200 || !strings.Contains(body, `location="`+base+`/soap/products"`) {
		t.Errorf("WSDL through the gateway: %d %v\n%s", code, err, body)
	}
	testDemoSOAP(t, base, p.stdout.String())
	testDemoSTS(t, base)
	// The per-client rate limit: 20 a second with bursts of 20. The sales
	// client has sent two requests so far; of 25 more at once, some are
	// refused with the limit's headers.
	limited := 0
	for range 25 {
		req, _ := http.NewRequest("GET", base+"/product", nil)
		req.Header.Set("Authorization", "Bearer "+tokens["SALES"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			if resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit") == "" || resp.Header.Get("RateLimit-Policy") == "" {
				t.Errorf("429 without Retry-After, RateLimit and RateLimit-Policy: %v", resp.Header)
			}
		}
	}
	if limited == 0 {
		t.Error("27 requests of one client within a moment: none was rate limited")
	}
	if code, _, _ := get(base + "/nowhere"); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
	if code, body, _ := get("http://" + admin + "/metrics"); code != 200 || !strings.Contains(body, `gatehouse_requests_total{code="200",route="product-by-id"}`) {
		t.Errorf("metrics: %d", code)
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("exit after SIGINT: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGINT")
	}
}

// testDemoSOAP calls the demo's SOAP service the ways the banner describes:
// alice's UsernameToken (text, as in the printed curl line, and digest)
// reads; only a message signed with the printed client certificate
// creates; no or bad security is a fault.
func testDemoSOAP(t *testing.T, base, banner string) {
	t.Helper()
	var certFile, keyFile, encFile string
	for _, line := range strings.Split(banner, "\n") {
		f := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		switch {
		case strings.HasSuffix(f, "/client.pem"):
			certFile = f
		case strings.HasSuffix(f, "/client-key.pem"):
			keyFile = f
		case strings.HasSuffix(f, "/gateway-enc.pem"):
			encFile = f
		}
	}
	if certFile == "" || keyFile == "" || encFile == "" {
		t.Fatalf("the banner names no client certificate and key:\n%s", banner)
	}
	signer := loadSigner(t, certFile, keyFile)
	get := `<GetProduct xmlns="urn:gatehouse:demo:products"><id>p-1002</id></GetProduct>`
	create := `<CreateProduct xmlns="urn:gatehouse:demo:products"><name>Kettle</name><price>30</price><currency>EUR</currency></CreateProduct>`
	cost := `<GetProductCost xmlns="urn:gatehouse:demo:products"><id>p-1002</id></GetProductCost>`
	now := time.Now().UTC()
	for _, c := range []struct {
		name, op, security, body string
		wantCode                 int
		want                     string
	}{
		{"no security", "GetProduct", "", get, 400, "wsse:InvalidSecurity"},
		{"alice, text", "GetProduct", usernameToken("alice", "alice-demo-password", false, now), get, 200, "<name>Coffee Grinder</name>"},
		{"alice, digest", "GetProduct", usernameToken("alice", "alice-demo-password", true, now), get, 200, "<name>Coffee Grinder</name>"},
		{"wrong password", "GetProduct", usernameToken("alice", "guess", true, now), get, 401, "wsse:FailedAuthentication"},
		{"alice cannot create", "CreateProduct", usernameToken("alice", "alice-demo-password", true, now), create, 403, "signature_required"},
		{"signed create", "CreateProduct", "", create, 200, "<name>Kettle</name>"},
		{"action names another operation", "GetProduct", usernameToken("alice", "alice-demo-password", true, now), create, 400, "soap_action_mismatch"},
		{"cost in the clear", "GetProductCost", usernameToken("alice", "alice-demo-password", true, now), cost, 403, "encryption_required"},
		{"cost encrypted", "GetProductCost", usernameToken("alice", "alice-demo-password", true, now), cost, 200, "<cost>"},
		{"encrypted, another operation inside", "GetProductCost", usernameToken("alice", "alice-demo-password", true, now), get, 400, "soap_action_mismatch"},
		{"encrypted to another key", "GetProductCost", usernameToken("alice", "alice-demo-password", true, now), cost, 401, "wsse:FailedCheck"},
	} {
		msg := soapMessage(c.security, c.body)
		switch c.name {
		case "signed create":
			msg = signer.sign(t, c.body, now)
		case "cost encrypted", "encrypted, another operation inside":
			msg = encryptDemoBody(t, msg, encFile, "")
		case "encrypted to another key":
			msg = encryptDemoBody(t, msg, encFile, certFile)
		}
		req, _ := http.NewRequest("POST", base+"/soap/products", strings.NewReader(msg))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", `"urn:gatehouse:demo:products/`+c.op+`"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.wantCode || !strings.Contains(string(b), c.want) {
			t.Errorf("SOAP %s: %d %s\nwant %d and %s", c.name, resp.StatusCode, b, c.wantCode, c.want)
		}
	}
}

// testDemoSTS walks the README's WS-Trust steps: alice gets an assertion
// from the STS, calls GetProduct with it, cancels it, and the next call
// with it is refused.
func testDemoSTS(t *testing.T, base string) {
	t.Helper()
	post := func(path, ctype, action, msg string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(msg))
		req.Header.Set("Content-Type", ctype)
		if action != "" {
			req.Header.Set("SOAPAction", action)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	now := time.Now().UTC()
	code, body := post("/sts", "application/soap+xml; charset=utf-8", "", stsRequest("Issue",
		`<wsp:AppliesTo xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy"><wsa:EndpointReference><wsa:Address>`+
			`urn:gatehouse:demo:products</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>`, now))
	assertion := regexp.MustCompile(`(?s)<(\w+:)?Assertion\b.*</(\w+:)?Assertion>`).FindString(body)
	if code != 200 || assertion == "" {
		t.Fatalf("STS Issue: %d\n%s", code, body)
	}
	call := func() (int, string) {
		ts := `<wsu:Timestamp><wsu:Created>` + time.Now().UTC().Format(time.RFC3339) + `</wsu:Created></wsu:Timestamp>`
		return post("/soap/products", "text/xml; charset=utf-8", `"urn:gatehouse:demo:products/GetProduct"`,
			soapMessage(ts+assertion, `<GetProduct xmlns="urn:gatehouse:demo:products"><id>p-1001</id></GetProduct>`))
	}
	if code, body := call(); code != 200 || !strings.Contains(body, "<name>Espresso") {
		t.Errorf("GetProduct with the STS assertion: %d\n%s", code, body)
	}
	code, body = post("/sts", "application/soap+xml; charset=utf-8", "", stsRequest("Cancel",
		`<wst:CancelTarget>`+assertion+`</wst:CancelTarget>`, time.Now().UTC()))
	if code != 200 || !strings.Contains(body, "RequestedTokenCancelled") {
		t.Fatalf("STS Cancel: %d\n%s", code, body)
	}
	if code, body := call(); code != 401 || !strings.Contains(body, "InvalidSecurityToken") {
		t.Errorf("GetProduct with the cancelled assertion: %d\n%s\nwant 401 wsse:InvalidSecurityToken", code, body)
	}
}
