// Package ipfilter is the "ipfilter" policy: it admits or refuses a request
// by its client address, against allow and deny lists of CIDR prefixes.
package ipfilter

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/netip"

	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the ipfilter policy.
var Unit = policy.Unit{Name: "ipfilter", New: New}

// Denial code and public detail. The detail is deliberately generic: the
// client's address is not echoed, and which list refused it is not said.
const (
	Code   = "ip_denied"
	detail = "client address not allowed"
)

// Filter refuses requests whose client address is denied, or not allowed
// when there is an allow list. It is immutable and safe for concurrent use.
//
// Lookups loop over the prefixes, each a pair of 64-bit mask-and-compare
// operations: about a nanosecond per prefix, which for the lists such a
// filter holds (up to a hundred or so prefixes) beats the set-up and
// pointer chasing of a trie; see BenchmarkApply for 100 prefixes. Lists of
// thousands of prefixes (country blocks, threat feeds) want a trie.
type Filter struct {
	allow, deny prefixSet
	// trusted and ownTrusted: see Config.TrustedProxies.
	trusted    clientip.Source
	ownTrusted bool
}

var _ policy.Policy = (*Filter)(nil)

// New builds a Filter from cfg (see Config). The gateway resolves the
// client address with env.TrustedProxies before the chain runs, and a
// filter with its own trusted_proxies resolves it again, from the same
// header (env.ClientIPHeader).
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	p, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	return &Filter{allow: p.allow, deny: p.deny, trusted: clientip.Source{Trusted: p.trusted, Header: env.ClientIPHeader}, ownTrusted: p.ownTrusted}, nil
}

// Apply refuses the request with 403 ip_denied when its client address is
// in the deny list, or when there is an allow list and the address is not
// in it. An unknown (invalid) client address is always refused: it cannot
// be shown to be outside the deny list.
func (f *Filter) Apply(_ context.Context, ex *policy.Exchange) error {
	ip := ex.ClientIP
	if f.ownTrusted {
		ip = f.trusted.Resolve(ex.Request.RemoteAddr, ex.Request.Header)
	}
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() {
		return deny(&denyReason{addr: ip})
	}
	if rule, ok := f.deny.match(ip); ok {
		return deny(&denyReason{addr: ip, rule: rule, listed: true})
	}
	if !f.allow.empty() {
		if _, ok := f.allow.match(ip); !ok {
			return deny(&denyReason{addr: ip})
		}
	}
	return nil
}

// Allowed reports whether f admits the client address a, as Apply would.
func (f *Filter) Allowed(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return false
	}
	if _, ok := f.deny.match(a); ok {
		return false
	}
	if f.allow.empty() {
		return true
	}
	_, ok := f.allow.match(a)
	return ok
}

func deny(why *denyReason) error {
	return policy.Deny(http.StatusForbidden, Code, detail).WithErr(why)
}

// denyReason is the logged cause of a refusal; formatted only when logged.
type denyReason struct {
	addr   netip.Addr
	rule   netip.Prefix
	listed bool // in the deny list; else missing from the allow list
}

func (r *denyReason) Error() string {
	if !r.addr.IsValid() {
		return "ipfilter: client address unknown"
	}
	if r.listed {
		return "ipfilter: " + r.addr.String() + " is in deny " + r.rule.String()
	}
	return "ipfilter: " + r.addr.String() + " is not in the allow list"
}

// prefixSet holds prefixes as 128-bit (IPv4-mapped for IPv4) base and mask
// pairs, so a lookup is two AND-and-compare operations per prefix with no
// decoding; netip.Prefix.Contains costs several times more.
type prefixSet struct {
	entries []entry
}

type entry struct {
	hi, lo         uint64 // base address
	maskHi, maskLo uint64
	// is4 keeps families apart: IPv6 prefixes such as ::/0 cover the
	// IPv4-mapped range but, as with netip.Prefix.Contains, do not hold
	// IPv4 addresses.
	is4 bool
	p   netip.Prefix // as configured, for logs
}

func (s *prefixSet) add(p netip.Prefix) {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	hi, lo := split(p.Addr())
	var mhi, mlo uint64
	switch {
	case bits >= 128:
		mhi, mlo = ^uint64(0), ^uint64(0)
	case bits > 64:
		mhi, mlo = ^uint64(0), ^uint64(0)<<(128-bits)
	case bits > 0:
		mhi = ^uint64(0) << (64 - bits)
	}
	s.entries = append(s.entries, entry{hi: hi & mhi, lo: lo & mlo, maskHi: mhi, maskLo: mlo, is4: p.Addr().Is4(), p: p})
}

// split returns a's 16-byte form (IPv4 as IPv4-mapped) as two words.
func split(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func (s *prefixSet) empty() bool { return len(s.entries) == 0 }

// match returns the first prefix holding a, which must be valid, unmapped
// and zoneless.
func (s *prefixSet) match(a netip.Addr) (netip.Prefix, bool) {
	hi, lo := split(a)
	is4 := a.Is4()
	for i := range s.entries {
		e := &s.entries[i]
		if hi&e.maskHi == e.hi && lo&e.maskLo == e.lo && e.is4 == is4 {
			return e.p, true
		}
	}
	return netip.Prefix{}, false
}
