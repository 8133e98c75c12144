package admin

import (
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Access is how the admin API is protected.
type Access struct {
	// Address is the admin listener's configured address (host:port).
	Address string
	// Token, when not empty, is required as a Bearer token (or a verified
	// client certificate when ClientCerts).
	Token string
	// ClientCerts: the listener verifies client certificates against a
	// CA (admin.tls.client_ca_file); a verified one authorizes.
	ClientCerts bool
}

// Open reports whether the API is open to any caller that can connect:
// only when bound to loopback with neither a token nor client
// certificates configured.
func (a Access) Open() bool {
	return config.IsLoopbackAddress(a.Address) && a.Token == "" && !a.ClientCerts
}

// Authorize reports whether r may use the admin API, and if not, the
// status to answer (401 or 403).
//
//   - A verified client certificate (mTLS) authorizes.
//   - With a token configured, "Authorization: Bearer TOKEN" is required,
//     on loopback too.
//   - Without either, only a listener bound to loopback is open, and then
//     only to requests whose Host is a loopback name: a web page cannot
//     reach it through a DNS name rebound to 127.0.0.1.
//   - Anything else is refused: the config refuses such a listener at
//     load, this is defence in depth.
func (a Access) Authorize(r *http.Request) (bool, int) {
	if a.ClientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true, 0
	}
	if a.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(a.Token)) == 1 {
			return true, 0
		}
		return false, http.StatusUnauthorized
	}
	if a.ClientCerts {
		return false, http.StatusUnauthorized
	}
	if !config.IsLoopbackAddress(a.Address) {
		return false, http.StatusUnauthorized
	}
	if !loopbackHost(r.Host) {
		return false, http.StatusForbidden
	}
	return true, 0
}

func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func (a Access) wrap(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, status := a.Authorize(r)
		if !ok {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-admin"`)
				problem(w, status, "unauthorized", "the admin API needs the admin token or a client certificate")
				return
			}
			problem(w, status, "forbidden", "the admin API answers only to loopback host names")
			return
		}
		h(w, r)
	})
}
