package authserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Store keys of refresh token families.
const (
	rtPrefix        = "authserver:rt:"         // + family: the family record
	rtUsedPrefix    = "authserver:rt-used:"    // + token hash: spent (SetNX)
	rtRevokedPrefix = "authserver:rt-revoked:" // + family: revoked
	sidRTPrefix     = "authserver:sid-rt:"     // + sid ":" family: the session's families
)

// rtFamily is a chain of refresh tokens descending from one login
// (RFC 9700 §4.14.2: rotation with reuse detection). Only the newest
// token is valid; presenting a spent one is taken as theft and revokes the
// family and the access tokens issued from it, on every instance: the
// record, the spent marks and the revocation all live in the store.
type rtFamily struct {
	ID       string        `json:"id"`
	ClientID string        `json:"client_id"`
	Sub      string        `json:"sub"`
	Scope    string        `json:"scope"`
	SID      string        `json:"sid,omitempty"`
	ACR      string        `json:"acr,omitempty"`
	AMR      []string      `json:"amr,omitempty"`
	AuthTime int64         `json:"auth_time"`
	Exp      int64         `json:"exp"`
	Current  string        `json:"current"` // hash of the valid token
	Tokens   []familyToken `json:"tokens"`  // access tokens issued, until they expire
	Fed      *fedUser      `json:"fed,omitempty"`
}

// familyToken is an access token issued from a family.
type familyToken struct {
	JTI string `json:"jti"`
	Exp int64  `json:"exp"`
}

// A refresh token is FAMILY.SECRET: the family names the record, the
// whole token's hash must be the record's current one.
func (srv *Server) newFamily(ctx context.Context, clientID string, g userGrant, resp *tokenResponse) (string, string, error) {
	now := srv.now()
	life := srv.s.login.refreshLife
	f := &rtFamily{ID: randomToken()[:22], ClientID: clientID, Sub: g.sub, Scope: g.scope, SID: g.sid, ACR: g.acr, AMR: g.amr,
		AuthTime: g.authTime, Exp: now.Add(life).Unix(), Fed: g.fed}
	tok, err := srv.rotate(ctx, f, resp)
	if err != nil {
		return "", "", err
	}
	if g.sid != "" {
		if err := srv.st.Set(ctx, sidRTPrefix+g.sid+":"+f.ID, []byte("1"), life); err != nil {
			return "", "", err
		}
	}
	return tok, f.ID, nil
}

// rotate makes the family's next token the valid one, recording the
// access token issued with it.
func (srv *Server) rotate(ctx context.Context, f *rtFamily, resp *tokenResponse) (string, error) {
	now := srv.now()
	tok := f.ID + "." + randomToken()
	f.Current = hashKey(tok)
	f.Tokens = slices.DeleteFunc(f.Tokens, func(t familyToken) bool { return t.Exp <= now.Unix() })
	f.Tokens = append(f.Tokens, familyToken{JTI: resp.jti, Exp: resp.exp.Unix()})
	ttl := time.Unix(f.Exp, 0).Sub(now)
	if ttl <= 0 {
		return "", errors.New("refresh token family expired")
	}
	if err := srv.st.Set(ctx, rtPrefix+f.ID, mustJSON(f), ttl); err != nil {
		return "", err
	}
	return tok, nil
}

// refreshGrant serves grant_type=refresh_token (RFC 6749 §6).
func (srv *Server) refreshGrant(r *http.Request, a *authenticated, form url.Values) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	tok := form.Get("refresh_token")
	id, _, ok := strings.Cut(tok, ".")
	if tok == "" || !ok || len(tok) > 128 {
		return nil, badRequest("invalid_request", "refresh_token is required", nil)
	}
	f, e := srv.loadFamily(ctx, id)
	if e != nil {
		return nil, e
	}
	now := srv.now()
	switch {
	case f.ClientID != a.c.id:
		return nil, invalidGrant("the refresh token was issued to client " + f.ClientID)
	case !now.Before(time.Unix(f.Exp, 0)):
		return nil, invalidGrant("the refresh token family has expired")
	}
	if revoked, err := srv.familyRevoked(ctx, id); err != nil {
		return nil, unavailable(err)
	} else if revoked {
		return nil, invalidGrant("the refresh token family is revoked")
	}
	h := hashKey(tok)
	fresh, err := srv.st.SetNX(ctx, rtUsedPrefix+h, []byte("1"), time.Unix(f.Exp, 0).Sub(now))
	if err != nil {
		return nil, unavailable(err)
	}
	if !fresh {
		// Reuse: the token was spent before, by its client or by a thief;
		// which one cannot be told, so the whole family goes.
		srv.log.Warn("refresh token reused: revoking its family", "client_id", f.ClientID, "sub", f.Sub, "family", f.ID, "client_ip", srv.clientIP(r).String())
		srv.audit.Record(audit.Event{Kind: audit.AuthFailure, ClientIP: srv.clientIP(r), ClientID: f.ClientID, Principal: f.Sub,
			Policy: "authorization_server", Code: "refresh_token_reused", Status: http.StatusBadRequest, Detail: "refresh token reused; family " + f.ID + " revoked"})
		srv.revokeFamily(ctx, f.ID, "refresh token reused")
		return nil, invalidGrant("the refresh token was already used: its family is revoked")
	}
	if subtle.ConstantTimeCompare([]byte(h), []byte(f.Current)) != 1 {
		return nil, invalidGrant("not the family's current refresh token")
	}
	if u, ok := srv.s.login.users.BySub(f.Sub); f.Fed == nil && (!ok || u.Disabled) {
		srv.revokeFamily(ctx, f.ID, "user removed or disabled")
		return nil, invalidGrant("the user no longer exists or is disabled")
	}
	scope := f.Scope
	if want := form.Get("scope"); strings.TrimSpace(want) != "" {
		sc, e := grantScopes(want, strings.Fields(f.Scope))
		if e != nil {
			return nil, e
		}
		scope = strings.Join(sc, " ")
	}
	resp, _, e := srv.userTokens(r, a, form, userGrant{sub: f.Sub, scope: scope, sid: f.SID, acr: f.ACR, amr: f.AMR,
		authTime: f.AuthTime, grant: config.GrantRefreshToken, fed: f.Fed}, f)
	if e != nil {
		return nil, e
	}
	// A revocation that read the record before this rotation wrote it
	// missed the new access token: revoke it here.
	if revoked, _ := srv.familyRevoked(ctx, id); revoked {
		srv.RevokeJTI(ctx, resp.jti, resp.exp)
		return nil, invalidGrant("the refresh token family was revoked during the refresh")
	}
	return resp, nil
}

func (srv *Server) loadFamily(ctx context.Context, id string) (*rtFamily, *oauthError) {
	raw, err := srv.st.Get(ctx, rtPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("unknown refresh token family")
	} else if err != nil {
		return nil, unavailable(err)
	}
	var f rtFamily
	if json.Unmarshal(raw, &f) != nil {
		return nil, invalidGrant("unreadable refresh token family")
	}
	return &f, nil
}

func (srv *Server) familyRevoked(ctx context.Context, id string) (bool, error) {
	_, err := srv.st.Get(ctx, rtRevokedPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// revokeFamily revokes a refresh token family and every live access token
// issued from it, for every instance.
func (srv *Server) revokeFamily(ctx context.Context, id, why string) {
	if err := srv.st.Set(ctx, rtRevokedPrefix+id, []byte(why), srv.s.login.refreshLife); err != nil {
		srv.log.Error("revoking a refresh token family", "family", id, "err", err)
	}
	f, e := srv.loadFamily(ctx, id)
	if e != nil {
		return
	}
	now := srv.now().Unix()
	for _, t := range f.Tokens {
		if t.Exp > now {
			if err := srv.RevokeJTI(ctx, t.JTI, time.Unix(t.Exp, 0)); err != nil {
				srv.log.Error("revoking an access token of a revoked family", "jti", t.JTI, "err", err)
			}
		}
	}
	srv.log.Info("refresh token family revoked", "family", id, "client_id", f.ClientID, "sub", f.Sub, "reason", why)
}

// revokeSessionFamilies revokes the refresh token families of a session
// (logout).
func (srv *Server) revokeSessionFamilies(ctx context.Context, sid string) {
	var ids []string
	prefix := sidRTPrefix + sid + ":"
	srv.st.Scan(ctx, prefix, func(key string, _ []byte) bool {
		ids = append(ids, strings.TrimPrefix(key, prefix))
		return true
	})
	for _, id := range ids {
		srv.revokeFamily(ctx, id, "logout")
		srv.st.Delete(ctx, sidRTPrefix+sid+":"+id)
	}
}

// revokeRefresh serves RFC 7009 for a refresh token: its family is
// revoked when the token is the client's current or a spent one; anything
// else is answered 200 all the same.
func (srv *Server) revokeRefresh(w http.ResponseWriter, r *http.Request, a *authenticated, tok string) {
	ctx := r.Context()
	id, _, _ := strings.Cut(tok, ".")
	f, e := srv.loadFamily(ctx, id)
	if e == nil && f.ClientID == a.c.id {
		_, err := srv.st.Get(ctx, rtUsedPrefix+hashKey(tok))
		if err == nil || subtle.ConstantTimeCompare([]byte(hashKey(tok)), []byte(f.Current)) == 1 {
			srv.revokeFamily(ctx, id, "revoked by the client (RFC 7009)")
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
