package gateway

import (
	"io"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/proxy"
)

// sanitizeInbound makes the client's request header the gateway's to read
// and add to. It runs first, before the request id, the client address and
// the policy chain, so that what it removes is the client's only:
//
//   - Hop-by-hop fields (RFC 9110 §7.6.1) go now, those the Connection
//     field names included, rather than in the proxy after the chain: a
//     client naming X-Request-Id, an identity header or the identity
//     token in Connection removes its own copy, never the gateway's.
//     Connection itself goes; only "Connection: Upgrade" comes back, for
//     a WebSocket handshake (GET over HTTP/1.1, no body, Upgrade exactly
//     "websocket"), which the upstream still passes only when configured
//     for it. Every other upgrade (h2c above all) and HTTP2-Settings go.
//     TE stays only as "trailers".
//   - Forwarding fields (proxy.ForwardingField: Forwarded, X-Forwarded-*,
//     X-Real-IP, True-Client-IP and the like) go unless the peer is a
//     trusted proxy; from any peer, a spelling of one of them, or of a
//     hop-by-hop field or X-Request-Id, with '_' for '-' goes, since
//     CGI-style upstreams read X_Forwarded_For as X-Forwarded-For.
//   - Request trailers are held to the names the Trailer field announced:
//     when the body ends, anything else the client sent in its trailer
//     is dropped from r.Trailer (net/http keeps every field it read).
func sanitizeInbound(r *http.Request, trusted []netip.Prefix) {
	h := r.Header
	if h == nil {
		return
	}
	var upgrade, teTrailers bool
	if conn := h["Connection"]; conn != nil {
		for _, f := range conn {
			for sf := range strings.SplitSeq(f, ",") {
				sf = textproto.TrimString(sf)
				switch {
				case sf == "":
				case strings.EqualFold(sf, "upgrade"):
					upgrade = true
				case strings.EqualFold(sf, "te"):
					// TE is hop-by-hop and must be named; its
					// "trailers" is kept below.
				default:
					if k := textproto.CanonicalMIMEHeaderKey(sf); !framingField(k) {
						delete(h, k)
					}
				}
			}
		}
	}
	teTrailers = hasToken(h["Te"], "trailers")
	upgrade = upgrade && websocketHandshake(r)

	trustedPeer := false
	if len(trusted) > 0 {
		if peer, err := netipAddr(r.RemoteAddr); err == nil {
			trustedPeer = inPrefixes(peer, trusted)
		}
	}
	for k := range h {
		switch {
		case proxy.HopByHopField(k):
			// Content-Length and Transfer-Encoding as net/http parsed
			// them stay for the policies that read them (waf); the
			// proxy writes the framing of what it sends itself.
			if !framingField(k) {
				delete(h, k)
			}
		case proxy.ForwardingField(k):
			if !trustedPeer || strings.IndexByte(k, '_') >= 0 {
				delete(h, k)
			}
		case strings.IndexByte(k, '_') >= 0 && proxy.SameField(k, proxy.RequestIDField):
			delete(h, k)
		}
	}
	if teTrailers {
		h["Te"] = []string{"trailers"}
	}
	if upgrade {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{"websocket"}
	}

	if r.Body != nil && r.Body != http.NoBody && (len(r.TransferEncoding) > 0 || len(r.Trailer) > 0) {
		declared := make([]string, 0, len(r.Trailer))
		for k := range r.Trailer {
			declared = append(declared, k)
		}
		r.Body = &declaredTrailers{ReadCloser: r.Body, r: r, declared: declared}
	}
}

// framingField reports the framing fields net/http parsed and keeps in
// the header map (their spellings with '_' are not: those are the
// client's own fields and go).
func framingField(k string) bool {
	return k == "Content-Length" || k == "Transfer-Encoding" || k == "Host"
}

// websocketHandshake reports a request that may be a WebSocket opening
// handshake (RFC 6455 §4.1): GET, HTTP/1.1, no body, and one Upgrade
// field holding only "websocket". HTTP/2 carries no Upgrade (RFC 9113
// §8.2.2), and its extended CONNECT is refused (dispatch).
func websocketHandshake(r *http.Request) bool {
	if r.Method != http.MethodGet || r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	up := r.Header["Upgrade"]
	return len(up) == 1 && strings.EqualFold(textproto.TrimString(up[0]), "websocket")
}

func hasToken(vv []string, token string) bool {
	for _, v := range vv {
		for sf := range strings.SplitSeq(v, ",") {
			// "trailers" takes no parameters; a weight (";q=") is allowed.
			sf, _, _ = strings.Cut(sf, ";")
			if strings.EqualFold(textproto.TrimString(sf), token) {
				return true
			}
		}
	}
	return false
}

// declaredTrailers drops from r.Trailer, when the body ends, every field
// the Trailer field did not announce. net/http's HTTP/1.1 reader adds all
// the fields of a chunked body's trailer to r.Trailer, announced or not.
type declaredTrailers struct {
	io.ReadCloser
	r        *http.Request
	declared []string
	done     bool
}

func (d *declaredTrailers) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	if err == io.EOF && !d.done {
		d.done = true
		t := d.r.Trailer
		for k := range t {
			keep := false
			for _, dk := range d.declared {
				if dk == k {
					keep = true
					break
				}
			}
			if !keep {
				delete(t, k)
			}
		}
	}
	return n, err
}

// headerProtector is a policy that sets or strips request fields the
// upstream takes the gateway's word for (identity: its headers and its
// token).
type headerProtector interface {
	ProtectedHeaders() []string
}

// appendProtected adds p's protected fields, if it has any, to names: the
// route's proxy never lets them pass as trailers nor removes them because
// a Connection field names them.
func appendProtected(names []string, p policy.Policy) []string {
	if hp, ok := p.(headerProtector); ok {
		names = append(names, hp.ProtectedHeaders()...)
	}
	return names
}
