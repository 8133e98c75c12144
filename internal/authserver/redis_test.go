package authserver

import (
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/redistest"
)

// TestRedisInstances runs two instances, each with its own connection to
// one real Redis, as two gateways would: they share the signing keys, and
// a revocation on one is in the other's list within a second.
func TestRedisInstances(t *testing.T) {
	srv := redistest.Start(t)
	open := func() store.Store {
		st, err := store.NewRedis(store.RedisOptions{Addrs: []string{srv.Addr()}, KeyPrefix: t.Name() + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a := newEnv(t, defaultSection(""), func(e *env) { e.store = open() })
	b := &env{t: t, clock: a.clock, store: open(), revs: revocationList(a), dir: a.dir, issuer: a.issuer}
	b.start(defaultSection(""))
	if got, want := b.srv.ActiveKeyID(), a.srv.ActiveKeyID(); got != want {
		t.Fatalf("the instances sign with %s and %s, want one shared key", got, want)
	}
	tok := a.token("reader", readerSecret, "")
	jti := decodePart(t, tok, 1)["jti"].(string)
	start := time.Now()
	if resp, _ := a.post(PathRevoke, "reader", readerSecret, url.Values{"token": {tok}}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	for !b.revs.Revoked(jti) {
		if time.Since(start) > time.Second {
			t.Fatal("the other instance did not see the revocation within a second")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revocation seen by the other instance after %v", time.Since(start))
	// A third instance started later finds it in the store.
	c := &env{t: t, clock: a.clock, store: open(), revs: revocationList(a), dir: a.dir, issuer: a.issuer}
	c.start(defaultSection(""))
	if !c.revs.Revoked(jti) {
		t.Fatal("an instance started after the revocation does not know it")
	}
}
