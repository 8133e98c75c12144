// Package clientip finds the address of the client behind a request, taking
// into account only the one forwarding header the operator chose, and only
// as written by proxies the operator trusts.
//
// Every proxy appends the address it received the request from to the right
// of X-Forwarded-For (or adds an element to Forwarded). Only the entries
// added by trusted proxies can be believed: a client can send any
// X-Forwarded-For it likes, and a proxy appends to it. So the list is read
// from the right, the entries of trusted proxies are skipped, and the first
// untrusted entry is the client: the address the outermost trusted proxy
// saw. Anything to its left was written by that client and is ignored.
//
// Exactly one header is read (Source.Header): the one the trusted proxies
// write. Were several read, with one preferred when present, a client could
// send the other one through a proxy that passes it on untouched and choose
// its own address.
package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
)

// The headers Source.Header names that have a syntax of their own; any
// other is read as a list of addresses, like X-Forwarded-For.
const (
	Forwarded     = "Forwarded"
	XForwardedFor = "X-Forwarded-For"
)

// Source is where the client address of a request is read from: the TCP
// peer, or, when the peer is one of Trusted, the header Header (in
// canonical form). The zero Source trusts nobody: the client is the peer.
type Source struct {
	Trusted []netip.Prefix
	// Header is Forwarded (RFC 7239 "for" parameters), X-Forwarded-For, or
	// the name of another header holding an address or a comma-separated
	// list of them, such as X-Real-Ip or Cf-Connecting-Ip. Empty means
	// X-Forwarded-For.
	Header string
}

// ParseHeader returns the canonical header name of a config's
// client_ip.header: "forwarded", "x-forwarded-for" (any case), or a field
// name. Framing and hop-by-hop fields, which no proxy uses to carry an
// address and which do not reach the gateway as sent, are refused.
func ParseHeader(s string) (string, error) {
	if s == "" {
		return XForwardedFor, nil
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return "", fmt.Errorf("%q is not a header field name", s)
		}
	}
	name := textproto.CanonicalMIMEHeaderKey(s)
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Content-Length", "Host", "Cookie",
		"Authorization", "Proxy-Authorization":
		return "", errors.New(name + " cannot carry the client address")
	}
	return name, nil
}

// Resolve returns the client address of a request that arrived from the
// TCP peer remoteAddr ("ip:port", as in http.Request.RemoteAddr) with
// headers h.
//
// When the peer is not trusted, it is the client, and the headers are
// ignored: they are the client's own words. When it is trusted, the
// entries of the chosen header (all its lines, in order, comma-separated)
// are walked from the right, skipping trusted addresses, and the first
// untrusted one is returned. If every entry is trusted, the leftmost is
// returned. An entry that is not an address where the walk needs one
// (garbage, "unknown", an obfuscated Forwarded node, an element without
// "for") ends it with the peer: nothing left of it can be believed, and
// nothing to its right is the client. Without the header, the client is
// the peer. Entries may carry a port ("192.0.2.1:4711",
// "[2001:db8::1]:80") and empty list elements are skipped.
//
// Returned addresses have IPv6 zones stripped and IPv4-mapped IPv6
// addresses unmapped. If remoteAddr is not an address (with or without a
// port), the zero netip.Addr is returned, which is invalid.
func (s Source) Resolve(remoteAddr string, h http.Header) netip.Addr {
	peer := parsePeer(remoteAddr)
	if !peer.IsValid() || !Trusted(peer, s.Trusted) {
		return peer
	}
	switch s.Header {
	case Forwarded:
		if fwd := h[Forwarded]; len(fwd) > 0 {
			return walkForwarded(fwd, peer, s.Trusted)
		}
	case "", XForwardedFor:
		// Direct map access: the header keys of a server request are
		// canonical, and this keeps the common no-header path free of
		// work.
		if xff := h[XForwardedFor]; len(xff) > 0 {
			return walkList(xff, peer, s.Trusted)
		}
	default:
		if v := h[s.Header]; len(v) > 0 {
			return walkList(v, peer, s.Trusted)
		}
	}
	return peer
}

// Resolve is Source{Trusted: trusted}.Resolve: the client address from
// X-Forwarded-For as trusted proxies wrote it.
func Resolve(remoteAddr string, h http.Header, trusted []netip.Prefix) netip.Addr {
	return Source{Trusted: trusted}.Resolve(remoteAddr, h)
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

// walkList walks a list of addresses (X-Forwarded-For and the like) from
// the right; see Source.Resolve.
func walkList(lines []string, peer netip.Addr, trusted []netip.Prefix) netip.Addr {
	last := peer
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
			a, ok := parseNode(entry)
			if !ok {
				return peer
			}
			if !Trusted(a, trusted) {
				return a
			}
			last = a
		}
	}
	return last
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
			return peer
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
// An element with a syntax error becomes a bad node, and parsing goes on
// after the first comma that follows the element's start. A proxy appends
// its element after ", " to whatever the client sent, so the client's
// garbage (an unterminated quote swallowing the rest of the line) cannot
// hide the proxy's element, which the walk reads first.
func appendForwarded(nodes []forNode, s string) []forNode {
	i := 0
	for {
		start := i
		node, next, empty, ok := parseElement(s, i)
		if !ok {
			nodes = append(nodes, forNode{})
			c := strings.IndexByte(s[start:], ',')
			if c < 0 {
				return nodes
			}
			i = start + c + 1
			continue
		}
		if !empty {
			nodes = append(nodes, node) // node.ok is false without "for"
		}
		if next >= len(s) {
			return nodes
		}
		i = next + 1 // past the comma
	}
}

// parseElement parses the forwarded-element at s[i:], up to the comma
// that ends it (next, or len(s)). empty: it has no pair.
func parseElement(s string, i int) (node forNode, next int, empty, ok bool) {
	hasFor := false
	empty = true
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
				return forNode{}, i, false, false
			}
			i++
			var val string
			var vok bool
			val, i, vok = parseValue(s, i)
			if !vok {
				return forNode{}, i, false, false
			}
			if strings.EqualFold(key, "for") {
				if hasFor {
					// Two "for" in one element is ambiguous.
					return forNode{}, i, false, false
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
	if i < len(s) && s[i] != ',' {
		return forNode{}, i, false, false
	}
	return node, i, empty, true
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
