package lifecycle_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/saml2/lifecycle"
	"github.com/gatehouse/gatehouse/internal/store"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func assertion() *saml2.Assertion {
	return &saml2.Assertion{
		ID: "_a1", Issuer: "https://sts.example", NameID: "alice",
		NotBefore: t0.Add(-time.Minute), NotOnOrAfter: t0.Add(5 * time.Minute),
		Audiences: [][]string{{"urn:rp", "urn:other"}},
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(func() time.Time { return t0 })
	lc := lifecycle.New(st)
	rules := lifecycle.Rules{Audiences: []string{"urn:rp"}, Skew: 30 * time.Second}
	for _, tc := range []struct {
		name string
		edit func(*saml2.Assertion)
		now  time.Time
		want error
	}{
		{"valid", nil, t0, nil},
		{"within skew before NotBefore", func(a *saml2.Assertion) { a.NotBefore = t0.Add(20 * time.Second) }, t0, nil},
		{"before NotBefore beyond skew", func(a *saml2.Assertion) { a.NotBefore = t0.Add(31 * time.Second) }, t0, lifecycle.ErrExpired},
		{"within skew after NotOnOrAfter", nil, t0.Add(5*time.Minute + 29*time.Second), nil},
		{"at NotOnOrAfter plus skew", nil, t0.Add(5*time.Minute + 30*time.Second), lifecycle.ErrExpired},
		{"no audience restriction", func(a *saml2.Assertion) { a.Audiences = nil }, t0, lifecycle.ErrAudience},
		{"one restriction without us", func(a *saml2.Assertion) { a.Audiences = append(a.Audiences, []string{"urn:x"}) }, t0, lifecycle.ErrAudience},
		{"other audience", func(a *saml2.Assertion) { a.Audiences = [][]string{{"urn:rp2"}} }, t0, lifecycle.ErrAudience},
		{"audience differing in case", func(a *saml2.Assertion) { a.Audiences = [][]string{{"URN:RP"}} }, t0, lifecycle.ErrAudience},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := assertion()
			if tc.edit != nil {
				tc.edit(a)
			}
			if err := lc.Check(ctx, a, tc.now, rules); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	a := assertion()
	if err := lc.Cancel(ctx, a.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := lc.Check(ctx, a, t0, rules); !errors.Is(err, lifecycle.ErrCancelled) {
		t.Fatalf("cancelled: got %v", err)
	}
	// Cancellation is by ID whoever presents it: the STS writes them.
	other := assertion()
	other.Issuer = "https://idp.example"
	if err := lc.Check(ctx, other, t0, rules); !errors.Is(err, lifecycle.ErrCancelled) {
		t.Fatalf("cancelled ID from another issuer: got %v", err)
	}
}

func TestUse(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(func() time.Time { return t0 })
	lc := lifecycle.New(st)
	a := assertion()
	// Not one-time: never spent unless the door forces it.
	for range 2 {
		if err := lc.Use(ctx, a, t0, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	a.OneTimeUse = true
	if spent, err := lc.Spent(ctx, a); spent || err != nil {
		t.Fatalf("Spent before use: %v %v", spent, err)
	}
	if err := lc.Use(ctx, a, t0, 0, false); err != nil {
		t.Fatal(err)
	}
	if spent, err := lc.Spent(ctx, a); !spent || err != nil {
		t.Fatalf("Spent after use: %v %v", spent, err)
	}
	if err := lc.Use(ctx, a, t0, 0, false); !errors.Is(err, lifecycle.ErrSpent) {
		t.Fatalf("second use: %v", err)
	}
	if err := lc.Use(ctx, a, t0, 0, true); !errors.Is(err, lifecycle.ErrSpent) {
		t.Fatalf("second use, forced: %v", err)
	}
	// The same ID from another issuer is another assertion; the issuer and
	// ID cannot be re-split to collide ("a:b" + "c" against "a" + "b:c").
	b := assertion()
	b.OneTimeUse, b.Issuer, b.ID = true, "https://sts.example:_a1", "x"
	c := assertion()
	c.OneTimeUse, c.Issuer, c.ID = true, "https://sts.example", "_a1:x"
	for _, x := range []*saml2.Assertion{b, c} {
		if err := lc.Use(ctx, x, t0, 0, false); err != nil {
			t.Fatalf("%s %s: %v", x.Issuer, x.ID, err)
		}
	}
	// A forced use spends a non-one-time assertion for the forcing door
	// and for every one-time check after it.
	d := assertion()
	d.ID = "_d"
	if err := lc.Use(ctx, d, t0, 0, true); err != nil {
		t.Fatal(err)
	}
	if err := lc.Use(ctx, d, t0, 0, true); !errors.Is(err, lifecycle.ErrSpent) {
		t.Fatalf("forced twice: %v", err)
	}
}

func TestStoreDownFailsClosed(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(func() time.Time { return t0 })
	st.Close()
	lc := lifecycle.New(st)
	a := assertion()
	a.OneTimeUse = true
	if err := lc.Check(ctx, a, t0, lifecycle.Rules{Audiences: []string{"urn:rp"}}); !errors.Is(err, lifecycle.ErrUnavailable) {
		t.Errorf("Check: %v, want ErrUnavailable", err)
	}
	if err := lc.Use(ctx, a, t0, 0, false); !errors.Is(err, lifecycle.ErrUnavailable) {
		t.Errorf("Use: %v, want ErrUnavailable", err)
	}
	if _, err := lc.Spent(ctx, a); !errors.Is(err, lifecycle.ErrUnavailable) {
		t.Errorf("Spent: %v, want ErrUnavailable", err)
	}
}

func TestConfirm(t *testing.T) {
	ep := lifecycle.Endpoint{URLs: []string{"https://gw.example/soap"}, ClientIP: netip.MustParseAddr("192.0.2.7")}
	skew := 30 * time.Second
	for _, tc := range []struct {
		name string
		c    saml2.Confirmation
		ep   lifecycle.Endpoint
		ok   bool
	}{
		{"no data", saml2.Confirmation{}, ep, true},
		{"recipient is the endpoint", saml2.Confirmation{Recipient: "https://gw.example/soap"}, ep, true},
		{"recipient elsewhere", saml2.Confirmation{Recipient: "https://other.example/soap"}, ep, false},
		{"recipient differs by a slash", saml2.Confirmation{Recipient: "https://gw.example/soap/"}, ep, false},
		{"recipient, endpoint unknown", saml2.Confirmation{Recipient: "https://gw.example/soap"}, lifecycle.Endpoint{}, false},
		{"address is the client", saml2.Confirmation{Address: "192.0.2.7"}, ep, true},
		{"address as IPv4-mapped IPv6", saml2.Confirmation{Address: "::ffff:192.0.2.7"}, ep, true},
		{"address of another client", saml2.Confirmation{Address: "192.0.2.8"}, ep, false},
		{"address not an IP", saml2.Confirmation{Address: "client.example"}, ep, false},
		{"address, client unknown", saml2.Confirmation{Address: "192.0.2.7"}, lifecycle.Endpoint{URLs: ep.URLs}, false},
		{"in response to a request", saml2.Confirmation{InResponseTo: "_req1"}, ep, false},
		{"expired", saml2.Confirmation{NotOnOrAfter: t0.Add(-skew)}, ep, false},
		{"expired within skew", saml2.Confirmation{NotOnOrAfter: t0.Add(-skew + time.Second)}, ep, true},
		{"not yet", saml2.Confirmation{NotBefore: t0.Add(skew + time.Second)}, ep, false},
		{"not yet within skew", saml2.Confirmation{NotBefore: t0.Add(skew)}, ep, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Method = saml2.MethodBearer
			err := lifecycle.Confirm(&tc.c, t0, skew, tc.ep)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, lifecycle.ErrConfirmation)) {
				t.Fatalf("got %v, want ok %v", err, tc.ok)
			}
		})
	}
	// Any confirmation of the method that holds will do; none: the last
	// reason.
	a := assertion()
	a.Confirmations = []saml2.Confirmation{
		{Method: saml2.MethodBearer, Recipient: "https://other.example"},
		{Method: saml2.MethodHolderOfKey},
		{Method: saml2.MethodBearer, Recipient: "https://gw.example/soap"},
	}
	if c, err := lifecycle.Confirmation(a, saml2.MethodBearer, t0, skew, ep); err != nil || c != &a.Confirmations[2] {
		t.Fatalf("got %v %v, want the third confirmation", c, err)
	}
	a.Confirmations = a.Confirmations[:2]
	if _, err := lifecycle.Confirmation(a, saml2.MethodBearer, t0, skew, ep); !errors.Is(err, lifecycle.ErrConfirmation) {
		t.Fatalf("got %v, want ErrConfirmation", err)
	}
	if _, err := lifecycle.Confirmation(a, saml2.MethodSenderVouches, t0, skew, ep); !errors.Is(err, lifecycle.ErrConfirmation) {
		t.Fatalf("absent method: got %v", err)
	}
}
