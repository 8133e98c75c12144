package dlp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// The card number every sidestep tries to get past dlp, and what masking
// makes of it.
const (
	card       = "4111 1111 1111 1111"
	cardMasked = "**** **** **** 1111"
)

// upstreamSeen is what the upstream was sent.
type upstreamSeen struct {
	mu     sync.Mutex
	header http.Header
}

func (s *upstreamSeen) set(h http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.header = h.Clone()
}

func (s *upstreamSeen) get() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.header
}

// sidestepBody is a JSON body holding the card.
var sidestepBody = `{"name":"gift","note":"card ` + card + ` on file"}`

// pngBody is a PNG signature and binary bytes, then the card.
var pngBody = "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x01\x02" + strings.Repeat("\x00\xff", 300) + card

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, s)
	zw.Close()
	return b.String()
}

// TestGatewaySidesteps drives a real gateway with a dlp route in front of
// a real upstream that tries, case by case, to get the card number to the
// client unscanned, and asserts on what the client received and what the
// upstream was sent. In mask mode and in block mode alike, the card never
// arrives: masked, or the response refused with 502.
func TestGatewaySidesteps(t *testing.T) {
	gz := gzipped(t, sidestepBody)
	type answer func(w http.ResponseWriter, r *http.Request)
	withType := func(ct []string) answer {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = ct // nil: none, and no sniffing
			io.WriteString(w, sidestepBody)
		}
	}
	withEncoding := func(ce []string, body string) answer {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header()["Content-Encoding"] = ce
			io.WriteString(w, body)
		}
	}
	const (
		masked      = "masked"      // 200, the card masked
		refused     = "refused"     // 502 response_unscannable
		untouched   = "untouched"   // 200, the body as sent (not a scanned type)
		upstream5x  = "upstream5x"  // the gateway could not read the upstream: 502
		fieldMasked = "fieldMasked" // 200, the card masked in a header field
	)
	inField := func(k, v string) answer {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(k, v)
			io.WriteString(w, `{"ok":true}`)
		}
	}
	tests := []struct {
		name   string
		req    func(r *http.Request)
		answer answer
		want   string
	}{
		// Ranges: asked for, they never reach the upstream; answered
		// anyway, the partial response is refused.
		{"range asked", func(r *http.Request) {
			r.Header.Set("Range", "bytes=20-30")
			r.Header.Set("If-Range", `"v1"`)
		}, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Etag", `"v1"`)
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader(sidestepBody))
		}, masked},
		{"206 unasked", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(sidestepBody)-1, len(sidestepBody)+10))
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, sidestepBody)
		}, refused},
		{"multipart/byteranges", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "multipart/byteranges; boundary=X")
			io.WriteString(w, "--X\r\nContent-Type: application/json\r\nContent-Range: bytes 0-9/99\r\n\r\n"+sidestepBody+"\r\n--X--\r\n")
		}, refused},
		{"content-range on 200", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Range", "bytes 0-9/99")
			io.WriteString(w, sidestepBody)
		}, refused},

		// Encodings: anything but one identity is refused.
		{"gzip", nil, withEncoding([]string{"gzip"}, gz), refused},
		{"GZIP uppercase", nil, withEncoding([]string{"GZIP"}, gz), refused},
		{"gzip padded", nil, withEncoding([]string{" gzip "}, gz), refused},
		{"br", nil, withEncoding([]string{"br"}, sidestepBody), refused},
		{"deflate", nil, withEncoding([]string{"deflate"}, sidestepBody), refused},
		{"zstd", nil, withEncoding([]string{"zstd"}, sidestepBody), refused},
		{"unknown coding", nil, withEncoding([]string{"x-custom"}, sidestepBody), refused},
		{"identity then gzip list", nil, withEncoding([]string{"identity, gzip"}, gz), refused},
		{"gzip then identity list", nil, withEncoding([]string{"gzip, identity"}, gz), refused},
		{"identity twice", nil, withEncoding([]string{"identity, identity"}, sidestepBody), refused},
		{"repeated fields", nil, withEncoding([]string{"identity", "gzip"}, gz), refused},
		{"gzip twice", nil, withEncoding([]string{"gzip", "gzip"}, gzipped(t, gz)), refused},
		{"identity", nil, withEncoding([]string{"identity"}, sidestepBody), masked},
		{"IDENTITY", nil, withEncoding([]string{"IDENTITY"}, sidestepBody), masked},
		{"empty coding", nil, withEncoding([]string{""}, sidestepBody), masked},

		// Types: everything textual is scanned by default.
		{"text/html", nil, withType([]string{"text/html; charset=utf-8"}), masked},
		{"text/plain", nil, withType([]string{"text/plain"}), masked},
		{"text/csv", nil, withType([]string{"text/csv"}), masked},
		{"application/javascript", nil, withType([]string{"application/javascript"}), masked},
		{"application/x-javascript (JSON-P)", nil, withType([]string{"application/x-javascript"}), masked},
		{"text/javascript", nil, withType([]string{"text/javascript"}), masked},
		{"application/problem+json", nil, withType([]string{"application/problem+json"}), masked},
		{"application/vnd.api+json", nil, withType([]string{"application/vnd.api+json"}), masked},
		{"application/soap+xml", nil, withType([]string{"application/soap+xml; charset=utf-8"}), masked},
		{"application/xml", nil, withType([]string{"application/xml"}), masked},
		{"form", nil, withType([]string{"application/x-www-form-urlencoded"}), masked},
		{"ndjson", nil, withType([]string{"application/x-ndjson"}), masked},
		{"octet-stream", nil, withType([]string{"application/octet-stream"}), masked},
		{"uppercase", nil, withType([]string{"APPLICATION/JSON; CHARSET=UTF-8"}), masked},
		{"no type", nil, withType(nil), masked},
		{"empty type", nil, withType([]string{""}), masked},
		{"not a type", nil, withType([]string{"json"}), masked},
		{"image then html", nil, withType([]string{"image/png", "text/html"}), masked},
		{"image, html list", nil, withType([]string{"image/png, text/html"}), masked},
		{"svg", nil, withType([]string{"image/svg+xml"}), masked},
		// Binary media pass unscanned, unless their first bytes show
		// text: a client sniffing them would read the card.
		{"png", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			io.WriteString(w, pngBody)
		}, untouched},
		{"text labelled png", nil, withType([]string{"image/png"}), masked},
		{"text labelled font", nil, withType([]string{"font/woff2"}), masked},
		{"html labelled video", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "video/mp4")
			io.WriteString(w, "<html><body>"+strings.Repeat(" ", 600)+sidestepBody+"</body></html>")
		}, masked},

		// Header fields are scanned as bodies are.
		{"card in a field", nil, inField("X-Debug", "card "+card), fieldMasked},
		{"card in a cookie", nil, inField("Set-Cookie", "c="+strings.ReplaceAll(card, " ", "")+"; Path=/"), fieldMasked},
		{"card in a link", nil, inField("Link", "</cards/"+strings.ReplaceAll(card, " ", "-")+">; rel=related"), fieldMasked},

		// A protocol switch would replace the response by a tunnel:
		// never asked for, and refused when it comes anyway.
		{"upgrade asked", func(r *http.Request) {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}, withType([]string{"application/json"}), masked},
		{"101 unasked", nil, func(w http.ResponseWriter, r *http.Request) {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + sidestepBody)
			brw.Flush()
		}, upstream5x},
		// Transfer codings the gateway cannot frame are the upstream's
		// failure, never a body passed unread.
		{"transfer-encoding gzip, chunked", nil, func(w http.ResponseWriter, r *http.Request) {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(gz), gz)
			brw.Flush()
		}, upstream5x},
		{"transfer-encoding and content-length", nil, func(w http.ResponseWriter, r *http.Request) {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(sidestepBody), sidestepBody)
			brw.Flush()
		}, masked},
	}
	var seen upstreamSeen
	var answers sync.Map // case name -> answer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.set(r.Header)
		a, _ := answers.Load(r.URL.Query().Get("case"))
		a.(answer)(w, r)
	}))
	t.Cleanup(srv.Close)
	for _, tt := range tests {
		answers.Store(tt.name, tt.answer)
	}
	for _, mode := range []string{"mask", "block"} {
		inst := startGateway(t, "{credit_cards: {action: "+mode+"}}", srv.URL)
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				req, _ := http.NewRequest("GET", inst.url+"/product?case="+urlQuery(tt.name), nil)
				req.Header.Set("Accept-Encoding", "gzip, br, zstd")
				if tt.req != nil {
					tt.req(req)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got := string(b)
				if tt.want != untouched && (strings.Contains(got, card) || strings.Contains(got, gz)) {
					t.Fatalf("the card reached the client: %d %q", resp.StatusCode, got)
				}
				for k, vs := range resp.Header {
					for _, v := range vs {
						if digits(v) != "" && strings.Contains(digits(v), "4111111111111111") {
							t.Errorf("the card reached the client in %s: %q", k, v)
						}
					}
				}
				if h := seen.get(); h != nil {
					for _, k := range []string{"Range", "If-Range", "Upgrade", "Accept-Encoding"} {
						if v := h.Get(k); v != "" {
							t.Errorf("the upstream was sent %s: %q", k, v)
						}
					}
				}
				want := tt.want
				if (want == masked || want == fieldMasked) && mode == "block" {
					want = "blocked"
				}
				switch want {
				case masked:
					if err != nil || resp.StatusCode != 200 || !strings.Contains(got, cardMasked) {
						t.Errorf("got %d %q (%v), want 200 with the card masked", resp.StatusCode, got, err)
					}
				case fieldMasked:
					if resp.StatusCode != 200 || got != `{"ok":true}` || !strings.Contains(fmt.Sprint(resp.Header), "1111") {
						t.Errorf("got %d %q %v, want 200 with the field masked", resp.StatusCode, got, resp.Header)
					}
				case untouched:
					if err != nil || resp.StatusCode != 200 || got != pngBody {
						t.Errorf("got %d %q (%v), want 200 as sent", resp.StatusCode, got, err)
					}
				case "blocked", refused:
					code := CodeBlocked
					if want == refused {
						code = CodeUnscannable
					}
					if resp.StatusCode != 502 || problemCode(got) != code {
						t.Errorf("got %d %q, want 502 %s", resp.StatusCode, got, code)
					}
					for _, k := range []string{"Content-Encoding", "Content-Range", "Etag"} {
						if v := resp.Header.Get(k); v != "" {
							t.Errorf("the refusal carries the refused response's %s: %q", k, v)
						}
					}
				case upstream5x:
					if resp.StatusCode != 502 {
						t.Errorf("got %d %q, want 502", resp.StatusCode, got)
					}
				}
			})
		}
	}
}

// digits returns the decimal digits of s.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

func urlQuery(s string) string {
	return strings.NewReplacer(" ", "+", "/", "%2F", ",", "%2C", "(", "%28", ")", "%29", "+", "%2B").Replace(s)
}

func problemCode(body string) string {
	var p struct{ Code string }
	json.Unmarshal([]byte(body), &p)
	return p.Code
}

// Trailers come after the body was scanned: on a dlp route, declared or
// not, for scanned and unscanned types, they never reach the client, as
// trailers or (a held status sent after them) as header fields.
func TestGatewayTrailersDropped(t *testing.T) {
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + strings.Repeat("\x00\x01", 300)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"ok":true}`
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("type") == "png" {
			w.Header().Set("Content-Type", "image/png")
			body = png
		}
		w.Header().Set("Trailer", "X-Declared")
		w.WriteHeader(200)
		io.WriteString(w, body)
		w.(http.Flusher).Flush()
		w.Header().Set("X-Declared", card)
		if r.URL.Query().Get("undeclared") != "" {
			w.Header().Set(http.TrailerPrefix+"X-Undeclared", card)
		}
	}))
	t.Cleanup(srv.Close)
	for _, mode := range []string{"mask", "block"} {
		inst := startGateway(t, "{credit_cards: {action: "+mode+"}}", srv.URL)
		for _, q := range []string{"", "undeclared=1", "type=png", "type=png&undeclared=1"} {
			resp, err := client.Get(inst.url + "/product?" + q)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || (string(b) != `{"ok":true}` && string(b) != png) {
				t.Errorf("%s %s: got %d %.40q (%v)", mode, q, resp.StatusCode, b, err)
			}
			if len(resp.Trailer) != 0 || resp.Header.Get("X-Declared") != "" || resp.Header.Get("X-Undeclared") != "" || resp.Header.Get("Trailer") != "" {
				t.Errorf("%s %s: trailers reached the client: trailer %v, header %v", mode, q, resp.Trailer, resp.Header)
			}
		}
	}
}

// Informational responses carry header fields no filter sees: on a route
// with response filters they are not passed on.
func TestGatewayNoEarlyHints(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</"+card+">; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	inst := startGateway(t, "{credit_cards: {}}", srv.URL)
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprint(code, h))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", inst.url+"/product", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(hints) != 0 {
		t.Errorf("got %d, informational responses %v", resp.StatusCode, hints)
	}
}

// rawGet sends a raw HTTP/1.1 request to addr and returns the raw
// response head and body.
func rawGet(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req)
	b, _ := io.ReadAll(bufio.NewReader(c))
	return string(b)
}

// A HEAD has no body to scan; the response passes with its status, and a
// GET of the same resource is still masked.
func TestGatewayHead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, sidestepBody)
	}))
	t.Cleanup(srv.Close)
	inst := startGateway(t, "{credit_cards: {action: block}}", srv.URL)
	addr := strings.TrimPrefix(inst.url, "http://")
	head := rawGet(t, addr, "HEAD /product HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200 ") || strings.Contains(head, card) {
		t.Errorf("HEAD: %q", head)
	}
	get := rawGet(t, addr, "GET /product HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(get, "HTTP/1.1 502 ") || strings.Contains(get, card) {
		t.Errorf("GET: %q", get)
	}
}
