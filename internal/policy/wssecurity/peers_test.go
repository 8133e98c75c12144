package wssecurity

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/demo"
	"github.com/gatehouse/gatehouse/internal/npmtest"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/render"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// peersDir holds peers.js, its package.json pinning soap 1.13.0 and
// xml-crypto 6.3.2, and package-lock.json. node_modules is installed there
// by the test (npm ci) and not committed.
const peersDir = "testdata/peers"

var pinned = map[string]string{"soap": "1.13.0", "xml-crypto": "6.3.2"}

// installPeers installs the pinned peers into peersDir (npm ci) when
// missing; node-soap 1.13.0 needs node >= 20.19.
func installPeers(t *testing.T) string { return npmtest.Install(t, peersDir, pinned) }

// peerMessages holds what the peers sent and signed.
type peerMessages struct {
	sent      map[string]string // by case: text, digest, cert, cert-wsu
	xmlCrypto string
	fixture   *x509Fixture
	cfg       string
}

// peerConfig is the policy every peer message is checked with. Text
// passwords are allowed: the test server is plain HTTP on loopback.
func peerConfig(f *x509Fixture, password string) string {
	return f.config("") + `
username_token:
  text: allowed
  users:
    - {username: alice, password: "` + password + `"}
`
}

// runPeers runs node-soap against the demo SOAP service behind the policy
// (a real server on 127.0.0.1: node-soap reads the WSDL, then calls
// GetProduct with each security) and keeps what it sent. Every call must
// pass the policy and reach the service.
func runPeers(t *testing.T) *peerMessages {
	t.Helper()
	node := installPeers(t)
	f := newX509Fixture(t)
	dir := t.TempDir()
	cfg := peerConfig(f, "pässword & <more>")
	p := build(t, cfg, &clock{})
	p.now = time.Now
	p.store = store.NewMemory(time.Now)

	pm := &peerMessages{sent: map[string]string{}, fixture: f, cfg: cfg}
	var mu sync.Mutex
	var verdicts []string
	soapSvc := demo.SOAPHandler(demo.NewStore(), nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			soapSvc.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		mu.Lock()
		pm.sent[r.Header.Get("X-Case")] = string(b)
		mu.Unlock()
		ex := policytest.Exchange(r)
		ex.Route.Protocol = policy.SOAP11
		err := p.Apply(r.Context(), ex)
		mu.Lock()
		if d, ok := policy.AsDenial(err); ok {
			verdicts = append(verdicts, r.Header.Get("X-Case")+": "+d.Error())
			mu.Unlock()
			render.Denial(w, r, policy.SOAP11, ex.RequestID, d)
			return
		} else if err != nil {
			verdicts = append(verdicts, r.Header.Get("X-Case")+": "+err.Error())
		}
		mu.Unlock()
		if ex.Principal == nil || ex.Principal.Subject == "" {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		soapSvc.ServeHTTP(w, r)
	}))
	defer srv.Close()

	spec := map[string]string{
		"wsdl":     srv.URL + "/soap/products?wsdl",
		"user":     "alice",
		"password": "pässword & <more>",
		"keyFile":  writeFile(t, dir, "key.pem", f.leaf.KeyPEM(t)),
		"certFile": writeFile(t, dir, "cert.pem", f.leaf.CertPEM()),
	}
	specJSON, _ := json.Marshal(spec)
	specFile := writeFile(t, dir, "spec.json", specJSON)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	abs, _ := filepath.Abs(specFile)
	cmd := exec.CommandContext(ctx, node, "peers.js", abs)
	cmd.Dir = peersDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node peers.js: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var out struct {
		Versions map[string]string
		Calls    []struct {
			Case  string
			OK    bool
			Fault any
		}
		XMLCrypto string
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("decoding peers.js output: %v\n%s", err, stdout.String())
	}
	if out.Versions["soap"] != pinned["soap"] || out.Versions["xmlCrypto"] != pinned["xml-crypto"] {
		t.Errorf("peer versions %v, want %v", out.Versions, pinned)
	}
	for _, c := range out.Calls {
		if !c.OK {
			t.Errorf("node-soap %s: refused: %v (policy: %v)\nsent:\n%s", c.Case, c.Fault, verdicts, pm.sent[c.Case])
		}
	}
	if len(out.Calls) != 4 || len(pm.sent) != 4 {
		t.Fatalf("%d calls, %d messages, want 4", len(out.Calls), len(pm.sent))
	}
	pm.xmlCrypto = out.XMLCrypto
	return pm
}

// TestPeers: node-soap's WSSecurity (PasswordText, PasswordDigest) and
// WSSecurityCert (bare Id, and wsu:Id with idMode 'wssecurity') calls pass
// the policy and the service answers them (runPeers checks that), and so
// does a message signed with xml-crypto's SignedXml directly. Then the
// same messages, changed as an attacker would, are refused.
func TestPeers(t *testing.T) {
	pm := runPeers(t)
	if !strings.Contains(pm.sent["cert"], ` Id="_`) || !strings.Contains(pm.sent["cert-wsu"], `wsu:Id="_`) {
		t.Errorf("idMode did not change the Id attributes as expected:\ncert: %s\ncert-wsu: %s", pm.sent["cert"], pm.sent["cert-wsu"])
	}
	for _, name := range []string{"text", "digest", "cert", "cert-wsu"} {
		t.Run("node-soap/"+name, func(t *testing.T) {
			checkPeerVariants(t, pm, pm.sent[name], name == "text" || name == "digest", name == "digest")
		})
	}
	t.Run("xml-crypto", func(t *testing.T) {
		checkPeerVariants(t, pm, pm.xmlCrypto, false, false)
	})
}

// checkPeerVariants checks that msg passes a fresh policy, and that each
// attack on it is refused with its fault.
func checkPeerVariants(t *testing.T, pm *peerMessages, msg string, ut, hasNonce bool) {
	created := findText(t, msg, "Created")
	sent, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		t.Fatalf("peer Created %q: %v", created, err)
	}
	c := &clock{sent.Add(2 * time.Second)}
	fresh := func(cfg string) *Policy { return build(t, cfg, c) }

	// As sent: accepted, once.
	p := fresh(pm.cfg)
	ex, err := apply(t, p, msg, false)
	wantCode(t, err, "")
	if ut && ex.Principal.Subject != "alice" || !ut && ex.Principal.Subject != pm.fixture.leaf.Cert.Subject.String() {
		t.Errorf("principal %+v", ex.Principal)
	}
	fwd, _ := io.ReadAll(ex.Request.Body)
	if bytes.Contains(fwd, []byte("Security")) || !bytes.Contains(fwd, []byte("p-1001")) {
		t.Errorf("forwarded message still has its Security header or lost its body:\n%s", fwd)
	}
	if hasNonce || !ut {
		_, err = apply(t, p, msg, false)
		wantCode(t, err, CodeFailedAuthentication) // replayed
	}

	variants := []struct {
		name string
		cfg  string
		now  time.Time
		msg  func() string
		want string
	}{
		{"stale", pm.cfg, sent.Add(11 * time.Minute), func() string { return msg }, CodeMessageExpired},
		{"from the future", pm.cfg, sent.Add(-2 * time.Minute), func() string { return msg }, CodeMessageExpired},
		{"dtd bomb", pm.cfg, c.t, func() string {
			return `<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>` + strings.Replace(msg, "p-1001", "&b;", 1)
		}, CodeInvalidSecurity},
		{"xxe", pm.cfg, c.t, func() string {
			return `<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/hostname">]>` + strings.Replace(msg, "p-1001", "&x;", 1)
		}, CodeInvalidSecurity},
		{"duplicate id", pm.cfg, c.t, func() string {
			id := bodyID(t, msg)
			return strings.Replace(msg, "p-1001", `p-1001<x Id="`+id+`" xmlns=""/>`, 1)
		}, CodeInvalidSecurity},
		{"second security header", pm.cfg, c.t, func() string {
			doc := parseDoc(t, msg)
			h := findLocal(doc.Root(), "Header")
			h.AddChild(parseEl(`<wsse:Security xmlns:wsse="` + NamespaceWSSE + `"/>`))
			return write(t, doc)
		}, CodeInvalidSecurity},
	}
	if ut {
		variants = append(variants, struct {
			name string
			cfg  string
			now  time.Time
			msg  func() string
			want string
		}{"wrong password", peerConfig(pm.fixture, "pässword & <less>"), c.t, func() string { return msg }, CodeFailedAuthentication})
	} else {
		other := xmlsigtest.NewCA(t, "another CA")
		otherFile := writeFile(t, t.TempDir(), "other.pem", other.CertPEM())
		untrusted := strings.Replace(pm.cfg, pm.fixture.caFile, otherFile, 1)
		variants = append(variants, []struct {
			name string
			cfg  string
			now  time.Time
			msg  func() string
			want string
		}{
			{"untrusted certificate", untrusted, c.t, func() string { return msg }, CodeFailedAuthentication},
			{"tampered body", pm.cfg, c.t, func() string { return strings.Replace(msg, "p-1001", "p-1002", 1) }, CodeFailedCheck},
			{"wrapped body", pm.cfg, c.t, func() string {
				doc := parseDoc(t, msg)
				env := doc.Root()
				body := findLocal(env, "Body")
				env.RemoveChild(body)
				findLocal(env, "Header").CreateElement("Wrapper").AddChild(body)
				nb := body.Copy()
				for len(nb.Attr) > 0 {
					nb.RemoveAttr(nb.Attr[0].FullKey())
				}
				for _, ch := range nb.ChildElements() {
					nb.RemoveChild(ch)
				}
				nb.AddChild(parseEl(`<m:DeleteAll xmlns:m="urn:gatehouse:demo:products"/>`))
				env.AddChild(nb)
				return write(t, doc)
			}, CodeFailedCheck},
			{"pinned to someone else", pm.cfg + "  subjects: [\"CN=nobody\"]\n", c.t, func() string { return msg }, CodeFailedAuthentication},
		}...)
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			cfg := v.cfg
			if strings.Contains(cfg, "subjects:") {
				// The subjects line belongs under x509.
				cfg = strings.Replace(strings.Replace(cfg, "  subjects: [\"CN=nobody\"]\n", "", 1), "certificates:", "subjects: [\"CN=nobody\"]\n  certificates:", 1)
			}
			p := build(t, cfg, &clock{v.now})
			_, err := apply(t, p, v.msg(), false)
			wantCode(t, err, v.want)
		})
	}
}

// TestXmlsec1Signed: messages signed by xmlsec1 from a template (RSA-SHA256
// and ECDSA-SHA256, the key named by KeyIdentifier and by
// X509IssuerSerial) pass the policy; tampered, they do not.
func TestXmlsec1Signed(t *testing.T) {
	xmlsec := xmlsigtest.Xmlsec1(t)
	f := newX509Fixture(t)
	ecLeaf := f.ca.Issue(t, pkix.Name{CommonName: "ec signer"}, xmlsigtest.ECKey(t), nil)
	dir := t.TempDir()
	known := writeFile(t, dir, "known.pem", append(f.leaf.CertPEM(), ecLeaf.CertPEM()...))
	cfg := "x509:\n  trust: {ca_file: " + f.caFile + "}\n  certificates: [" + known + "]\nsignature: {algorithms: [rsa-sha256, ecdsa-sha256, sha256]}\n"
	now := time.Now().UTC().Truncate(time.Second)
	for _, tt := range []struct {
		name, method string
		signer       *xmlsigtest.Cert
		mode         string
	}{
		{"rsa-sha256 ski", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", f.leaf, refSKI},
		{"ecdsa-sha256 issuer serial", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", ecLeaf, refIssuerSerial},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The template: signedMessage's shape, with empty digests
			// and signature for xmlsec1 to fill in.
			msg := signedMessage(t, tt.signer, nil, now, tt.mode, "")
			doc := parseDoc(t, msg)
			for _, d := range doc.FindElements("//DigestValue") {
				d.SetText("")
			}
			doc.FindElement("//SignatureValue").SetText("")
			doc.FindElement("//SignatureMethod").CreateAttr("Algorithm", tt.method)
			tmpl := writeFile(t, dir, "tmpl.xml", []byte(write(t, doc)))
			keyFile := writeFile(t, dir, "key.pem", tt.signer.KeyPEM(t))
			signed := string(xmlsigtest.Run(t, xmlsec, "--sign", "--privkey-pem", keyFile,
				"--id-attr:Id", "Body", "--id-attr:Id", "Timestamp", tmpl))
			if signed == write(t, doc) || strings.Contains(signed, "<ds:DigestValue></ds:DigestValue>") {
				t.Fatalf("xmlsec1 did not sign:\n%s", signed)
			}
			p := build(t, cfg, &clock{now.Add(time.Second)})
			ex, err := apply(t, p, signed, false)
			wantCode(t, err, "")
			if ex.Principal.Subject != tt.signer.Cert.Subject.String() {
				t.Errorf("principal %+v", ex.Principal)
			}
			p = build(t, cfg, &clock{now.Add(time.Second)})
			_, err = apply(t, p, strings.Replace(signed, "p-1001", "p-1002", 1), false)
			wantCode(t, err, CodeFailedCheck)
		})
	}
}

func parseDoc(t testing.TB, s string) *etree.Document {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromString(s); err != nil {
		t.Fatal(err)
	}
	return d
}

func write(t testing.TB, d *etree.Document) string {
	t.Helper()
	s, err := d.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func findLocal(el *etree.Element, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

// findText returns the text of the first element named local in the
// Timestamp (or anywhere, if none).
func findText(t testing.TB, msg, local string) string {
	t.Helper()
	d := parseDoc(t, msg)
	el := d.FindElement("//Timestamp/" + local)
	if el == nil {
		el = d.FindElement("//" + local)
	}
	if el == nil {
		t.Fatalf("no %s in\n%s", local, msg)
	}
	return strings.TrimSpace(el.Text())
}

func bodyID(t testing.TB, msg string) string {
	t.Helper()
	d := parseDoc(t, msg)
	b := findLocal(d.Root(), "Body")
	for _, a := range b.Attr {
		if a.Key == "Id" {
			return a.Value
		}
	}
	// Unsigned messages: any ID in the message will do.
	ts := d.FindElement("//Timestamp")
	for _, a := range ts.Attr {
		if a.Key == "Id" {
			return a.Value
		}
	}
	t.Fatal(errors.New("no Id to duplicate"))
	return ""
}
