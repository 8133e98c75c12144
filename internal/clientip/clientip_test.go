package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestResolve(t *testing.T) {
	// The gateway sits behind a load balancer in 10.0.0.0/8 and, on IPv6,
	// behind proxies in fd00::/8.
	trusted := prefixes(t, "10.0.0.0/8", "fd00::/8")

	tests := []struct {
		name   string
		remote string
		src    string // Source.Header; "" is X-Forwarded-For
		xff    []string
		fwd    []string
		other  []string // the header src names, when another
		want   string   // "" = invalid
	}{
		// The TCP peer alone.
		{name: "untrusted peer", remote: "203.0.113.7:5555", want: "203.0.113.7"},
		{name: "trusted peer, no headers", remote: "10.1.1.1:443", want: "10.1.1.1"},
		{name: "ipv6 peer", remote: "[2001:db8::7]:5555", want: "2001:db8::7"},
		{name: "ipv6 peer zone stripped", remote: "[fe80::1%eth0]:5555", want: "fe80::1"},
		{name: "ipv4-mapped peer unmapped", remote: "[::ffff:203.0.113.7]:5555", want: "203.0.113.7"},
		{name: "ipv4-mapped trusted peer", remote: "[::ffff:10.0.0.1]:5555", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "peer without port", remote: "203.0.113.7", want: "203.0.113.7"},
		{name: "peer not an address", remote: "@", want: ""},
		{name: "empty peer", remote: "", xff: []string{"198.51.100.1"}, want: ""},

		// Spoofing: headers from an untrusted peer are the client's words.
		{name: "spoof xff from untrusted peer", remote: "203.0.113.7:5555", xff: []string{"10.9.9.9"}, want: "203.0.113.7"},
		{name: "spoof xff chain from untrusted peer", remote: "203.0.113.7:5555", xff: []string{"1.1.1.1, 10.0.0.1"}, want: "203.0.113.7"},
		{src: Forwarded, name: "spoof forwarded from untrusted peer", remote: "203.0.113.7:5555", fwd: []string{"for=192.0.2.1"}, want: "203.0.113.7"},
		// Spoofing through a trusted proxy: the client prepends entries, the
		// proxy appends the real address; the rightmost untrusted wins.
		{name: "client-supplied entries left of the real one", remote: "10.0.0.1:1", xff: []string{"127.0.0.1, 10.0.0.5, 198.51.100.9"}, want: "198.51.100.9"},
		{name: "client pretends to be a trusted proxy", remote: "10.0.0.1:1", xff: []string{"1.2.3.4", "10.0.0.2, 198.51.100.9"}, want: "198.51.100.9"},

		// X-Forwarded-For walking.
		{name: "single entry", remote: "10.0.0.1:1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "skip trusted hops", remote: "10.0.0.1:1", xff: []string{"198.51.100.1, 10.0.0.7 ,10.0.0.8"}, want: "198.51.100.1"},
		{name: "several lines in order", remote: "10.0.0.1:1", xff: []string{"198.51.100.1", "10.0.0.7", "10.0.0.8"}, want: "198.51.100.1"},
		{name: "line order matters", remote: "10.0.0.1:1", xff: []string{"10.0.0.7", "198.51.100.2, 10.0.0.8"}, want: "198.51.100.2"},
		{name: "all trusted gives leftmost", remote: "10.0.0.1:1", xff: []string{"10.0.0.3, 10.0.0.7"}, want: "10.0.0.3"},
		{name: "entry with port", remote: "10.0.0.1:1", xff: []string{"198.51.100.1:4711"}, want: "198.51.100.1"},
		{name: "bracketed ipv6 with port", remote: "10.0.0.1:1", xff: []string{"[2001:db8::1]:4711"}, want: "2001:db8::1"},
		{name: "bracketed ipv6", remote: "10.0.0.1:1", xff: []string{"[2001:db8::1]"}, want: "2001:db8::1"},
		{name: "bare ipv6", remote: "[fd00::1]:1", xff: []string{"2001:db8::1, fd00::2"}, want: "2001:db8::1"},
		{name: "mapped entry unmapped", remote: "10.0.0.1:1", xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1"},
		{name: "mapped trusted entry skipped", remote: "10.0.0.1:1", xff: []string{"198.51.100.1, ::ffff:10.0.0.9"}, want: "198.51.100.1"},
		{name: "empty elements skipped", remote: "10.0.0.1:1", xff: []string{" , 198.51.100.1,, "}, want: "198.51.100.1"},
		{name: "tabs are whitespace", remote: "10.0.0.1:1", xff: []string{"\t198.51.100.1\t"}, want: "198.51.100.1"},

		// Garbage stops the walk with the peer; nothing to its left is
		// believed, and nothing to its right is the client.
		{name: "garbage rightmost gives peer", remote: "10.0.0.1:1", xff: []string{"198.51.100.1, bogus"}, want: "10.0.0.1"},
		{name: "garbage after trusted hop", remote: "10.0.0.1:1", xff: []string{"198.51.100.1, unknown, 10.0.0.7"}, want: "10.0.0.1"},
		{name: "garbage left of client is ignored", remote: "10.0.0.1:1", xff: []string{"<script>, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "out of range octet", remote: "10.0.0.1:1", xff: []string{"198.51.100.300"}, want: "10.0.0.1"},
		{name: "bad port", remote: "10.0.0.1:1", xff: []string{"198.51.100.1:99999"}, want: "10.0.0.1"},
		{name: "unbracketed ipv6 with port is garbage", remote: "10.0.0.1:1", xff: []string{"2001:db8::1:4711:x"}, want: "10.0.0.1"},

		// Forwarded, when there is no X-Forwarded-For.
		{src: Forwarded, name: "forwarded ipv4", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.60;proto=http;by=203.0.113.43"}, want: "192.0.2.60"},
		{src: Forwarded, name: "forwarded key case-insensitive", remote: "10.0.0.1:1", fwd: []string{"For=192.0.2.60"}, want: "192.0.2.60"},
		{src: Forwarded, name: "forwarded quoted ipv6 with port", remote: "10.0.0.1:1", fwd: []string{`for="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{src: Forwarded, name: "forwarded quoted ipv4 with port", remote: "10.0.0.1:1", fwd: []string{`for="192.0.2.43:47011"`}, want: "192.0.2.43"},
		{src: Forwarded, name: "forwarded chain", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.43, for=10.0.0.9"}, want: "192.0.2.43"},
		{src: Forwarded, name: "forwarded several lines", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.43", "for=10.0.0.9;proto=https"}, want: "192.0.2.43"},
		{src: Forwarded, name: "forwarded quoted comma is not a separator", remote: "10.0.0.1:1", fwd: []string{`for=192.0.2.43;ext="a,for=10.0.0.3", for=10.0.0.9`}, want: "192.0.2.43"},
		{src: Forwarded, name: "forwarded quoted-pair", remote: "10.0.0.1:1", fwd: []string{`for="\[2001:db8::9\]"`}, want: "2001:db8::9"},
		{src: Forwarded, name: "forwarded unknown stops", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.43, for=unknown, for=10.0.0.9"}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded obfuscated stops", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.43, for=_hidden"}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded obfuscated port is fine", remote: "10.0.0.1:1", fwd: []string{`for="192.0.2.43:_p1"`}, want: "192.0.2.43"},
		{src: Forwarded, name: "forwarded element without for stops", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.43, proto=https"}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded unbracketed ipv6 is garbage", remote: "10.0.0.1:1", fwd: []string{`for="2001:db8::1"`}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded unquoted port is garbage", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.43:80"}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded unterminated quote", remote: "10.0.0.1:1", fwd: []string{`for="192.0.2.43`}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded duplicate for is garbage", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.43;for=192.0.2.44"}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded garbage left of client ignored", remote: "10.0.0.1:1", fwd: []string{"for=\"oops, for=192.0.2.9", "for=198.51.100.4"}, want: "198.51.100.4"},
		{src: Forwarded, name: "forwarded empty elements", remote: "10.0.0.1:1", fwd: []string{" ,for=192.0.2.43;;, "}, want: "192.0.2.43"},
		{src: Forwarded, name: "forwarded all trusted gives leftmost", remote: "10.0.0.1:1", fwd: []string{"for=10.0.0.3, for=10.0.0.4"}, want: "10.0.0.3"},

		// Forwarded: a client's garbage left of the proxy's element, in
		// the same line, does not hide it.
		{src: Forwarded, name: "forwarded unterminated quote then proxy element", remote: "10.0.0.1:1", fwd: []string{`for="oops, for=198.51.100.4`}, want: "198.51.100.4"},
		{src: Forwarded, name: "forwarded open quote in a parameter then proxy element", remote: "10.0.0.1:1", fwd: []string{`for=10.0.0.3;ext=", for=198.51.100.4`}, want: "198.51.100.4"},
		{src: Forwarded, name: "forwarded quote closed by proxy's quote", remote: "10.0.0.1:1", fwd: []string{`for=10.0.0.3;x=", for="[2001:db8::5]:80"`}, want: "2001:db8::5"},
		{src: Forwarded, name: "forwarded garbage element then trusted hop", remote: "10.0.0.1:1", fwd: []string{`for=198.51.100.1, for=x y, for=10.0.0.7`}, want: "10.0.0.1"},

		// Only the chosen header is read: a client-supplied one of the
		// other kind, passed on by a trusted proxy, chooses nothing.
		{name: "xff source ignores forwarded", remote: "10.0.0.1:1", fwd: []string{"for=192.0.2.60"}, want: "10.0.0.1"},
		{name: "xff source with both", remote: "10.0.0.1:1", xff: []string{"198.51.100.1"}, fwd: []string{"for=192.0.2.60"}, want: "198.51.100.1"},
		{name: "empty xff does not fall back to forwarded", remote: "10.0.0.1:1", xff: []string{" , "}, fwd: []string{"for=192.0.2.60"}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded source ignores client xff", remote: "10.0.0.1:1", xff: []string{"192.0.2.66"}, fwd: []string{"for=198.51.100.4"}, want: "198.51.100.4"},
		{src: Forwarded, name: "forwarded source without forwarded is peer", remote: "10.0.0.1:1", xff: []string{"192.0.2.66"}, want: "10.0.0.1"},
		{src: Forwarded, name: "forwarded source untrusted peer", remote: "203.0.113.7:1", fwd: []string{"for=192.0.2.66"}, want: "203.0.113.7"},

		// Another header (X-Real-IP, CF-Connecting-IP, True-Client-IP).
		{src: "X-Real-Ip", name: "x-real-ip from trusted peer", remote: "10.0.0.1:1", other: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{src: "X-Real-Ip", name: "x-real-ip ignores xff", remote: "10.0.0.1:1", xff: []string{"192.0.2.66"}, other: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{src: "X-Real-Ip", name: "x-real-ip absent ignores xff and forwarded", remote: "10.0.0.1:1", xff: []string{"192.0.2.66"}, fwd: []string{"for=192.0.2.67"}, want: "10.0.0.1"},
		{src: "X-Real-Ip", name: "x-real-ip from untrusted peer", remote: "203.0.113.7:1", other: []string{"198.51.100.7"}, want: "203.0.113.7"},
		{src: "X-Real-Ip", name: "x-real-ip garbage", remote: "10.0.0.1:1", other: []string{"not-an-ip"}, want: "10.0.0.1"},
		{src: "X-Real-Ip", name: "x-real-ip trusted value is still the client", remote: "10.0.0.1:1", other: []string{"10.0.0.42"}, want: "10.0.0.42"},
		{src: "X-Real-Ip", name: "x-real-ip two lines: the proxy's is last", remote: "10.0.0.1:1", other: []string{"192.0.2.66", "198.51.100.7"}, want: "198.51.100.7"},
		{src: "Cf-Connecting-Ip", name: "cf-connecting-ip ipv6", remote: "10.0.0.1:1", other: []string{"2001:db8::77"}, want: "2001:db8::77"},
		{src: "True-Client-Ip", name: "true-client-ip with port", remote: "[fd00::1]:1", other: []string{"198.51.100.8:1234"}, want: "198.51.100.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.xff != nil {
				h["X-Forwarded-For"] = tt.xff
			}
			if tt.fwd != nil {
				h["Forwarded"] = tt.fwd
			}
			if tt.other != nil {
				h[tt.src] = tt.other
			}
			got := Source{Trusted: trusted, Header: tt.src}.Resolve(tt.remote, h)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("Resolve(%q, src=%q, xff=%q, fwd=%q, other=%q) = %v, want %v", tt.remote, tt.src, tt.xff, tt.fwd, tt.other, got, want)
			}
		})
	}
}

func TestResolveNoTrustedProxies(t *testing.T) {
	h := http.Header{"X-Forwarded-For": {"198.51.100.1"}, "Forwarded": {"for=192.0.2.1"}}
	for _, trusted := range [][]netip.Prefix{nil, {}} {
		if got, want := Resolve("10.0.0.1:1", h, trusted), netip.MustParseAddr("10.0.0.1"); got != want {
			t.Errorf("Resolve with trusted=%v = %v, want the peer %v", trusted, got, want)
		}
	}
}

func TestTrusted(t *testing.T) {
	trusted := prefixes(t, "10.0.0.0/8", "192.168.1.1/32", "2001:db8::/32")
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.0", false},
		{"192.168.1.1", true},
		{"192.168.1.2", false},
		{"::ffff:10.1.2.3", true},
		{"2001:db8::1", true},
		{"2001:db8::1%eth0", true},
		{"2001:db9::1", false},
		{"::1", false},
	}
	for _, tt := range tests {
		if got := Trusted(netip.MustParseAddr(tt.addr), trusted); got != tt.want {
			t.Errorf("Trusted(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if Trusted(netip.MustParseAddr("10.0.0.1"), nil) {
		t.Error("Trusted with no prefixes = true")
	}
	if Trusted(netip.Addr{}, prefixes(t, "0.0.0.0/0", "::/0")) {
		t.Error("the invalid address is trusted")
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("10.0.0.1:1", "198.51.100.1, 10.0.0.2", `for="[2001:db8::1]:80"`)
	f.Add("10.0.0.1:1", "", `for=192.0.2.1;proto=http, for=unknown`)
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		trusted := prefixes(t, "10.0.0.0/8")
		h := http.Header{}
		if xff != "" {
			h["X-Forwarded-For"] = []string{xff}
		}
		if fwd != "" {
			h["Forwarded"] = []string{fwd}
		}
		got := Resolve(remote, h, trusted)
		peer := parsePeer(remote)
		if !Trusted(peer, trusted) && got != peer {
			t.Fatalf("untrusted peer %v, got %v", peer, got)
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("got unnormalized %v", got)
		}
	})
}

func BenchmarkResolve(b *testing.B) {
	trusted := prefixes(b, "10.0.0.0/8", "172.16.0.0/12", "fd00::/8")
	cases := []struct {
		name   string
		remote string
		h      http.Header
	}{
		{"untrusted-peer", "203.0.113.7:5555", http.Header{"X-Forwarded-For": {"1.2.3.4"}}},
		{"trusted-no-xff", "10.0.0.1:5555", http.Header{"User-Agent": {"x"}}},
		{"xff-3-hops", "10.0.0.1:5555", http.Header{"X-Forwarded-For": {"203.0.113.7, 10.0.0.9, 172.16.0.3"}}},
		{"forwarded-2-hops", "10.0.0.1:5555", http.Header{"Forwarded": {`for="[2001:db8::1]:4711";proto=https, for=10.0.0.9`}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Resolve(c.remote, c.h, trusted)
			}
		})
	}
}

func TestResolveNoAllocs(t *testing.T) {
	trusted := prefixes(t, "10.0.0.0/8")
	h := http.Header{"User-Agent": {"x"}}
	for _, remote := range []string{"203.0.113.7:5555", "10.0.0.1:5555", "[2001:db8::1]:443"} {
		if n := testing.AllocsPerRun(100, func() { Resolve(remote, h, trusted) }); n != 0 {
			t.Errorf("Resolve(%q) without forwarding headers: %v allocs, want 0", remote, n)
		}
	}
}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", XForwardedFor, ""},
		{"forwarded", Forwarded, ""},
		{"FORWARDED", Forwarded, ""},
		{"x-forwarded-for", XForwardedFor, ""},
		{"X-Real-IP", "X-Real-Ip", ""},
		{"cf-connecting-ip", "Cf-Connecting-Ip", ""},
		{"True-Client-IP", "True-Client-Ip", ""},
		{"X Real IP", "", "not a header field name"},
		{"X-Real-IP:", "", "not a header field name"},
		{"host", "", "cannot carry"},
		{"Transfer-Encoding", "", "cannot carry"},
		{"connection", "", "cannot carry"},
	} {
		got, err := ParseHeader(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseHeader(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseHeader(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
