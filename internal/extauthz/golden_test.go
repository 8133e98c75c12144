package extauthz_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
)

var update = flag.Bool("update", false, "rewrite the golden CheckResponses")

// TestGoldenChecks sends CheckRequests shaped as Envoy documents and
// sends them (the attribute context of its ext_authz filter: headers as a
// map with pseudo-headers, or header_map with raw values under
// encode_raw_headers; body or raw_body with x-envoy-auth-partial-body)
// through go-control-plane's generated gRPC client, and compares the
// CheckResponses with the golden ones. What changes from run to run (the
// gateway's request id, the minted identity token) is masked.
// `go test -run TestGoldenChecks -update` rewrites them.
func TestGoldenChecks(t *testing.T) {
	d := openDoors(t, false)
	files, err := filepath.Glob("testdata/golden/*.request.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden requests: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".request.json")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src = []byte(strings.ReplaceAll(string(src), "${READER}", d.env.Reader))
			var req authv3.CheckRequest
			if err := protojson.Unmarshal(src, &req); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			resp, err := d.grpc.Check(ctx, &req)
			if err != nil {
				t.Fatal(err)
			}
			got := mask(t, resp)
			want := strings.TrimSuffix(f, ".request.json") + ".response.json"
			if *update {
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wb, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if diff := cmp.Diff(string(wb), got); diff != "" {
				t.Errorf("CheckResponse differs from %s (-want +got):\n%s", want, diff)
			}
		})
	}
}

var (
	hexID   = regexp.MustCompile(`[0-9a-f]{32}`)
	jwtRe   = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	limitRe = regexp.MustCompile(`;r=\d+;t=\d+`)
)

// mask renders resp as indented JSON with the request id and minted
// tokens replaced.
func mask(t *testing.T, resp *authv3.CheckResponse) string {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	// protojson's spacing is deliberately unstable; normalise it.
	s := regexp.MustCompile(`":\s+`).ReplaceAllString(string(b), `": `)
	s = hexID.ReplaceAllString(s, "<request-id>")
	s = jwtRe.ReplaceAllString(s, "<identity-jwt>")
	// What is left of the limit and when it resets depend on the clock.
	s = limitRe.ReplaceAllString(s, ";r=<n>;t=<n>")
	return s + "\n"
}
