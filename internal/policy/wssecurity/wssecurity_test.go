package wssecurity

import (
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

// TestPasswordDigestVectors are the published examples: WSS4J's
// UsernameTokenTest.testUsernameTokenWithEncodedPasswordBaseline (whose
// "password" is the raw SHA-1 of "password", WSS4J's encoded passwords)
// and node-soap's test/security/PasswordDigest.js.
func TestPasswordDigestVectors(t *testing.T) {
	sha := sha1.Sum([]byte("password"))
	tests := []struct {
		name, nonce, created string
		password             []byte
		want                 string
	}{
		{"wss4j", "0x7bXAPZVn40AdCD0Xbt0g==", "2010-06-28T15:16:37Z", sha[:], "C0rena/6gKpRZ9ATj+e6ss5sAbQ="},
		{"node-soap", "2FW1CIo2ZUOJmSjVRcJZlQ==", "2019-02-12T12:34:12.110Z", []byte("vM3s1hKVMy6zBOn"), "wM9xjA92wCw+QcQI1urjZ6B8+LQ="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := base64.StdEncoding.DecodeString(tt.nonce)
			if err != nil {
				t.Fatal(err)
			}
			d := PasswordDigest(n, tt.created, tt.password)
			if got := base64.StdEncoding.EncodeToString(d[:]); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestWSS4JVectorThroughPolicy authenticates the WSS4J message itself, with
// the user's password configured as WSS4J's encoded equivalent.
func TestWSS4JVectorThroughPolicy(t *testing.T) {
	sha := sha1.Sum([]byte("password"))
	c := &clock{time.Date(2010, 6, 28, 15, 16, 40, 0, time.UTC)}
	p := build(t, `
timestamp: {required: false}
username_token:
  users:
    - {username: wernerd, password: "`+base64.StdEncoding.EncodeToString(sha[:])+`", encoding: base64}
`, c)
	msg := envOpen11 + `<soap:Header>` + secOpen + `<wsse:UsernameToken><wsse:Username>wernerd</wsse:Username>` +
		`<wsse:Password Type="` + passwordDigest + `">C0rena/6gKpRZ9ATj+e6ss5sAbQ=</wsse:Password>` +
		`<wsse:Nonce EncodingType="` + encBase64 + `">0x7bXAPZVn40AdCD0Xbt0g==</wsse:Nonce><wsu:Created>2010-06-28T15:16:37Z</wsu:Created>` +
		`</wsse:UsernameToken></wsse:Security></soap:Header><soap:Body>` + payload + `</soap:Body></soap:Envelope>`
	ex, err := apply(t, p, msg, false)
	wantCode(t, err, "")
	if ex.Principal == nil || ex.Principal.Subject != "wernerd" || ex.Principal.Method != "wss-username" {
		t.Errorf("principal %+v", ex.Principal)
	}
	_, err = apply(t, p, msg, false)
	wantCode(t, err, CodeFailedAuthentication) // the nonce again
}

const utConfig = `
username_token:
  text: tls_only
  users:
    - {username: alice, password: s3cret}
    - {username: bob, password: other}
`

func TestUsernameToken(t *testing.T) {
	now := policytest.Start
	tests := []struct {
		name string
		cfg  string
		msg  func(t *testing.T) string
		tls  bool
		want string
	}{
		{"digest", utConfig, func(t *testing.T) string { return utMessage(t, "alice", "s3cret", true, now) }, false, ""},
		{"digest wrong password", utConfig, func(t *testing.T) string { return utMessage(t, "alice", "s3cre", true, now) }, false, CodeFailedAuthentication},
		{"digest other user's password", utConfig, func(t *testing.T) string { return utMessage(t, "alice", "other", true, now) }, false, CodeFailedAuthentication},
		{"unknown user", utConfig, func(t *testing.T) string { return utMessage(t, "mallory", "s3cret", true, now) }, false, CodeFailedAuthentication},
		{"text over tls", utConfig, func(t *testing.T) string { return utMessage(t, "alice", "s3cret", false, now) }, true, ""},
		{"text without tls", utConfig, func(t *testing.T) string { return utMessage(t, "alice", "s3cret", false, now) }, false, CodeUnsupportedSecurityToken},
		{"text wrong password", utConfig, func(t *testing.T) string { return utMessage(t, "alice", "s3cretx", false, now) }, true, CodeFailedAuthentication},
		{"text allowed", strings.Replace(utConfig, "tls_only", "allowed", 1), func(t *testing.T) string { return utMessage(t, "alice", "s3cret", false, now) }, false, ""},
		{"text forbidden", strings.Replace(utConfig, "tls_only", "forbidden", 1), func(t *testing.T) string { return utMessage(t, "alice", "s3cret", false, now) }, true, CodeUnsupportedSecurityToken},
		{"digest refused", utConfig + "  digest: false\n", func(t *testing.T) string { return utMessage(t, "alice", "s3cret", true, now) }, true, CodeUnsupportedSecurityToken},
		{"stale token", utConfig + "timestamp: {required: false}\n", func(t *testing.T) string {
			return strings.Replace(utMessage(t, "alice", "s3cret", true, now.Add(-301*time.Second)), timestamp(now.Add(-301*time.Second)), "", 1)
		}, false, CodeMessageExpired},
		{"digest without nonce", utConfig, func(t *testing.T) string {
			m := utMessage(t, "alice", "s3cret", true, now)
			i, j := strings.Index(m, "<wsse:Nonce"), strings.Index(m, "</wsse:Nonce>")
			return m[:i] + m[j+len("</wsse:Nonce>"):]
		}, false, CodeInvalidSecurityToken},
		{"password type unknown", utConfig, func(t *testing.T) string {
			return strings.Replace(utMessage(t, "alice", "s3cret", true, now), passwordDigest, "urn:x", 1)
		}, false, CodeUnsupportedSecurityToken},
		{"no timestamp", utConfig, func(t *testing.T) string {
			return strings.Replace(utMessage(t, "alice", "s3cret", true, now), timestamp(now), "", 1)
		}, false, CodeInvalidSecurity},
		{"not configured", "x509: {trust: {ca_file: CAFILE}}\n", func(t *testing.T) string { return utMessage(t, "alice", "s3cret", true, now) }, false, CodeUnsupportedSecurityToken},
	}
	ca := xmlsigtest.NewCA(t, "ut test CA")
	caFile := writeFile(t, t.TempDir(), "ca.pem", ca.CertPEM())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(t, strings.Replace(tt.cfg, "CAFILE", caFile, 1), &clock{now})
			ex, err := apply(t, p, tt.msg(t), tt.tls)
			wantCode(t, err, tt.want)
			if tt.want == "" && (ex.Principal == nil || ex.Principal.Subject != "alice") {
				t.Errorf("principal %+v, want alice", ex.Principal)
			}
		})
	}
}

func TestReplayedNonce(t *testing.T) {
	c := &clock{policytest.Start}
	p := build(t, utConfig, c)
	msg := utMessage(t, "alice", "s3cret", true, c.t)
	_, err := apply(t, p, msg, false)
	wantCode(t, err, "")
	c.t = c.t.Add(time.Minute)
	_, err = apply(t, p, msg, false)
	wantCode(t, err, CodeFailedAuthentication)
	// A different policy instance sharing the store is another gateway
	// instance: it refuses the replay too.
	p2 := build(t, utConfig, c)
	p2.store = p.store
	_, err = apply(t, p2, msg, false)
	wantCode(t, err, CodeFailedAuthentication)
	// A refused message does not burn its nonce.
	bad := strings.Replace(utMessage(t, "alice", "s3cret", true, c.t), "<m:id>", "<m:id a='1' a='2'>", 1)
	_, err = apply(t, p, bad, false)
	wantCode(t, err, CodeInvalidSecurity)
}

func TestTimestamp(t *testing.T) {
	now := policytest.Start
	ts := func(inner string) string {
		return envOpen11 + `<soap:Header>` + secOpen + `<wsu:Timestamp>` + inner + `</wsu:Timestamp>` +
			usernameToken("alice", "s3cret", true, newNonce(t), now) + `</wsse:Security></soap:Header><soap:Body>` + payload + `</soap:Body></soap:Envelope>`
	}
	cr := func(t time.Time) string { return `<wsu:Created>` + stamp(t) + `</wsu:Created>` }
	ex := func(t time.Time) string { return `<wsu:Expires>` + stamp(t) + `</wsu:Expires>` }
	tests := []struct {
		name, inner, want string
	}{
		{"fresh", cr(now) + ex(now.Add(time.Minute)), ""},
		{"created only", cr(now.Add(-299 * time.Second)), ""},
		{"too old", cr(now.Add(-301 * time.Second)), CodeMessageExpired},
		{"expired", cr(now.Add(-2*time.Minute)) + ex(now.Add(-time.Second)), CodeMessageExpired},
		{"expires now", cr(now.Add(-2*time.Minute)) + ex(now), CodeMessageExpired},
		{"in the future within skew", cr(now.Add(59 * time.Second)), ""},
		{"in the future beyond skew", cr(now.Add(61 * time.Second)), CodeMessageExpired},
		{"expires first", ex(now.Add(time.Minute)) + cr(now), CodeInvalidSecurity},
		{"two created", cr(now) + cr(now), CodeInvalidSecurity},
		{"two expires", cr(now) + ex(now.Add(time.Minute)) + ex(now.Add(time.Minute)), CodeInvalidSecurity},
		{"not utc", `<wsu:Created>2025-01-02T04:04:05+01:00</wsu:Created>`, CodeInvalidSecurity},
		{"no created", "", CodeInvalidSecurity},
		{"expires before created", cr(now) + ex(now.Add(-time.Second)), CodeInvalidSecurity},
		{"garbage", `<wsu:Created>yesterday</wsu:Created>`, CodeInvalidSecurity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(t, utConfig, &clock{now})
			_, err := apply(t, p, ts(tt.inner), true)
			wantCode(t, err, tt.want)
		})
	}
}

// TestMessageStructure covers what is refused before any token is looked
// at: DTDs (entity bombs, XXE), processing instructions, broken envelopes,
// and Security headers that are missing, doubled or for another actor.
func TestMessageStructure(t *testing.T) {
	now := policytest.Start
	good := func(t *testing.T) string { return utMessage(t, "alice", "s3cret", true, now) }
	tests := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"good", func(m string) string { return m }, ""},
		{"xml declaration", func(m string) string { return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + m }, ""},
		{"billion laughs", func(m string) string {
			return `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>` +
				strings.Replace(m, "p-1001", "&lol2;", 1)
		}, CodeInvalidSecurity},
		{"xxe", func(m string) string {
			return `<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` + strings.Replace(m, "p-1001", "&xxe;", 1)
		}, CodeInvalidSecurity},
		{"undeclared entity", func(m string) string { return strings.Replace(m, "p-1001", "&xxe;", 1) }, CodeInvalidSecurity},
		{"processing instruction", func(m string) string { return strings.Replace(m, "<m:id>", "<?php evil() ?><m:id>", 1) }, CodeInvalidSecurity},
		{"comment and cdata are fine", func(m string) string { return strings.Replace(m, "p-1001", "<!-- c --><![CDATA[p-1001]]>", 1) }, ""},
		{"utf-16 declared", func(m string) string { return `<?xml version="1.0" encoding="UTF-16"?>` + m }, CodeInvalidSecurity},
		{"not xml", func(string) string { return "hello" }, CodeInvalidSecurity},
		{"empty", func(string) string { return "" }, CodeInvalidSecurity},
		{"not an envelope", func(m string) string { return "<a/>" }, CodeInvalidSecurity},
		{"two bodies", func(m string) string {
			return strings.Replace(m, "</soap:Envelope>", "<soap:Body/></soap:Envelope>", 1)
		}, CodeInvalidSecurity},
		{"element after body", func(m string) string {
			return strings.Replace(m, "</soap:Envelope>", "<x/></soap:Envelope>", 1)
		}, CodeInvalidSecurity},
		{"no header", func(m string) string {
			i, j := strings.Index(m, "<soap:Header>"), strings.Index(m, "</soap:Header>")
			return m[:i] + m[j+len("</soap:Header>"):]
		}, CodeInvalidSecurity},
		{"second security header", func(m string) string {
			return strings.Replace(m, "</soap:Header>", `<wsse:Security xmlns:wsse="`+NamespaceWSSE+`"/></soap:Header>`, 1)
		}, CodeInvalidSecurity},
		{"second header for another actor", func(m string) string {
			return strings.Replace(m, "</soap:Header>", `<wsse:Security xmlns:wsse="`+NamespaceWSSE+`" soap:actor="urn:other"/></soap:Header>`, 1)
		}, ""},
		{"only header for another actor", func(m string) string {
			return strings.Replace(m, `soap:mustUnderstand="1">`, `soap:mustUnderstand="1" soap:actor="urn:other">`, 1)
		}, CodeInvalidSecurity},
		{"actor next", func(m string) string {
			return strings.Replace(m, `soap:mustUnderstand="1">`, `soap:mustUnderstand="1" soap:actor="`+actorNext11+`">`, 1)
		}, ""},
		{"bad mustUnderstand", func(m string) string {
			return strings.Replace(m, `soap:mustUnderstand="1"`, `soap:mustUnderstand="yes"`, 1)
		}, CodeInvalidSecurity},
		{"encrypted key", func(m string) string {
			return strings.Replace(m, "</wsse:Security>", `<xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/></wsse:Security>`, 1)
		}, CodeUnsupportedSecurityToken},
		{"duplicate id", func(m string) string {
			return strings.Replace(m, "<m:id>", `<m:id wsu:Id="TS-1">`, 1)
		}, CodeInvalidSecurity},
		{"duplicate attribute", func(m string) string {
			return strings.Replace(m, "<m:id>", `<m:id x="1" x="2">`, 1)
		}, CodeInvalidSecurity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(t, utConfig, &clock{now})
			_, err := apply(t, p, tt.edit(good(t)), true)
			wantCode(t, err, tt.want)
		})
	}
}

func TestSOAP12(t *testing.T) {
	now := policytest.Start
	p := build(t, utConfig, &clock{now})
	m := utMessage(t, "alice", "s3cret", true, now)
	m = strings.Replace(m, "http://schemas.xmlsoap.org/soap/envelope/", NamespaceSOAP12, 1)
	m = strings.Replace(m, `soap:mustUnderstand="1">`, `soap:mustUnderstand="true" soap:role="`+roleUltimate+`">`, 1)
	_, err := apply(t, p, m, false)
	wantCode(t, err, "")
}

// TestSecurityHeaderRemoved checks what is forwarded: the message as sent,
// byte for byte, without the gateway's Security header; or with it when
// keep_security_header is set.
func TestSecurityHeaderRemoved(t *testing.T) {
	now := policytest.Start
	for _, keep := range []bool{false, true} {
		cfg := utConfig
		if keep {
			cfg += "keep_security_header: true\n"
		}
		p := build(t, cfg, &clock{now})
		other := `<wsse:Security xmlns:wsse="` + NamespaceWSSE + `" soap:actor="urn:other"><x/></wsse:Security>`
		msg := strings.Replace(utMessage(t, "alice", "s3cret", true, now), "<soap:Header>", "<soap:Header>\n  "+other+"\n  ", 1)
		ex, err := apply(t, p, msg, false)
		wantCode(t, err, "")
		got, _ := io.ReadAll(ex.Request.Body)
		want := msg
		if !keep {
			i, j := strings.Index(msg, secOpen), strings.LastIndex(msg, "</wsse:Security>")
			want = msg[:i] + msg[j+len("</wsse:Security>"):]
		}
		if string(got) != want {
			t.Errorf("keep=%v: forwarded\n%s\nwant\n%s", keep, got, want)
		}
		if ex.Request.ContentLength != int64(len(want)) || ex.Request.Header.Get("Content-Length") != "" && ex.Request.Header.Get("Content-Length") != itoa(len(want)) {
			t.Errorf("keep=%v: content length %d / %q, want %d", keep, ex.Request.ContentLength, ex.Request.Header.Get("Content-Length"), len(want))
		}
	}
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n)) }

func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// x509Fixture is a CA, an intermediate, a leaf under each, and a policy
// config trusting the CA.
type x509Fixture struct {
	ca, inter, leaf, subLeaf *xmlsigtest.Cert
	caFile, knownFile        string
}

func newX509Fixture(t testing.TB) *x509Fixture {
	f := &x509Fixture{ca: xmlsigtest.NewCA(t, "wss test CA")}
	f.inter = f.ca.Issue(t, pkix.Name{CommonName: "wss intermediate"}, xmlsigtest.RSAKey(t, 3), func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign
	})
	f.leaf = f.ca.Issue(t, pkix.Name{CommonName: "billing", Organization: []string{"Example"}}, xmlsigtest.RSAKey(t, 1), nil)
	f.subLeaf = f.inter.Issue(t, pkix.Name{CommonName: "sub signer"}, xmlsigtest.ECKey(t), nil)
	dir := t.TempDir()
	f.caFile = writeFile(t, dir, "ca.pem", f.ca.CertPEM())
	f.knownFile = writeFile(t, dir, "known.pem", f.leaf.CertPEM())
	return f
}

func (f *x509Fixture) config(extra string) string {
	return "x509:\n  trust: {ca_file: " + f.caFile + "}\n  certificates: [" + f.knownFile + "]\n" + extra
}

func TestX509Signature(t *testing.T) {
	f := newX509Fixture(t)
	now := time.Now()
	other := xmlsigtest.NewCA(t, "other CA").Issue(t, pkix.Name{CommonName: "billing", Organization: []string{"Example"}}, xmlsigtest.RSAKey(t, 2), nil)
	expired := f.ca.Issue(t, pkix.Name{CommonName: "old"}, xmlsigtest.RSAKey(t, 2), func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
	})
	noSign := f.ca.Issue(t, pkix.Name{CommonName: "encipher only"}, xmlsigtest.RSAKey(t, 2), func(c *x509.Certificate) {
		c.KeyUsage = x509.KeyUsageKeyEncipherment
	})
	tests := []struct {
		name   string
		cfg    string
		signer *xmlsigtest.Cert
		chain  []*x509.Certificate
		mode   string
		ids    []string
		want   string
	}{
		{"reference", f.config(""), f.leaf, nil, refReference, nil, ""},
		{"ecdsa via pkipath", f.config(""), f.subLeaf, []*x509.Certificate{f.inter.Cert}, refPKIPath, nil, ""},
		{"intermediate missing", f.config(""), f.subLeaf, nil, refReference, nil, CodeFailedAuthentication},
		{"ski", f.config(""), f.leaf, nil, refSKI, nil, ""},
		{"thumbprint", f.config(""), f.leaf, nil, refThumbprint, nil, ""},
		{"issuer serial", f.config(""), f.leaf, nil, refIssuerSerial, nil, ""},
		{"ski of unknown certificate", f.config(""), other, nil, refSKI, nil, CodeSecurityTokenUnavailable},
		{"untrusted", f.config(""), other, nil, refReference, nil, CodeFailedAuthentication},
		{"expired", f.config(""), expired, nil, refReference, nil, CodeFailedAuthentication},
		{"key usage", f.config(""), noSign, nil, refReference, nil, CodeFailedAuthentication},
		{"pinned", f.config("  subjects: [\"CN=billing,O=Example\"]\n"), f.leaf, nil, refReference, nil, ""},
		{"not pinned", f.config("  subjects: [\"CN=someone else\"]\n"), f.leaf, nil, refReference, nil, CodeFailedAuthentication},
		{"body not signed", f.config(""), f.leaf, nil, refReference, []string{"TS-1"}, CodeFailedCheck},
		{"timestamp not signed", f.config(""), f.leaf, nil, refReference, []string{"Body-1"}, CodeFailedCheck},
		{"timestamp not required", f.config("signature: {required_parts: [Body]}\n"), f.leaf, nil, refReference, []string{"Body-1"}, ""},
		{"sha1 key alg not allowed", f.config("signature: {algorithms: [ecdsa-sha256, sha256]}\n"), f.leaf, nil, refReference, nil, CodeUnsupportedAlgorithm},
		{"x509 not configured", utConfig, f.leaf, nil, refReference, nil, CodeUnsupportedSecurityToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(t, tt.cfg, &clock{now})
			msg := signedMessage(t, tt.signer, tt.chain, now, tt.mode, "", tt.ids...)
			ex, err := apply(t, p, msg, false)
			wantCode(t, err, tt.want)
			if tt.want == "" {
				if ex.Principal == nil || ex.Principal.Subject != tt.signer.Cert.Subject.String() || ex.Principal.Method != "wss-x509" {
					t.Errorf("principal %+v", ex.Principal)
				}
				// The same message again is a replay.
				_, err := apply(t, p, msg, false)
				wantCode(t, err, CodeFailedAuthentication)
			}
		})
	}
}

// TestKeyOnlyFromTokens: a KeyInfo naming the key directly (KeyValue, an
// X509Certificate in X509Data) is not a token, and is refused.
func TestKeyOnlyFromTokens(t *testing.T) {
	f := newX509Fixture(t)
	now := time.Now()
	msg := signedMessage(t, f.leaf, nil, now, refReference, "")
	doc := etree.NewDocument()
	doc.ReadFromString(msg)
	ki := doc.FindElement("//KeyInfo")
	for _, c := range ki.ChildElements() {
		ki.RemoveChild(c)
	}
	ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(f.leaf.Cert.Raw))
	out, _ := doc.WriteToString()
	p := build(t, f.config(""), &clock{now})
	_, err := apply(t, p, out, false)
	wantCode(t, err, CodeUnsupportedSecurityToken)
}

// TestSignatureWrapping runs the XML signature wrapping variants against a
// message whose Body and Timestamp are validly signed: each moves the
// signed content where a naive verifier still finds it by Id, and puts
// other content where the service will read it.
func TestSignatureWrapping(t *testing.T) {
	f := newX509Fixture(t)
	now := time.Now()
	evil := `<m:DeleteAll xmlns:m="urn:gatehouse:demo:products"/>`
	tests := []struct {
		name string
		edit func(doc *etree.Document)
		want string
	}{
		{"untouched", func(*etree.Document) {}, ""},
		{"signed body moved into a header wrapper, new body", func(doc *etree.Document) {
			env, body := doc.Root(), doc.FindElement("/Envelope/Body")
			env.RemoveChild(body)
			doc.FindElement("/Envelope/Header").CreateElement("Wrapper").AddChild(body)
			env.CreateElement("soap:Body").AddChild(parseEl(evil))
		}, CodeFailedCheck},
		{"signed body moved into the security header", func(doc *etree.Document) {
			env, body := doc.Root(), doc.FindElement("/Envelope/Body")
			env.RemoveChild(body)
			doc.FindElement("//Security").AddChild(body)
			env.CreateElement("soap:Body").AddChild(parseEl(evil))
		}, CodeUnsupportedSecurityToken},
		{"new body with the same id", func(doc *etree.Document) {
			env, body := doc.Root(), doc.FindElement("/Envelope/Body")
			env.RemoveChild(body)
			doc.FindElement("/Envelope/Header").CreateElement("Wrapper").AddChild(body)
			nb := env.CreateElement("soap:Body")
			nb.CreateAttr("wsu:Id", "Body-1")
			nb.AddChild(parseEl(evil))
		}, CodeInvalidSecurity},
		{"body wrapped in an unknown element", func(doc *etree.Document) {
			env, body := doc.Root(), doc.FindElement("/Envelope/Body")
			env.RemoveChild(body)
			env.CreateElement("Wrapper").AddChild(body)
			env.CreateElement("soap:Body").AddChild(parseEl(evil))
		}, CodeInvalidSecurity},
		{"signed body inside the new body", func(doc *etree.Document) {
			env, body := doc.Root(), doc.FindElement("/Envelope/Body")
			env.RemoveChild(body)
			nb := env.CreateElement("soap:Body")
			nb.AddChild(parseEl(evil))
			nb.CreateElement("Wrapper").AddChild(body)
		}, CodeFailedCheck},
		{"signed timestamp moved, fresh unsigned one", func(doc *etree.Document) {
			sec, ts := doc.FindElement("//Security"), doc.FindElement("//Timestamp")
			sec.RemoveChild(ts)
			doc.FindElement("/Envelope/Header").CreateElement("Wrapper").AddChild(ts)
			sec.AddChild(parseEl(`<wsu:Timestamp xmlns:wsu="` + NamespaceWSU + `"><wsu:Created>` + stamp(now) + `</wsu:Created></wsu:Timestamp>`))
		}, CodeFailedCheck},
		{"second security header with the signed parts", func(doc *etree.Document) {
			h := doc.FindElement("/Envelope/Header")
			h.AddChild(doc.FindElement("//Security").Copy())
		}, CodeInvalidSecurity},
		{"signature moved to a header for another actor", func(doc *etree.Document) {
			sec, sig := doc.FindElement("//Security"), doc.FindElement("//Signature")
			sec.RemoveChild(sig)
			o := doc.FindElement("/Envelope/Header").CreateElement("wsse:Security")
			// Declared, or the parse refuses the message before the
			// signature is looked for.
			o.CreateAttr("xmlns:wsse", NamespaceWSSE)
			o.CreateAttr("soap:actor", "urn:other")
			o.AddChild(sig)
		}, CodeFailedAuthentication},
		{"body tampered", func(doc *etree.Document) {
			doc.FindElement("//id").SetText("p-1002")
		}, CodeFailedCheck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(t, f.config(""), &clock{now})
			doc := etree.NewDocument()
			if err := doc.ReadFromString(signedMessage(t, f.leaf, nil, now, refReference, "")); err != nil {
				t.Fatal(err)
			}
			tt.edit(doc)
			out, _ := doc.WriteToString()
			_, err := apply(t, p, out, false)
			wantCode(t, err, tt.want)
		})
	}
}

func parseEl(s string) *etree.Element {
	d := etree.NewDocument()
	if err := d.ReadFromString(s); err != nil {
		panic(err)
	}
	return d.Root()
}

func TestRequireBoth(t *testing.T) {
	f := newX509Fixture(t)
	now := time.Now()
	cfg := f.config("require: all\n" + strings.TrimPrefix(utConfig, "\n"))
	p := build(t, cfg, &clock{now})
	_, err := apply(t, p, signedMessage(t, f.leaf, nil, now, refReference, ""), false)
	wantCode(t, err, CodeFailedAuthentication)
	_, err = apply(t, p, utMessage(t, "alice", "s3cret", true, now), false)
	wantCode(t, err, CodeFailedAuthentication)

	// Both in one message, the token signed too.
	msg := signedMessage(t, f.leaf, nil, now, refReference, "")
	msg = strings.Replace(msg, "<wsu:Timestamp", usernameToken("alice", "s3cret", true, newNonce(t), now)+"<wsu:Timestamp", 1)
	// The signature was made without the token; re-sign with it.
	doc := etree.NewDocument()
	doc.ReadFromString(msg)
	sig := doc.FindElement("//Signature")
	sig.Parent().RemoveChild(sig)
	str := sig.FindElement("./KeyInfo/SecurityTokenReference")
	xmlsigtest.Signer{Key: f.leaf.Key}.Sign(t, doc.FindElement("//Security"), []string{"TS-1", "Body-1", "UT-1"}, str.Copy())
	out, _ := doc.WriteToString()
	ex, err := apply(t, p, out, false)
	wantCode(t, err, "")
	if ex.Principal.Subject != "alice" || ex.Principal.Claims["x509_subject"] != f.leaf.Cert.Subject.String() {
		t.Errorf("principal %+v", ex.Principal)
	}
}
