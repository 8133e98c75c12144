//go:build unix

package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/benchcpu"
	"github.com/gatehouse/gatehouse/internal/builtin"
)

// BenchmarkJWTChain measures the zero-trust chain of bench/jwt.yaml
// (authenticate with a local ES256 key set and the verified-token cache,
// rate_limit by client_id, scopes) on one repeated token, read from the
// file itself so that the benchmark follows the config the load script
// runs:
//
//   - chain: the route's chain alone on a pooled exchange, the cost the
//     policies add to a request;
//   - serve: the whole handler in front of a loopback upstream;
//   - plain: the same handler with bench/plain.yaml, the baseline that
//     issue 10's ratio is taken against.
//
// Besides ns/op each reports cpu-ns/op, the CPU time the process spent
// (all threads, so the garbage collector's share included) per request:
// on a machine shared with other work, wall time per op mostly measures
// the neighbours, CPU time much less so. (That needs getrusage, hence
// the unix build constraint.)
func BenchmarkJWTChain(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"p-1001"}`)
	}))
	defer up.Close()
	dir := b.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	tok := mintBenchToken(b, jwks)
	vars := map[string]string{"BENCH_LISTEN": "127.0.0.1:0", "BENCH_UPSTREAM": up.URL, "BENCH_JWKS": jwks}

	jwtGW := benchGateway(b, "../../bench/jwt.yaml", vars)
	plainGW := benchGateway(b, "../../bench/plain.yaml", vars)

	b.Run("chain", func(b *testing.B) {
		rt := jwtGW.current.Load()
		var chain []link
		for _, r := range rt.routes {
			if r.info.Name == "products" {
				chain = r.chain
			}
		}
		if len(chain) != 3 {
			b.Fatalf("chain of %d policies, want bench/jwt.yaml's 3", len(chain))
		}
		req := httptest.NewRequest("GET", "http://gw/product/p-1001", nil)
		req.RemoteAddr = "127.0.0.1:5000"
		req.Header.Set("Authorization", "Bearer "+tok)
		ctx := context.Background()
		run := func() {
			x := getExchange()
			x.Request = req
			x.ClientIP = rt.trusted0()
			if err := x.runChain(ctx, chain); err != nil {
				b.Fatal(err)
			}
			if x.Principal == nil || x.Principal.ClientID != "bench-client" {
				b.Fatalf("principal %+v", x.Principal)
			}
			putExchange(x)
		}
		run() // verify once: the loop measures cache hits
		b.ReportAllocs()
		c := benchcpu.Start(b)
		for b.Loop() {
			run()
		}
		c.Report()
	})
	for _, tc := range []struct {
		name string
		g    *Gateway
	}{{"serve", jwtGW}, {"plain", plainGW}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			c := benchcpu.Start(b)
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://gw/product/p-1001", nil)
				req.RemoteAddr = "127.0.0.1:5000"
				req.Header.Set("Authorization", "Bearer "+tok)
				w := httptest.NewRecorder()
				tc.g.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			c.Report()
		})
	}
}

func benchGateway(b *testing.B, file string, vars map[string]string) *Gateway {
	b.Helper()
	yaml, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(load(b, string(yaml), vars), Options{BaseDir: b.TempDir(), Registry: builtin.Registry(), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	return g
}

// mintBenchToken does what bench/mintjwt does: a fresh P-256 key whose
// public JWK Set goes to jwksFile, and an at+jwt access token signed with
// it carrying the claims bench/jwt.yaml checks.
func mintBenchToken(b *testing.B, jwksFile string) string {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	enc := base64.RawURLEncoding
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		b.Fatal(err)
	}
	kid := enc.EncodeToString(func() []byte { s := sha256.Sum256(pub); return s[:] }())
	set, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": enc.EncodeToString(pub[1:33]), "y": enc.EncodeToString(pub[33:]),
	}}})
	if err := os.WriteFile(jwksFile, set, 0o644); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": kid, "typ": "at+jwt"})
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://bench.gatehouse.invalid", "sub": "bench-client", "aud": []string{"bench"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": strconv.FormatInt(now.UnixNano(), 10),
		"client_id": "bench-client", "scope": "products:read",
	})
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}
