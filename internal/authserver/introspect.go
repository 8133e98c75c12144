package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// maxToken bounds a token presented for introspection, revocation or
// exchange.
const maxToken = 16 << 10

var (
	errNotOurs  = errors.New("authserver: not a token of this server")
	errExpired  = errors.New("authserver: token expired")
	errRevoked  = errors.New("authserver: token revoked")
	errMalforms = errors.New("authserver: malformed token")
)

// verified is one of our access tokens, checked.
type verified struct {
	claims accessClaims
	raw    map[string]any
}

// verifyOwn checks that tok is an access token this server signed with a
// key it still publishes, and decodes its claims. Expiry and revocation
// are checked by the caller (errExpired / errRevoked from checkLive).
func (srv *Server) verifyOwn(tok string) (*verified, error) {
	if len(tok) > maxToken || strings.Count(tok, ".") != 2 {
		return nil, errMalforms
	}
	hb, err := base64.RawURLEncoding.DecodeString(tok[:strings.IndexByte(tok, '.')])
	if err != nil {
		return nil, errMalforms
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if json.Unmarshal(hb, &h) != nil {
		return nil, errMalforms
	}
	k, ok := srv.ring.key(h.Kid)
	if !ok || h.Alg != k.Algorithm() || !strings.EqualFold(strings.TrimPrefix(h.Typ, "application/"), "at+jwt") {
		return nil, errNotOurs
	}
	payload, err := verifyWith(k, tok)
	if err != nil {
		return nil, errNotOurs
	}
	v := &verified{}
	if json.Unmarshal(payload, &v.claims) != nil || json.Unmarshal(payload, &v.raw) != nil {
		return nil, errMalforms
	}
	if v.claims.Iss != srv.s.issuer {
		return nil, errNotOurs
	}
	return v, nil
}

func verifyWith(k *keys.Key, tok string) ([]byte, error) {
	alg, err := keys.ParseAlgorithm(k.Algorithm())
	if err != nil {
		return nil, err
	}
	return jws.Verify([]byte(tok), jws.WithKey(alg, k.Signer().Public()))
}

// checkLive refuses an expired or revoked token.
func (srv *Server) checkLive(v *verified) error {
	if !srv.now().Before(time.Unix(v.claims.Exp, 0)) {
		return errExpired
	}
	if srv.revs.Revoked(v.claims.JTI) {
		return errRevoked
	}
	return nil
}

// introspect serves RFC 7662. Any registered client may introspect;
// inactive, foreign and malformed tokens alike are {"active": false}.
func (srv *Server) introspect(w http.ResponseWriter, r *http.Request) {
	_, a, tok, ok := srv.tokenRequest(w, r)
	if !ok {
		return
	}
	if a.method == config.AuthNone {
		srv.fail(w, r, invalidClient("public clients may not introspect", nil), a.c.id)
		return
	}
	writeJSON(w, srv.introspection(tok))
}

// tokenRequest reads what introspection and revocation share: the form,
// the authenticated client and the token parameter. On failure it has
// answered, and ok is false.
func (srv *Server) tokenRequest(w http.ResponseWriter, r *http.Request) (form url.Values, a *authenticated, tok string, ok bool) {
	form, e := parseForm(w, r)
	if e != nil {
		srv.fail(w, r, e, "")
		return nil, nil, "", false
	}
	a, id, e := srv.authenticateClient(r.Context(), r, form)
	if e != nil {
		srv.fail(w, r, e, id)
		return nil, nil, "", false
	}
	if tok = form.Get("token"); tok == "" {
		srv.fail(w, r, badRequest("invalid_request", "token is required", nil), a.c.id)
		return nil, nil, "", false
	}
	return form, a, tok, true
}

// introspection is the RFC 7662 §2.2 answer for tok.
func (srv *Server) introspection(tok string) map[string]any {
	v, err := srv.verifyOwn(tok)
	if err == nil {
		err = srv.checkLive(v)
	}
	if err != nil {
		return map[string]any{"active": false}
	}
	out := make(map[string]any, len(v.raw)+2)
	for k, val := range v.raw {
		out[k] = val
	}
	out["active"] = true
	out["token_type"] = "Bearer"
	if _, ok := v.claims.Cnf["jkt"]; ok {
		out["token_type"] = "DPoP"
	}
	return out
}

// revoke serves RFC 7009. A token that is not ours, already expired, or
// another client's is answered 200 all the same (§2.2): revocation must
// not become an oracle of valid tokens.
func (srv *Server) revoke(w http.ResponseWriter, r *http.Request) {
	form, a, tok, ok := srv.tokenRequest(w, r)
	if !ok {
		return
	}
	if srv.s.login != nil && strings.Count(tok, ".") == 1 {
		srv.revokeRefresh(w, r, a, tok)
		return
	}
	if hint := form.Get("token_type_hint"); hint != "" && hint != "access_token" && (hint != "refresh_token" || srv.s.login == nil) {
		srv.fail(w, r, badRequest("unsupported_token_type", "only access tokens are issued here", nil), a.c.id)
		return
	}
	v, err := srv.verifyOwn(tok)
	if err == nil && v.claims.ClientID != a.c.id {
		err = fmt.Errorf("authserver: token of client %q", v.claims.ClientID)
	}
	if err != nil {
		srv.log.Info("revocation ignored", "client_id", a.c.id, "cause", err.Error())
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	exp := time.Unix(v.claims.Exp, 0)
	if err := srv.RevokeJTI(r.Context(), v.claims.JTI, exp); err != nil {
		srv.fail(w, r, unavailable(err), a.c.id)
		return
	}
	srv.log.Info("access token revoked", "client_id", a.c.id, "jti", v.claims.JTI, "exp", v.claims.Exp)
	srv.audit.Record(audit.Event{Kind: audit.TokenRevoke, RequestID: r.Header.Get("X-Request-Id"), ClientIP: srv.clientIP(r),
		ClientID: a.c.id, JTI: v.claims.JTI, Expires: exp, Policy: "authorization_server", Detail: "RFC 7009 revocation by the client"})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// RevokeJTI revokes the token with id jti until exp: in this process's
// list at once, in the store (so that it survives restarts) and on the
// store's channel (so that every instance refuses it within a second).
func (srv *Server) RevokeJTI(ctx context.Context, jti string, exp time.Time) error {
	ttl := exp.Sub(srv.now())
	if ttl <= 0 {
		return nil
	}
	srv.revs.Revoke(jti, exp)
	val := []byte(strconv.FormatInt(exp.Unix(), 10))
	if err := srv.st.Set(ctx, revokedPrefix+jti, val, ttl); err != nil {
		return fmt.Errorf("authserver: storing the revocation: %w", err)
	}
	if err := srv.st.Publish(ctx, RevocationChannel, []byte(jti+" "+string(val))); err != nil {
		// Stored already: other instances find it when they next scan.
		srv.log.Warn("publishing a revocation", "jti", jti, "err", err)
	}
	return nil
}
