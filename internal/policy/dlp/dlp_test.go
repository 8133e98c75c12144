package dlp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Every detector masking, on one value each, whole and split across
// writes at every position.
func TestDetectors(t *testing.T) {
	const all = `
credit_cards: {}
ibans: {}
national_ids: {}
private_keys: {}
access_tokens: {}
custom:
  - {name: employee, pattern: 'EMP-[0-9]{6}'}
`
	jwt := testJWT(t)
	maskedJWT := strings.Map(func(r rune) rune {
		if r == '.' {
			return r
		}
		return '*'
	}, jwt)
	gh := "ghp_" + strings.Repeat("aB3", 12)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"visa", `{"card":"4111111111111111"}`, `{"card":"************1111"}`},
		{"visa spaced", `{"card":"4111 1111 1111 1111"}`, `{"card":"**** **** **** 1111"}`},
		{"mastercard dashed", `card 5500-0000-0000-0004.`, `card ****-****-****-0004.`},
		{"amex", `<card>378282246310005</card>`, `<card>***********0005</card>`},
		{"card as a JSON number stays a number", `{"card": 4111111111111111}`, `{"card": 4000000000001111}`},
		{"luhn invalid is not a card", `{"card":"4111111111111112"}`, `{"card":"4111111111111112"}`},
		{"too long a run is not a card", `id 41111111111111110000`, `id 41111111111111110000`},
		{"too short", `n 411111111111`, `n 411111111111`},
		{"iban", `{"iban":"DE89370400440532013000"}`, `{"iban":"******************3000"}`},
		{"iban printed", `IBAN GB82 WEST 1234 5698 7654 32 ok`, `IBAN **** **** **** **** **54 32 ok`},
		{"iban bad check digits", `DE88370400440532013000`, `DE88370400440532013000`},
		{"iban wrong length", `DE8937040044053201300`, `DE8937040044053201300`},
		{"ssn", `ssn: 123-45-6789`, `ssn: ***-**-6789`},
		{"ssn area 000", `000-45-6789`, `000-45-6789`},
		{"ssn area 666", `666-45-6789`, `666-45-6789`},
		{"ssn area 9xx", `912-45-6789`, `912-45-6789`},
		{"ssn group 00", `123-00-6789`, `123-00-6789`},
		{"ssn serial 0000", `123-45-0000`, `123-45-0000`},
		{"nino", `"AB123456C"`, `"*****456C"`},
		{"nino spaced", `NI: AB 12 34 56 C`, `NI: ** ** *4 56 C`},
		{"nino bad prefix", `GB123456C`, `GB123456C`},
		{"nino bad suffix", `AB123456E`, `AB123456E`},
		{"jwt", `{"token":"` + jwt + `"}`, `{"token":"` + maskedJWT + `"}`},
		{"aws", `key=AKIAIOSFODNN7EXAMPLE&x`, `key=AKIA****************&x`},
		{"github", `token ` + gh + ` end`, `token ghp_` + strings.Repeat("*", 36) + ` end`},
		{"slack", `"xoxb-1234567890-abcdefghij"`, `"xoxb-*********************"`},
		{"custom", `emp EMP-123456!`, `emp ***-**3456!`},
		{"clean", `{"name":"Espresso Machine","price":249.9,"id":"20240101123456789012"}`, `{"name":"Espresso Machine","price":249.9,"id":"20240101123456789012"}`},
	}
	d := mustNew(t, all)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, step := range []int{len(tt.in), 1, 3, 7} {
				got := throughPolicy(t, d, 200, nil, splits(tt.in, step)...)
				if got.body != tt.want {
					t.Errorf("in writes of %d: got %s, want %s", step, got.body, tt.want)
				}
			}
		})
	}
}

func TestIIN(t *testing.T) {
	// 4000000000000002 is Visa; 1234567812345670 passes Luhn but belongs
	// to no network.
	const in = `4000000000000002 1234567812345670`
	if got := through(t, "credit_cards: {iin: true}", 200, nil, in).body; got != `************0002 1234567812345670` {
		t.Errorf("iin: got %s", got)
	}
	if got := through(t, "credit_cards: {}", 200, nil, in).body; got != `************0002 ************5670` {
		t.Errorf("no iin: got %s", got)
	}
}

// A private key inside a JSON string: masked, the document still valid
// JSON, none of the key's base64 left.
func TestPrivateKeyInJSON(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	doc, _ := json.Marshal(map[string]string{"key": pemKey, "note": "ok"})
	for _, step := range []int{len(doc), 5, 64} {
		got := through(t, "private_keys: {}", 200, nil, splits(string(doc), step)...)
		var v map[string]string
		if err := json.Unmarshal([]byte(got.body), &v); err != nil {
			t.Fatalf("step %d: masked body is not JSON: %v\n%s", step, err, got.body)
		}
		if !strings.HasPrefix(v["key"], "-----BEGIN PRIVATE KEY-----\n") || !strings.HasSuffix(v["key"], "-----END PRIVATE KEY-----\n") {
			t.Errorf("step %d: BEGIN/END lines lost: %q", step, v["key"])
		}
		b64 := base64.StdEncoding.EncodeToString(der)
		for i := 0; i+8 <= len(b64); i += 8 {
			if strings.Contains(got.body, b64[i:i+8]) {
				t.Fatalf("step %d: key material %q left in %s", step, b64[i:i+8], got.body)
			}
		}
		if len(got.body) != len(doc) {
			t.Errorf("step %d: length %d, want %d", step, len(got.body), len(doc))
		}
	}
	// RSA-style labels too, and a PEM that is not a private key is left.
	in := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"
	want := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN RSA PRIVATE KEY-----\n******\n-----END RSA PRIVATE KEY-----"
	if got := through(t, "private_keys: {}", 200, http.Header{"Content-Type": {"text/plain"}}, in).body; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestBlock(t *testing.T) {
	const yaml = "credit_cards: {action: block}\nmax_buffer: 4KiB"
	card := `{"card":"4111 1111 1111 1111"}`
	// Split so that the card number straddles writes.
	got := through(t, yaml, 200, http.Header{"Content-Type": {"application/json"}, "Etag": {`"x"`}, "Content-Length": {"30"}}, splits(card, 13)...)
	if got.status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", got.status)
	}
	if strings.Contains(got.body, "1111") || !strings.Contains(got.body, `"code":"response_blocked"`) {
		t.Errorf("body %s", got.body)
	}
	if got.header.Get("Content-Type") != "application/problem+json" || got.header.Get("Etag") != "" ||
		got.header.Get("Content-Length") != strconv.Itoa(len(got.body)) {
		t.Errorf("headers %v for a body of %d", got.header, len(got.body))
	}

	clean := `{"card":"none"}`
	got = through(t, yaml, 201, nil, clean)
	if got.status != 201 || got.body != clean {
		t.Errorf("clean: got %d %s", got.status, got.body)
	}

	big := `{"pad":"` + strings.Repeat("x", 5000) + `"}`
	got = through(t, yaml, 200, nil, splits(big, 1000)...)
	if got.status != 502 || !strings.Contains(got.body, CodeUnscannable) {
		t.Errorf("oversize: got %d %s", got.status, got.body)
	}
	got = through(t, yaml, 200, http.Header{"Content-Length": {"5011"}}, big)
	if got.status != 502 || !strings.Contains(got.body, CodeUnscannable) {
		t.Errorf("oversize by Content-Length: got %d %s", got.status, got.body)
	}
	// oversize: mask sends what it held and masks what follows.
	bigCard := big + card
	got = through(t, yaml+"\noversize: mask", 200, nil, splits(bigCard, 1000)...)
	if got.status != 200 || got.body != big+`{"card":"**** **** **** 1111"}` {
		t.Errorf("oversize mask: got %d %.60s...", got.status, got.body[len(got.body)-40:])
	}
}

func TestLogAndPass(t *testing.T) {
	in := `{"card":"4111111111111111"}`
	if got := through(t, "credit_cards: {action: log}", 200, nil, in); got.body != in || got.status != 200 {
		t.Errorf("log: got %d %s", got.status, got.body)
	}
	// Not a scanned type (and not text): untouched, even with a blocking
	// detector.
	img := http.Header{"Content-Type": {"image/png"}}
	png := "\x89PNG\r\n\x1a\n\x00\x00" + in
	if got := through(t, "credit_cards: {action: block}", 200, img, png); got.body != png || got.status != 200 {
		t.Errorf("image: got %d %s", got.status, got.body)
	}
	// Compressed: cannot be read, refused.
	gz := http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}
	if got := through(t, "credit_cards: {}", 200, gz, in); got.status != 502 || !strings.Contains(got.body, CodeUnscannable) {
		t.Errorf("gzip: got %d %s", got.status, got.body)
	}
}

// Every textual type is scanned by default, whatever its case,
// parameters or number of values; only binary media are not.
func TestContentTypes(t *testing.T) {
	d := mustNew(t, "credit_cards: {}")
	listed := mustNew(t, "credit_cards: {}\ncontent_types: [application/json, +xml]")
	for _, tt := range []struct {
		ct           []string // nil: no Content-Type
		want, listed bool
	}{
		{[]string{"application/json"}, true, true},
		{[]string{"application/json; charset=utf-8"}, true, true},
		{[]string{"APPLICATION/JSON;CHARSET=UTF-8"}, true, true},
		{[]string{"application/problem+json"}, true, false},
		{[]string{"application/vnd.api+json"}, true, false},
		{[]string{"text/html"}, true, false},
		{[]string{"Text/Plain"}, true, false},
		{[]string{"text/javascript"}, true, false},
		{[]string{"application/javascript"}, true, false},
		{[]string{"application/x-javascript"}, true, false},
		{[]string{"application/ecmascript"}, true, false},
		{[]string{"application/xml"}, true, false},
		{[]string{"application/soap+xml"}, true, true},
		{[]string{"text/xml"}, true, false},
		{[]string{"application/x-www-form-urlencoded"}, true, false},
		{[]string{"application/x-ndjson"}, true, false},
		{[]string{"application/yaml"}, true, false},
		{[]string{"text/csv"}, true, false},
		{[]string{"application/octet-stream"}, true, false},
		{[]string{"application/pdf"}, true, false},
		{[]string{"image/svg+xml"}, true, true},
		{nil, true, true},
		{[]string{""}, true, true},
		{[]string{"nonsense"}, true, true},
		{[]string{"text"}, true, true},
		{[]string{"image/png"}, false, false},
		{[]string{"IMAGE/PNG"}, false, false},
		{[]string{"video/mp4"}, false, false},
		{[]string{"audio/ogg"}, false, false},
		{[]string{"font/woff2"}, false, false},
		// Several values: one scanned is enough (clients differ on
		// which one they use).
		{[]string{"image/png", "text/html"}, true, false},
		{[]string{"image/png, text/html"}, true, false},
		{[]string{"image/png", "application/json"}, true, true},
		{[]string{"image/png, image/gif"}, false, false},
	} {
		h := http.Header{}
		if tt.ct != nil {
			h["Content-Type"] = tt.ct
		}
		if got := d.s.scannableHeader(h); got != tt.want {
			t.Errorf("default: scannable(%q): got %v, want %v", tt.ct, got, tt.want)
		}
		if got := listed.s.scannableHeader(h); got != tt.listed {
			t.Errorf("listed: scannable(%q): got %v, want %v", tt.ct, got, tt.listed)
		}
	}
}

// Memory is bounded: a large clean response streams through a window of
// d.Window() bytes, not buffered whole.
func TestBoundedMemory(t *testing.T) {
	d := mustNew(t, "credit_cards: {}\nprivate_keys: {}")
	chunk := bytes.Repeat([]byte(`{"name":"Espresso Machine","price":249.9},`), 800) // ~33KB
	w, rec := startWriter(t, d)
	for range 64 { // ~2MB
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if held := len(w.buf) - w.start; held > d.Window() {
			t.Fatalf("holds %d bytes, window %d", held, d.Window())
		}
		if cap(w.buf) > 2*(d.Window()+len(chunk))+1 {
			t.Fatalf("buffer grew to %d", cap(w.buf))
		}
	}
	w.End()
	if rec.Body.Len() != 64*len(chunk) {
		t.Errorf("passed %d bytes, want %d", rec.Body.Len(), 64*len(chunk))
	}
}

func mustNew(t testing.TB, yaml string) *DLP {
	t.Helper()
	return mustNewEnv(t, yaml, nil)
}

// testJWT is a JWT signed with a key made here.
func testJWT(t testing.TB) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))
	p := enc.EncodeToString([]byte(`{"sub":"alice","exp":4102444800}`))
	sig := ed25519.Sign(priv, []byte(h+"."+p))
	return h + "." + p + "." + enc.EncodeToString(sig)
}

// A body labelled as binary media is scanned when its first bytes show
// text, whatever the writes it comes in; real binary passes as it is.
func TestSniffLabelledBinary(t *testing.T) {
	text := strings.Repeat("x", 500) + `"card":"4111 1111 1111 1111"` + strings.Repeat("y", 100)
	want := strings.Replace(text, "4111 1111 1111 1111", "**** **** **** 1111", 1)
	bin := "\x89PNG\r\n\x1a\n" + strings.Repeat("\x00\x01", 400) + "4111 1111 1111 1111"
	png := http.Header{"Content-Type": {"image/png"}}
	for _, step := range []int{1, 7, 511, 512, 513, 4096} {
		if got := through(t, "credit_cards: {}", 200, png.Clone(), splits(text, step)...); got.status != 200 || got.body != want {
			t.Errorf("text, step %d: got %d %.60q", step, got.status, got.body)
		}
		if got := through(t, "credit_cards: {action: block}", 200, png.Clone(), splits(text, step)...); got.status != 502 {
			t.Errorf("text, block, step %d: got %d %.60q", step, got.status, got.body)
		}
		if got := through(t, "credit_cards: {action: block}", 200, png.Clone(), splits(bin, step)...); got.status != 200 || got.body != bin {
			t.Errorf("binary, step %d: got %d %.60q", step, got.status, got.body)
		}
	}
	// Shorter than what is sniffed: decided at the end.
	if got := through(t, "credit_cards: {}", 200, png.Clone(), `"4111 1111 1111 1111"`); got.body != `"**** **** **** 1111"` {
		t.Errorf("short: got %d %q", got.status, got.body)
	}
}

// A response filter's contract, whatever the path: the status once, End
// passed on once (policytest's Recorder and links fail the test
// otherwise), nothing after a refusal.
func TestContract(t *testing.T) {
	for _, yaml := range []string{"credit_cards: {}", "credit_cards: {action: block}", "credit_cards: {action: block}\nmax_buffer: 1KiB", "credit_cards: {action: block}\nmax_buffer: 1KiB\noversize: mask"} {
		for _, body := range []string{"", "clean", strings.Repeat("clean ", 400), "4111 1111 1111 1111", strings.Repeat("c", 2000) + " 4111 1111 1111 1111"} {
			for _, h := range []http.Header{{"Content-Type": {"application/json"}}, {"Content-Encoding": {"gzip"}}, {"Content-Type": {"image/png"}}} {
				got := through(t, yaml, 200, h.Clone(), splits(body, 100)...)
				if strings.Contains(got.body, "4111 1111") {
					t.Errorf("%q, %v: the card passed: %d %.80q", yaml, h, got.status, got.body)
				}
			}
		}
	}
}
