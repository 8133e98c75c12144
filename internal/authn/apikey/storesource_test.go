package apikey

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func storeAuth(t *testing.T, st store.Store, clk *clock, yaml string) *Authenticator {
	t.Helper()
	env := policytest.Env()
	env.Store = st
	env.Now = clk.now
	a, err := New(policytest.Node(t, yaml), &authn.Env{Env: env, Realm: "api"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func authKey(a *Authenticator, key string) (*policy.Principal, error) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Api-Key", key)
	return a.Authenticate(context.Background(), policytest.Exchange(r))
}

func wantCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	d, ok := policy.AsDenial(err)
	if !ok || d.Status != status || d.Code != code {
		t.Errorf("got %v, want %d %s", err, status, code)
	}
}

func stores(t *testing.T) map[string]func(t *testing.T) (store.Store, *redistest.Server) {
	return map[string]func(t *testing.T) (store.Store, *redistest.Server){
		"memory": func(t *testing.T) (store.Store, *redistest.Server) {
			return store.NewMemory(time.Now), nil
		},
		"redis": func(t *testing.T) (store.Store, *redistest.Server) {
			srv := redistest.Start(t)
			st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: t.Name() + ":"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st, srv
		},
	}
}

// TestStoreKeys: keys written to the store by PutStoredKey authenticate,
// with their scopes and claims; answers are cached for their TTLs, found
// and not found; a deleted key stops working once its answer expires.
func TestStoreKeys(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st, _ := open(t)
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			a := storeAuth(t, st, clk, "keys:\n  - consumer: file-app\n    hash: \""+hashOf(readerKey)+"\"\nstore: {cache_ttl: 30s, negative_ttl: 5s}\n")
			ctx := context.Background()
			key, hash, err := GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			// Not there yet: refused, and the refusal is cached.
			_, err = authKey(a, key)
			wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
			if err := PutStoredKey(ctx, st, DefaultStorePrefix, KeyConfig{Consumer: "store-app", Hash: hash,
				Scopes: []string{"orders:read"}, Tier: "gold", Metadata: map[string]any{"team": "x"}}); err != nil {
				t.Fatal(err)
			}
			_, err = authKey(a, key)
			wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
			clk.add(6 * time.Second)
			pr, err := authKey(a, key)
			if err != nil {
				t.Fatalf("after the negative TTL: %v", err)
			}
			want := policy.Principal{Subject: "store-app", ClientID: "store-app", Consumer: "store-app", Method: "apikey",
				Scopes: []string{"orders:read"}, Claims: map[string]any{"tier": "gold", "team": "x"}}
			if diff := cmp.Diff(want, *pr); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
			// The file's keys still work, and come first.
			if pr, err := authKey(a, readerKey); err != nil || pr.Consumer != "file-app" {
				t.Errorf("file key: %v %v", pr, err)
			}
			// Deleted: still accepted from the cache, then refused.
			if err := DeleteStoredKey(ctx, st, DefaultStorePrefix, hash); err != nil {
				t.Fatal(err)
			}
			if _, err := authKey(a, key); err != nil {
				t.Errorf("cached key refused: %v", err)
			}
			clk.add(31 * time.Second)
			_, err = authKey(a, key)
			wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
		})
	}
}

// TestStoreBadRecords: records that are not a valid consumer authenticate
// no one.
func TestStoreBadRecords(t *testing.T) {
	st := store.NewMemory(time.Now)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	a := storeAuth(t, st, clk, "store: {prefix: \"k:\"}\n")
	for i, v := range []string{`not json`, `{}`, `{"consumer":"a b"}`, `{"consumer":"a","scopes":["x y"]}`,
		`{"consumer":"a","tier":"g","metadata":{"tier":"s"}}`, `[1]`, `{"consumer":"` + strings.Repeat("a", 129) + `"}`} {
		key := "gh_bad-record-" + string(rune('a'+i))
		sk, err := StoreKey("k:", HashKey(key))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Set(context.Background(), sk, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
		_, err = authKey(a, key)
		wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
	}
	if err := PutStoredKey(context.Background(), st, "k:", KeyConfig{Consumer: "a b", Hash: HashKey("x")}); err == nil {
		t.Error("PutStoredKey wrote an invalid consumer")
	}
	if err := PutStoredKey(context.Background(), st, "k:", KeyConfig{Consumer: "a", Hash: "gh_notahash"}); err == nil {
		t.Error("PutStoredKey wrote a key as a hash")
	}
}

// TestStoreDown: while Redis is down a key not in the cache gets 503 (the
// gateway cannot tell), the failure is not cached, and keys in the file
// keep working.
func TestStoreDown(t *testing.T) {
	st, srv := stores(t)["redis"](t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	a := storeAuth(t, st, clk, "keys:\n  - consumer: file-app\n    hash: \""+hashOf(readerKey)+"\"\nstore: {timeout: 500ms}\n")
	key, hash, _ := GenerateKey()
	srv.Stop()
	_, err := authKey(a, key)
	wantCode(t, err, http.StatusServiceUnavailable, "apikey_store_unavailable")
	if d, _ := policy.AsDenial(err); d != nil && !errors.Is(d.Err, store.ErrUnavailable) {
		t.Logf("cause: %v", d.Err)
	}
	if _, err := authKey(a, readerKey); err != nil {
		t.Errorf("file key while the store is down: %v", err)
	}
	srv.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := PutStoredKey(context.Background(), st, DefaultStorePrefix, KeyConfig{Consumer: "s", Hash: hash})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pr, err := authKey(a, key); err != nil || pr.Consumer != "s" {
		t.Errorf("after the store is back: %v %v", pr, err)
	}
}

// TestStoreCacheBounded: a flood of unknown keys never grows the cache
// past cache_size.
func TestStoreCacheBounded(t *testing.T) {
	st := store.NewMemory(time.Now)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	a := storeAuth(t, st, clk, "store: {cache_size: 50}\n")
	for i := range 1000 {
		_, err := authKey(a, "gh_flood-"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String())
		wantCode(t, err, http.StatusUnauthorized, "invalid_api_key")
		if n := len(a.p.store.cache); n > 50 {
			t.Fatalf("cache holds %d answers, bound 50", n)
		}
	}
}

func TestStoreConfigErrors(t *testing.T) {
	tests := []struct {
		yaml, path, msg string
	}{
		{"store: {cache_ttl: 2h}\n", "store.cache_ttl", "between 0 and 1h"},
		{"store: {negative_ttl: -1s}\n", "store.negative_ttl", "must not be negative"},
		{"store: {cache_size: -1}\n", "store.cache_size", "between 1 and"},
		{"store: {prefx: a}\n", "store.prefx", "unknown field"},
		{"store: {prefix: \"{a}:\"}\n", "store.prefix", "not starting with {"},
		{"store: {prefix: \"a b\"}\n", "store.prefix", "without spaces"},
	}
	for _, tt := range tests {
		env := policytest.Env()
		env.Store = store.NewMemory(time.Now)
		_, err := New(policytest.Node(t, tt.yaml), &authn.Env{Env: env, Realm: "api"})
		policytest.WantConfigError(t, err, 1, tt.path, tt.msg)
	}
	// No store in the gateway.
	_, err := New(policytest.Node(t, "store: {}\n"), &authn.Env{Env: policytest.Env(), Realm: "api"})
	policytest.WantConfigError(t, err, 1, "store", "no state store")
}

// TestStoreConcurrent: lookups from many goroutines, known and unknown
// keys, through a cache small enough to evict all the time, give every
// request the right answer (run with -race).
func TestStoreConcurrent(t *testing.T) {
	st := store.NewMemory(time.Now)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	a := storeAuth(t, st, clk, "store: {cache_size: 8}\n")
	var keys []string
	for i := range 20 {
		key, hash, _ := GenerateKey()
		if err := PutStoredKey(context.Background(), st, DefaultStorePrefix, KeyConfig{Consumer: "c" + string(rune('a'+i)), Hash: hash}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				j := (g*7 + i) % len(keys)
				pr, err := authKey(a, keys[j])
				if err != nil || pr.Consumer != "c"+string(rune('a'+j)) {
					t.Errorf("key %d: %v %v", j, pr, err)
					return
				}
				_, err = authKey(a, keys[j]+"x")
				if d, ok := policy.AsDenial(err); !ok || d.Code != "invalid_api_key" {
					t.Errorf("unknown key: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(a.p.store.cache); n > 8 {
		t.Errorf("cache holds %d answers, bound 8", n)
	}
}
