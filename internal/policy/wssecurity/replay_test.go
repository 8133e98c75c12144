package wssecurity

import (
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/xmlsig/xmlsigtest"
)

var (
	sigValueRE = regexp.MustCompile(`<ds:SignatureValue>([^<]*)</ds:SignatureValue>`)
	tokenRefRE = regexp.MustCompile(`<wsse:Reference URI="#X509-1"[^>]*/>`)
)

// respell replaces the SignatureValue's text by f of its decoded bytes
// and text.
func respell(t *testing.T, msg string, f func(raw []byte, text string) string) string {
	t.Helper()
	m := sigValueRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatal("no SignatureValue")
	}
	raw, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(msg, m[0], "<ds:SignatureValue>"+f(raw, m[1])+"</ds:SignatureValue>", 1)
}

func wrapLines(s string, n int, sep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += n {
		b.WriteString(s[i:min(i+n, len(s))])
		b.WriteString(sep)
	}
	return b.String()
}

// dirtyPadding sets the unused low bits of the last base64 character
// before the padding, which a lenient decoder ignores.
func dirtyPadding(text string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(text, '=') - 1
	if i < 0 {
		return ""
	}
	mask := 0x0f // "==": 4 unused bits
	if strings.Count(text, "=") == 1 {
		mask = 0x03
	}
	v := strings.IndexByte(alphabet, text[i]) | mask
	return text[:i] + string(alphabet[v]) + text[i+1:]
}

// TestSignatureReplayProperty: once a signed message was accepted, every
// re-spelling of its signature's bytes and every malleated equivalent is
// refused, as a replay when it would otherwise verify, as invalid when
// not; and the equivalents that do verify are checked on a fresh cache to
// be accepted there, so that the property is not met by refusing
// everything.
func TestSignatureReplayProperty(t *testing.T) {
	f := newX509Fixture(t)
	now := time.Now()
	signers := []struct {
		name  string
		cert  *xmlsigtest.Cert
		chain []*x509.Certificate
		mode  string
		ecdsa bool
	}{
		{"rsa", f.leaf, nil, refReference, false},
		{"ecdsa", f.subLeaf, []*x509.Certificate{f.inter.Cert}, refPKIPath, true},
	}
	for _, s := range signers {
		t.Run(s.name, func(t *testing.T) {
			for i := range 3 {
				orig := signedMessage(t, s.cert, s.chain, now, s.mode, "")
				thumb := sha1.Sum(s.cert.Cert.Raw)
				type variant struct {
					name     string
					msg      string
					verifies bool // accepted on a fresh replay cache
				}
				vs := []variant{
					{"identical", orig, true},
					{"line breaks every 64", respell(t, orig, func(_ []byte, s string) string { return wrapLines(s, 64, "\n") }), true},
					{"CR LF every 76", respell(t, orig, func(_ []byte, s string) string { return wrapLines(s, 76, "\r\n") }), true},
					{"spaces and tabs", respell(t, orig, func(_ []byte, s string) string { return " \t" + wrapLines(s, 4, " ") + "\t " }), true},
					{"character references", respell(t, orig, func(_ []byte, s string) string { return s[:8] + "&#10;&#x9;" + s[8:] }), true},
					{"CDATA", respell(t, orig, func(_ []byte, s string) string { return "<![CDATA[" + s + "]]>" }), true},
					{"comment inside", respell(t, orig, func(_ []byte, s string) string { return s[:8] + "<!-- x -->" + s[8:] }), true},
					{"padding bits", respell(t, orig, func(_ []byte, s string) string { return dirtyPadding(s) }), false},
					{"padding in the middle", respell(t, orig, func(raw []byte, _ string) string {
						return base64.StdEncoding.EncodeToString(raw[:1]) + base64.StdEncoding.EncodeToString(raw[1:])
					}), false},
					{"URL alphabet", respell(t, orig, func(raw []byte, _ string) string { return base64.URLEncoding.EncodeToString(raw) }),
						// The same text unless it holds '+' or '/'.
						!strings.ContainsAny(sigValueRE.FindStringSubmatch(orig)[1], "+/")},
					{"namespace redeclared on SignedInfo", strings.Replace(orig, "<ds:SignedInfo>", `<ds:SignedInfo xmlns:unused="urn:unused" xmlns:ds="`+"http://www.w3.org/2000/09/xmldsig#"+`">`, 1), true},
					{"attributes reordered and requoted", strings.Replace(orig, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
						`<ds:CanonicalizationMethod xmlns:z='urn:z' Algorithm='http://www.w3.org/2001/10/xml-exc-c14n#' xmlns:ds="http://www.w3.org/2000/09/xmldsig#"></ds:CanonicalizationMethod>`, 1), true},
					{"InclusiveNamespaces added to SignedInfo's c14n", strings.Replace(orig, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
						`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="soap wsse"/></ds:CanonicalizationMethod>`, 1), false},
					{"InclusiveNamespaces added to a Reference", strings.Replace(orig, `<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
						`<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="soap"/></ds:Transform>`, 1), false},
					{"other KeyInfo, same SignedInfo", tokenRefRE.ReplaceAllString(orig, `<wsse:KeyIdentifier EncodingType="`+encBase64+`" ValueType="`+valueThumbSHA1+`">`+base64.StdEncoding.EncodeToString(thumb[:])+`</wsse:KeyIdentifier>`), true},
					{"other envelope, same signed parts", strings.Replace(strings.Replace(orig, `<soap:Header>`, `<soap:Header><x:Extra xmlns:x="urn:extra">1</x:Extra>`, 1),
						`<soap:Envelope `, `<soap:Envelope xmlns:y="urn:y" `, 1), true},
				}
				if s.ecdsa {
					vs = append(vs, variant{"ecdsa (r, n-s)", respell(t, orig, func(raw []byte, _ string) string {
						n := elliptic.P256().Params().N
						sv := new(big.Int).Sub(n, new(big.Int).SetBytes(raw[32:]))
						out := append([]byte(nil), raw[:32]...)
						return base64.StdEncoding.EncodeToString(append(out, sv.FillBytes(make([]byte, 32))...))
					}), true}, variant{"ecdsa value with a leading zero byte", respell(t, orig, func(raw []byte, _ string) string {
						return base64.StdEncoding.EncodeToString(append([]byte{0}, raw...))
					}), false})
				}
				c := &clock{t: now}
				p := build(t, f.config(""), c)
				if _, err := apply(t, p, orig, false); err != nil {
					t.Fatalf("original refused: %v", err)
				}
				for _, v := range vs {
					fresh := build(t, f.config(""), c)
					_, ferr := apply(t, fresh, v.msg, false)
					if (ferr == nil) != v.verifies {
						t.Fatalf("%s: on a fresh cache got %v, want accepted=%v\n%s", v.name, ferr, v.verifies, v.msg)
					}
					_, err := apply(t, p, v.msg, false)
					d, ok := policy.AsDenial(err)
					if !ok {
						t.Fatalf("%s (try %d): accepted after the original, want refused: %v", v.name, i, err)
					}
					if v.verifies && (d.Code != CodeFailedAuthentication || !strings.Contains(d.Err.Error(), "replay")) {
						t.Errorf("%s: refused with %s (%v), want a replay", v.name, d.Code, d.Err)
					}
				}
			}
		})
	}
}

// TestNonceReplayRespelled: the nonce cache is keyed on the decoded
// nonce, so a UsernameToken whose Nonce is re-spelled (line breaks,
// spaces, a character reference) is the same nonce, refused as a replay;
// a spelling with non-zero padding bits is not base64Binary at all.
func TestNonceReplayRespelled(t *testing.T) {
	now := time.Now()
	c := &clock{t: now}
	cfg := "username_token:\n  users:\n    - {username: alice, password: secret}\n"
	p := build(t, cfg, c)
	nonce := []byte("0123456789abcdef") // 16 bytes: "==" padding with 4 unused bits
	enc := base64.StdEncoding.EncodeToString(nonce)
	body := func(nonceText string) string {
		ut := usernameToken("alice", "secret", true, nonce, now)
		ut = strings.Replace(ut, ">"+enc+"<", ">"+nonceText+"<", 1)
		return envOpen11 + `<soap:Header>` + secOpen + timestamp(now) + ut +
			`</wsse:Security></soap:Header><soap:Body wsu:Id="Body-1">` + payload + `</soap:Body></soap:Envelope>`
	}
	_, err := apply(t, p, body(enc), false)
	wantCode(t, err, "")
	for name, text := range map[string]string{
		"identical":      enc,
		"line breaks":    enc[:8] + "\r\n" + enc[8:16] + "\n" + enc[16:],
		"spaces":         " " + enc[:4] + " " + enc[4:] + "\t",
		"character refs": enc[:4] + "&#10;" + enc[4:],
		"CDATA":          "<![CDATA[" + enc + "]]>",
	} {
		fresh := build(t, cfg, c)
		_, err := apply(t, fresh, body(text), false)
		wantCode(t, err, "") // the same nonce, valid on its own
		_, err = apply(t, p, body(text), false)
		wantCode(t, err, CodeFailedAuthentication)
		if !strings.Contains(err.Error(), "replay") {
			t.Errorf("%s: %v, want a replay", name, err)
		}
	}
	_, err = apply(t, build(t, cfg, c), body(dirtyPadding(enc)), false)
	wantCode(t, err, CodeInvalidSecurityToken)
}
