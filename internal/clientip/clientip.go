// Package clientip finds the address of the client behind a request, taking
// into account only the forwarding headers written by proxies the operator
// trusts.
//
// Every proxy appends the address it received the request from to the right
// of X-Forwarded-For (or adds an element to Forwarded). Only the entries
// added by trusted proxies can be believed: a client can send any
// X-Forwarded-For it likes, and a proxy appends to it. So the list is read
// from the right, the entries of trusted proxies are skipped, and the first
// untrusted entry is the client: the address the outermost trusted proxy
// saw. Anything to its left was written by that client and is ignored.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// Resolve returns the client address of a request that arrived from the TCP
// peer remoteAddr ("ip:port", as in http.Request.RemoteAddr) with headers h.
//
// When the peer is not in trusted, it is the client, and the headers are
// ignored: they are the client's own words. When it is trusted, the entries
// of X-Forwarded-For (all its header lines, in order, comma-separated) are
// walked from the right, skipping trusted addresses, and the first untrusted
// one is returned. If every entry is trusted, the leftmost is returned. An
// entry that is not an address stops the walk, and the last address seen
// (to its right) is returned: nothing left of garbage can be attributed to a
// trusted hop. Entries may carry a port ("192.0.2.1:4711", "[2001:db8::1]:80")
// and empty list elements are skipped.
//
// Without an X-Forwarded-For header, the "for" parameters of Forwarded
// (RFC 7239) are walked the same way; "unknown", obfuscated identifiers
// ("_hidden") and elements without "for" stop the walk.
//
// Returned addresses have IPv6 zones stripped and IPv4-mapped IPv6
// addresses unmapped. If remoteAddr is not an address (with or without a
// port), the zero netip.Addr is returned, which is invalid.
func Resolve(remoteAddr string, h http.Header, trusted []netip.Prefix) netip.Addr {
	peer := parsePeer(remoteAddr)
	if !peer.IsValid() || !Trusted(peer, trusted) {
		return peer
	}
	// Direct map access: the header keys of a server request are
	// canonical, and this keeps the common no-header path free of work.
	if xff := h["X-Forwarded-For"]; len(xff) > 0 {
		if a, ok := walkXFF(xff, peer, trusted); ok {
			return a
		}
	}
	if fwd := h["Forwarded"]; len(fwd) > 0 {
		return walkForwarded(fwd, peer, trusted)
	}
	return peer
}

// Trusted reports whether a is within one of the trusted prefixes. IPv4
// addresses match IPv4 prefixes whether written as IPv4 or IPv4-mapped IPv6,
// and zones are ignored. A nil or empty trusted trusts nothing.
func Trusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.WithZone("").Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// normalize strips the zone and unmaps an IPv4-mapped address.
func normalize(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }

// parsePeer parses a RemoteAddr. net/http always gives "ip:port", but other
// transports (unix sockets, tests) may give a bare address or none.
func parsePeer(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return normalize(ap.Addr())
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil {
		return normalize(a)
	}
	return netip.Addr{}
}

// walkXFF walks X-Forwarded-For lines from the right. ok is false when the
// header held no entry at all (only empty elements), so that Forwarded may
// be consulted instead.
func walkXFF(lines []string, peer netip.Addr, trusted []netip.Prefix) (netip.Addr, bool) {
	last := peer
	seen := false
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for line != "" {
			var entry string
			if c := strings.LastIndexByte(line, ','); c >= 0 {
				entry, line = line[c+1:], line[:c]
			} else {
				entry, line = line, ""
			}
			entry = trimOWS(entry)
			if entry == "" {
				continue
			}
			seen = true
			a, ok := parseNode(entry)
			if !ok {
				return last, true
			}
			if !Trusted(a, trusted) {
				return a, true
			}
			last = a
		}
	}
	return last, seen
}

// walkForwarded walks the "for" parameters of Forwarded elements from the
// right. The elements are parsed left to right first, since quoted strings
// may hold commas.
func walkForwarded(lines []string, peer netip.Addr, trusted []netip.Prefix) netip.Addr {
	var buf [16]forNode
	nodes := buf[:0]
	for _, line := range lines {
		nodes = appendForwarded(nodes, line)
	}
	last := peer
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !n.ok {
			return last
		}
		if !Trusted(n.addr, trusted) {
			return n.addr
		}
		last = n.addr
	}
	return last
}

// forNode is one Forwarded element's "for" address; ok is false when the
// element has none, or an unusable one.
type forNode struct {
	addr netip.Addr
	ok   bool
}

// appendForwarded parses one Forwarded header line:
//
//	Forwarded   = 1#forwarded-element
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair = token "=" value
//	value          = token / quoted-string
//
// A syntax error ends the line with a bad node, so the walk stops there.
func appendForwarded(nodes []forNode, s string) []forNode {
	i := 0
	for {
		// One element.
		var node forNode
		hasFor, empty := false, true
		for {
			i = skipOWS(s, i)
			if i >= len(s) || s[i] == ',' || s[i] == ';' {
				// Empty pair.
			} else {
				empty = false
				start := i
				for i < len(s) && isTchar(s[i]) {
					i++
				}
				key := s[start:i]
				if key == "" || i >= len(s) || s[i] != '=' {
					return append(nodes, forNode{})
				}
				i++
				var val string
				var ok bool
				val, i, ok = parseValue(s, i)
				if !ok {
					return append(nodes, forNode{})
				}
				if strings.EqualFold(key, "for") {
					if hasFor {
						// Two "for" in one element is ambiguous.
						return append(nodes, forNode{})
					}
					hasFor = true
					node.addr, node.ok = parseForwardedNode(val)
				}
				i = skipOWS(s, i)
			}
			if i < len(s) && s[i] == ';' {
				i++
				continue
			}
			break
		}
		if !empty {
			nodes = append(nodes, node) // node.ok is false without "for"
		}
		if i >= len(s) {
			return nodes
		}
		if s[i] != ',' {
			return append(nodes, forNode{})
		}
		i++
	}
}

// parseValue parses a token or quoted-string at s[i:], returning the value
// (unescaped) and the index after it.
func parseValue(s string, i int) (string, int, bool) {
	if i < len(s) && s[i] == '"' {
		i++
		start := i
		escaped := false
		for ; i < len(s); i++ {
			switch c := s[i]; {
			case c == '\\':
				escaped = true
				i++
			case c == '"':
				v := s[start:i]
				if escaped {
					v = unquote(v)
				}
				return v, i + 1, true
			case c < 0x20 && c != '\t' || c == 0x7f:
				return "", i, false
			}
		}
		return "", i, false
	}
	start := i
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	return s[start:i], i, i > start
}

// unquote removes the backslashes of quoted-pairs.
func unquote(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// parseForwardedNode parses a node (RFC 7239 §6): an IPv4 address, a
// bracketed IPv6 address, either optionally with a port. "unknown" and
// obfuscated identifiers are not addresses.
func parseForwardedNode(v string) (netip.Addr, bool) {
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(v[1:end])
		if err != nil || !a.Is6() || !validPort(v[end+1:]) {
			return netip.Addr{}, false
		}
		return normalize(a), true
	}
	host, port, _ := strings.Cut(v, ":")
	if port != "" || strings.HasSuffix(v, ":") {
		if !validPort(":" + port) {
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// validPort reports whether s is empty or ":" followed by a node-port: a
// decimal port or an obfuscated port ("_abc").
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	p := s[1:]
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			if !isAlnum(p[i]) && p[i] != '.' && p[i] != '_' && p[i] != '-' {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// parseNode parses an X-Forwarded-For entry: an address, optionally with a
// port, IPv6 optionally bracketed.
func parseNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return normalize(a), true
		}
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), true
	}
	return netip.Addr{}, false
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isTchar reports whether c is an RFC 9110 token character.
func isTchar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
