package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/authserver"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

func asConfig(t *testing.T, issuer string) string {
	t.Helper()
	sum := sha256.Sum256([]byte("cli-secret-0123456789"))
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	doc := `listeners: [{address: "127.0.0.1:0"}]
store: {type: file, path: state.db}
authorization_server:
  issuer: ` + issuer + `
  insecure_plaintext_keys: true
  clients:
    - client_id: cli
      secret_hash: sha256:` + hex.EncodeToString(sum[:]) + `
      scopes: [a, b]
      demo: true
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	var code int
	if stdin != "" {
		code = cmdClientsHash(strings.NewReader(stdin), &out, &errb)
	} else {
		code = run(args, &out, &errb)
	}
	return code, out.String(), errb.String()
}

func TestClientsAndKeysCommands(t *testing.T) {
	path := asConfig(t, "https://as.example")
	code, out, errs := runCLI(t, "", "clients", "list", "--config", path)
	if code != 0 || !strings.Contains(out, "cli (DEMO ONLY)") || !strings.Contains(out, "a b") {
		t.Fatalf("clients list: %d %q %q", code, out, errs)
	}
	code, out1, errs := runCLI(t, "", "keys", "rotate", "--config", path)
	if code != 0 || !strings.Contains(out1, "signing key rotated") {
		t.Fatalf("keys rotate: %d %q %q", code, out1, errs)
	}
	_, out2, _ := runCLI(t, "", "keys", "rotate", "--config", path)
	// "A -> B" then "B -> C": the second starts where the first ended.
	first := strings.Fields(out1)[5]
	if second := strings.Fields(out2)[3]; second != first {
		t.Errorf("second rotation started at %s, want %s", second, first)
	}
	code, h, _ := runCLI(t, "my chosen secret\n")
	if code != 0 || !strings.HasPrefix(h, "$argon2id$v=19$") {
		t.Fatalf("clients hash: %d %q", code, h)
	}
}

func TestTokenCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	cfg, err := config.Load(asConfig(t, issuer))
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory(nil)
	defer st.Close()
	srv, err := authserver.New(*cfg.AuthorizationServer, authserver.Deps{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	defer ts.Close()
	code, out, errs := runCLI(t, "", "token", "--issuer", issuer, "--client", "cli", "--secret", "cli-secret-0123456789", "--scope", "a")
	if code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Fatalf("token: %d %q %q", code, out, errs)
	}
	code, _, errs = runCLI(t, "", "token", "--issuer", issuer, "--client", "cli", "--secret", "wrong-secret-0123456789")
	if code != 1 || !strings.Contains(errs, "invalid_client") {
		t.Fatalf("wrong secret: %d %q", code, errs)
	}
}
