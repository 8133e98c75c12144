package clientip

import (
	"net/http"
	"net/netip"
	"testing"
)

// FuzzSourceResolve holds Resolve to its contract for any header value:
// no panic; an untrusted peer is the client whatever the headers say; a
// trusted peer yields a valid address; and only the chosen header counts,
// so adding the same bytes to any other forwarding header changes nothing.
func FuzzSourceResolve(f *testing.F) {
	for _, s := range []string{
		"198.51.100.1", "198.51.100.1, 10.0.0.7", "for=192.0.2.43, for=10.0.0.9",
		`for="[2001:db8::1]:80";proto=https`, `for="oops, for=198.51.100.4`,
		"garbage", " , ,", `for=10.0.0.3;x=", for="[2001:db8::5]"`, "unknown", "_hidden",
	} {
		for h := range 3 {
			for r := range 2 {
				f.Add(s, uint8(h), uint8(r))
			}
		}
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	headers := []string{XForwardedFor, Forwarded, "X-Real-Ip"}
	remotes := []string{"203.0.113.7:1", "10.0.0.1:1"}
	f.Fuzz(func(t *testing.T, v string, hi, ri uint8) {
		name := headers[int(hi)%len(headers)]
		remote := remotes[int(ri)%len(remotes)]
		src := Source{Trusted: trusted, Header: name}
		peer := netip.MustParseAddrPort(remote).Addr()
		h := http.Header{name: {v}}
		got := src.Resolve(remote, h)
		if !got.IsValid() {
			t.Fatalf("Resolve(%q, %s: %q) is invalid", remote, name, v)
		}
		if !Trusted(peer, trusted) && got != peer {
			t.Fatalf("untrusted peer %s, %s: %q gave %s", peer, name, v, got)
		}
		for _, other := range headers {
			if other == name {
				continue
			}
			h2 := http.Header{name: {v}, other: {v}}
			if again := src.Resolve(remote, h2); again != got {
				t.Fatalf("%s: %q changed the address read from %s: %s, then %s", other, v, name, got, again)
			}
		}
	})
}
