package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExplain asks the running demo's admin API, through `gatehouse
// explain`, why a request it refused was refused.
func TestExplain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo")
	}
	d, err := startDemo(freeAddr(t), freeAddr(t), "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Get(d.base + "/product")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	admin := "http://" + d.g.AdminAddr().String()

	var stdout, stderr bytes.Buffer
	if code := cmdExplain([]string{id, "--admin", admin, "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("explain --json: exit %d: %s", code, stderr.String())
	}
	var got struct{ Decision, Code string }
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || got.Decision != "deny" || got.Code != "missing_credentials" {
		t.Fatalf("explain --json: %+v, %v\n%s", got, err, stdout.String())
	}
	stdout.Reset()
	if code := cmdExplain([]string{"--admin", admin, id}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "missing_credentials") {
		t.Fatalf("explain: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stderr.Reset()
	if code := cmdExplain([]string{"0123456789abcdef0123456789abcdef", "--admin", admin}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no decision is known") {
		t.Fatalf("explain of an unknown id: exit %d: %s", code, stderr.String())
	}
}
