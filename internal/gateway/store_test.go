package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
)

// storeProbe is a policy that counts requests in the gateway's store, to
// show that policies get the gateway's one store.
type storeProbe struct{ st store.Store }

func (p *storeProbe) Apply(ctx context.Context, ex *policy.Exchange) error {
	_, err := p.st.IncrBy(ctx, "probe", 1, 0)
	return err
}

func probeRegistry(got *[]store.Store) *policy.Registry {
	return policy.NewRegistry(policy.Unit{Name: "probe", New: func(_ *config.Node, env *policy.Env) (policy.Policy, error) {
		*got = append(*got, env.Store)
		return &storeProbe{env.Store}, nil
	}})
}

const storeYAML = `
listeners: [{name: main, address: "127.0.0.1:0"}]
admin: {address: "off"}
STORE
routes:
  - name: a
    match: {path: /a}
    upstream: {url: "http://127.0.0.1:1"}
    policies: [{probe: {}}]
  - name: b
    match: {path: /b}
    upstream: {url: "http://127.0.0.1:1"}
    policies: [{probe: {}}]
`

func storeConfig(t *testing.T, storeSection string) *config.Config {
	return load(t, strings.Replace(storeYAML, "STORE", storeSection, 1), nil)
}

func TestStoreDefaultFile(t *testing.T) {
	dir := t.TempDir()
	var envs []store.Store
	logs := &syncBuffer{}
	g, err := New(storeConfig(t, ""), Options{Registry: probeRegistry(&envs), BaseDir: dir, Logger: slog.New(slog.NewTextHandler(logs, nil)), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, store.DefaultPath)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("default file store not at %s: %v", path, err)
	}
	if len(envs) != 2 || envs[0] == nil || envs[0] != envs[1] {
		t.Fatalf("policies got stores %v, want the same non-nil one twice", envs)
	}
	// The state file is the gateway's: a second gateway on it fails at
	// once, naming the field and saying why.
	_, err = New(storeConfig(t, ""), Options{Registry: probeRegistry(new([]store.Store)), BaseDir: dir, Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "store.path") || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second gateway on the state file: err = %v, want a store.path error saying it is in use", err)
	}

	// A reload keeps the store (the policies of the new config get the
	// same one); changed settings are logged as needing a restart.
	envs = nil
	if err := g.Reload(storeConfig(t, "store: {type: memory}")); err != nil {
		t.Fatal(err)
	}
	if len(envs) != 2 || envs[0] == nil {
		t.Fatalf("after reload policies got %v", envs)
	}
	if !strings.Contains(logs.String(), "store settings changed; they take effect on restart") {
		t.Errorf("reload with new store settings logged:\n%s\nwant the restart warning", logs)
	}
	if _, err := envs[0].IncrBy(context.Background(), "probe", 1, 0); err != nil {
		t.Fatalf("the reloaded config's store: %v", err)
	}

	// Close releases the file: it opens again, with what was written.
	g.Close()
	f, err := store.OpenFile(path, nil)
	if err != nil {
		t.Fatalf("reopening after Close: %v", err)
	}
	defer f.Close()
	if v, err := f.Get(context.Background(), "probe"); err != nil || string(v) != "1" {
		t.Fatalf("probe counter after restart = %q, %v; want 1", v, err)
	}
}

func TestStoreServesRequests(t *testing.T) {
	var envs []store.Store
	cfg := storeConfig(t, "store: {type: memory}")
	g, err := New(cfg, Options{Registry: probeRegistry(&envs), Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	for _, p := range []string{"/a", "/b", "/a"} {
		resp, err := http.Get("http://" + g.Addr("main").String() + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	v, err := envs[0].Get(context.Background(), "probe")
	if err != nil || string(v) != "3" {
		t.Fatalf("requests counted in the store = %q, %v; want 3", v, err)
	}
}

func TestStoreGiven(t *testing.T) {
	dir := t.TempDir()
	given := store.NewMemory(nil)
	defer given.Close()
	var envs []store.Store
	g, err := New(storeConfig(t, ""), Options{Registry: probeRegistry(&envs), BaseDir: dir, Store: given, Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Policies get the given store, guarded: its health is tracked in
	// one place for them all.
	if _, guarded := envs[0].(*store.Guarded); !guarded || store.Unguarded(envs[0]) != given {
		t.Fatalf("policies got %T %v, want the given store, guarded", envs[0], envs[0])
	}
	if _, err := os.Stat(filepath.Join(dir, store.DefaultPath)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a given store still opened the state file: %v", err)
	}
	g.Close()
	if err := given.Set(context.Background(), "k", nil, 0); err != nil {
		t.Fatalf("the gateway closed a store it was given: %v", err)
	}
}

func TestStoreConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		section string
		line    int
		field   string
	}{
		{"unknown type", "store: {type: etcd}", 4, "store.type"},
		{"redis without settings", "store:\n  type: redis", 4, "store.redis"}, // the absent field: its parent
		{"redis bad address", "store:\n  type: redis\n  redis:\n    addresses: [localhost]", 7, "store.redis.addresses[0]"},
		{"redis db in a cluster", "store:\n  type: redis\n  redis:\n    addresses: [a:1, b:1]\n    db: 2", 8, "store.redis.db"},
		{"redis braces in prefix", "store:\n  type: redis\n  redis:\n    addresses: [a:1]\n    key_prefix: \"{gh}\"", 8, "store.redis.key_prefix"},
		{"path with memory", "store: {type: memory, path: x.db}", 4, "store.path"},
		{"sentinel bad address", "store:\n  type: redis\n  redis:\n    sentinel:\n      master_name: m\n      addresses: [s:26379, nope]", 9, "store.redis.sentinel.addresses[1]"},
		{"sentinel without master name", "store:\n  type: redis\n  redis:\n    sentinel:\n      addresses: [s:26379]", 7, "store.redis.sentinel.master_name"},
		{"sentinel and addresses", "store:\n  type: redis\n  redis:\n    addresses: [a:1]\n    sentinel: {master_name: m, addresses: [s:1]}", 7, "store.redis.addresses"},
		{"sentinel username alone", "store:\n  type: redis\n  redis:\n    sentinel: {master_name: m, addresses: [s:1], username: u}", 7, "store.redis.sentinel.password"},
		{"redis username alone", "store:\n  type: redis\n  redis:\n    addresses: [a:1]\n    username: u", 6, "store.redis.password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, given := range []store.Store{nil, store.NewMemory(nil)} {
				_, err := New(storeConfig(t, tc.section), Options{Registry: probeRegistry(new([]store.Store)), BaseDir: t.TempDir(), Store: given, Logger: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.DiscardHandler)})
				cerr, ok := errors.AsType[*config.Error](err)
				if !ok {
					t.Fatalf("err = %v, want a *config.Error", err)
				}
				if cerr.Line != tc.line || cerr.Path != tc.field {
					t.Errorf("got %s at line %d, want %s at line %d (%v)", cerr.Path, cerr.Line, tc.field, tc.line, err)
				}
			}
		})
	}
}
