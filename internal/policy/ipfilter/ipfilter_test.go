package ipfilter

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

func newFilter(t testing.TB, yaml string) *Filter {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), policytest.Env())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.(*Filter)
}

func TestApply(t *testing.T) {
	const (
		allowOnly = "allow: [10.0.0.0/8, 192.0.2.7, \"2001:db8::/32\"]\n"
		denyOnly  = "deny: [203.0.113.0/24, \"2001:db8:bad::/48\"]\n"
		both      = "allow: [10.0.0.0/8, \"2001:db8::/32\"]\ndeny: [10.66.0.0/16, \"2001:db8:bad::/48\"]\n"
	)
	tests := []struct {
		name     string
		yaml     string
		clientIP string // "" = invalid
		allowed  bool
	}{
		{"allow list hit", allowOnly, "10.1.2.3", true},
		{"allow list single ip", allowOnly, "192.0.2.7", true},
		{"allow list neighbour of single ip", allowOnly, "192.0.2.8", false},
		{"allow list miss", allowOnly, "198.51.100.1", false},
		{"allow list ipv6 hit", allowOnly, "2001:db8::42", true},
		{"allow list ipv6 miss", allowOnly, "2001:db9::42", false},
		{"ipv4-mapped client is ipv4", allowOnly, "::ffff:10.1.2.3", true},
		{"ipv4-mapped client miss", allowOnly, "::ffff:11.1.2.3", false},
		{"zoned client", allowOnly, "2001:db8::1%eth0", true},
		{"deny only miss passes", denyOnly, "198.51.100.1", true},
		{"deny only hit", denyOnly, "203.0.113.99", false},
		{"deny only ipv6 hit", denyOnly, "2001:db8:bad::1", false},
		{"deny only ipv4-mapped hit", denyOnly, "::ffff:203.0.113.5", false},
		{"deny wins over allow", both, "10.66.1.1", false},
		{"deny wins over allow ipv6", both, "2001:db8:bad:1::1", false},
		{"allowed outside deny", both, "10.65.1.1", true},
		{"neither list", both, "198.51.100.1", false},
		{"ipv6 any does not hold ipv4", "allow: [\"::/0\"]\n", "10.1.2.3", false},
		{"ipv6 any does not deny ipv4", "deny: [\"::/0\"]\n", "10.1.2.3", true},
		{"ipv6 any holds ipv6", "allow: [\"::/0\"]\n", "2001:db8::1", true},
		{"ipv4 any does not hold ipv6", "allow: [0.0.0.0/0]\n", "::1", false},
		{"ipv4 any holds mapped", "allow: [0.0.0.0/0]\n", "::ffff:1.2.3.4", true},
		{"ipv6 /0 deny covers mapped range only as ipv6", "deny: [\"::/8\"]\n", "::ffff:1.2.3.4", true},
		{"host route v4", "allow: [192.0.2.7/32]\n", "192.0.2.7", true},
		{"host route v6", "allow: [\"2001:db8::7/128\"]\n", "2001:db8::6", false},
		{"prefix at 64-bit boundary", "allow: [\"2001:db8:0:1::/64\"]\n", "2001:db8:0:1:ffff::1", true},
		{"prefix past 64-bit boundary", "allow: [\"2001:db8:0:1:8000::/65\"]\n", "2001:db8:0:1:7fff::1", false},
		{"unknown address with allow list", allowOnly, "", false},
		{"unknown address with deny list", denyOnly, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilter(t, tt.yaml)
			ex := policytest.Exchange(httptest.NewRequest(http.MethodGet, "/", nil))
			ex.ClientIP = netip.Addr{}
			if tt.clientIP != "" {
				ex.ClientIP = netip.MustParseAddr(tt.clientIP)
			}
			err := f.Apply(context.Background(), ex)
			checkVerdict(t, err, tt.allowed)
			if got := f.Allowed(ex.ClientIP); got != tt.allowed {
				t.Errorf("Allowed(%v) = %v, want %v", ex.ClientIP, got, tt.allowed)
			}
		})
	}
}

func checkVerdict(t *testing.T, err error, allowed bool) {
	t.Helper()
	if allowed {
		if err != nil {
			t.Fatalf("Apply = %v, want allowed", err)
		}
		return
	}
	d, ok := policy.AsDenial(err)
	if !ok {
		t.Fatalf("Apply = %v, want a Denial", err)
	}
	if d.StatusCode() != http.StatusForbidden || d.Code != "ip_denied" || d.Detail != "client address not allowed" {
		t.Errorf("Denial = %d %q %q, want 403 ip_denied", d.StatusCode(), d.Code, d.Detail)
	}
	if d.Err == nil || !strings.HasPrefix(d.Err.Error(), "ipfilter: ") {
		t.Errorf("Denial.Err = %v, want an ipfilter cause for the log", d.Err)
	}
}

// TestApplyOwnTrustedProxies checks that trusted_proxies makes the filter
// compute the client address itself, ignoring the gateway's.
func TestApplyOwnTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		remote  string
		xff     string
		allowed bool
	}{
		{"xff from trusted proxy", "allow: [198.51.100.0/24]\ntrusted_proxies: [10.0.0.0/8]\n", "10.0.0.1:1", "198.51.100.7", true},
		{"xff from trusted proxy denied", "allow: [198.51.100.0/24]\ntrusted_proxies: [10.0.0.0/8]\n", "10.0.0.1:1", "203.0.113.7", false},
		{"spoofed xff from untrusted peer", "allow: [198.51.100.0/24]\ntrusted_proxies: [10.0.0.0/8]\n", "203.0.113.7:1", "198.51.100.7", false},
		{"spoofed trusted hop", "deny: [203.0.113.0/24]\ntrusted_proxies: [10.0.0.0/8]\n", "10.0.0.1:1", "203.0.113.7, 10.0.0.2", false},
		{"empty list means the tcp peer", "allow: [10.0.0.0/8]\ntrusted_proxies: []\n", "10.0.0.1:1", "198.51.100.7", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilter(t, tt.yaml)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			r.Header.Set("X-Forwarded-For", tt.xff)
			ex := policytest.Exchange(r)
			// What the gateway resolved with its own setting must not matter.
			ex.ClientIP = netip.MustParseAddr("127.0.0.1")
			checkVerdict(t, f.Apply(context.Background(), ex), tt.allowed)
		})
	}
}

// TestApplyUsesGatewayClientIP checks that without trusted_proxies the
// filter believes ex.ClientIP, not the headers.
func TestApplyUsesGatewayClientIP(t *testing.T) {
	f := newFilter(t, "allow: [198.51.100.0/24]\n")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	ex := policytest.Exchange(r)
	ex.ClientIP = netip.MustParseAddr("198.51.100.3")
	checkVerdict(t, f.Apply(context.Background(), ex), true)
	ex.ClientIP = netip.MustParseAddr("10.0.0.1")
	checkVerdict(t, f.Apply(context.Background(), ex), false)
}

func TestDenialsAreNotShared(t *testing.T) {
	f := newFilter(t, "deny: [0.0.0.0/0]\n")
	ex := policytest.Exchange(httptest.NewRequest(http.MethodGet, "/", nil))
	d1, _ := policy.AsDenial(f.Apply(context.Background(), ex))
	d2, _ := policy.AsDenial(f.Apply(context.Background(), ex))
	d1.WithErr(errors.New("changed"))
	if d2.Err.Error() == "changed" {
		t.Error("two refusals share one Denial")
	}
}

func BenchmarkApply(b *testing.B) {
	var list strings.Builder
	list.WriteString("allow:\n")
	for i := range 100 {
		list.WriteString("  - 10." + strconv.Itoa(i) + ".0.0/16\n")
	}
	cases := []struct {
		name, yaml, ip string
	}{
		{"allow-3-hit", "allow: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]\n", "192.168.1.1"},
		{"allow-100-last", list.String(), "10.99.1.1"},
		{"allow-100-miss", list.String(), "11.0.0.1"},
		{"deny-3-miss", "deny: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]\n", "203.0.113.1"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := newFilter(b, c.yaml)
			ex := policytest.Exchange(httptest.NewRequest(http.MethodGet, "/", nil))
			ex.ClientIP = netip.MustParseAddr(c.ip)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				f.Apply(ctx, ex)
			}
		})
	}
}

// TestPrefixSetMatchesNetip holds the mask-based lookup to
// netip.Prefix.Contains on random prefixes and addresses of both families.
func TestPrefixSetMatchesNetip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v4 bool) netip.Addr {
		if v4 {
			return netip.AddrFrom4([4]byte{byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		var b [16]byte
		b[0] = byte(rng.IntN(2))
		for i := 1; i < 16; i++ {
			b[i] = byte(rng.IntN(256))
		}
		return netip.AddrFrom16(b)
	}
	for range 2000 {
		v4 := rng.IntN(2) == 0
		a := randAddr(v4)
		bits := rng.IntN(a.BitLen() + 1)
		p, err := randAddr(v4).Prefix(bits)
		if err != nil {
			t.Fatal(err)
		}
		if rng.IntN(2) == 0 { // often a prefix of a itself
			p, _ = a.Prefix(bits)
		}
		var s prefixSet
		s.add(p)
		for _, c := range []netip.Addr{a, randAddr(!v4)} {
			_, got := s.match(c)
			if want := p.Contains(c); got != want {
				t.Fatalf("match(%v in %v) = %v, want %v", c, p, got, want)
			}
		}
	}
}
