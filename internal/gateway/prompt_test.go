package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// TestPromptHead: a response whose head has arrived reaches the client
// while the upstream holds back its body, whether the body has a length,
// is chunked, or a first part came with the head; the rest follows when
// the upstream sends it.
func TestPromptHead(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first string // sent with the head
		size  bool   // Content-Length set
	}{
		{"length, nothing yet", "", true},
		{"length, a first part", "first ", true},
		{"chunked, nothing yet", "", false},
		{"chunked, a first part", "first ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.size {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.first)+len("rest")))
				}
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, tc.first)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "rest")
			}))
			defer srv.Close()
			g := startGateway(t, simpleConfig, map[string]string{"UP": srv.URL, "TRUSTED": "[]"})
			type result struct {
				resp *http.Response
				err  error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := (&http.Client{Timeout: 120 * time.Second}).Get(g.base + "/slow")
				got <- result{resp, err}
			}()
			var res result
			select {
			case res = <-got:
			case <-time.After(60 * time.Second):
				close(release)
				t.Fatal("no response head within 60 s while the upstream held its body back")
			}
			close(release)
			if res.err != nil {
				t.Fatal(res.err)
			}
			body, err := io.ReadAll(res.resp.Body)
			res.resp.Body.Close()
			if err != nil || res.resp.StatusCode != 200 || string(body) != tc.first+"rest" {
				t.Fatalf("%d %q %v", res.resp.StatusCode, body, err)
			}
		})
	}
}
