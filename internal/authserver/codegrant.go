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

// codeIssued is what a redeemed code gave, kept so that a replay of the
// code revokes it (RFC 6749 §4.1.2: "SHOULD revoke (when possible) all
// tokens previously issued based on that authorization code").
type codeIssued struct {
	JTI    string `json:"jti"`
	Exp    int64  `json:"exp"`
	Family string `json:"family,omitempty"`
}

// authorizationCode redeems a code (RFC 6749 §4.1.3, RFC 7636 §4.6): the
// code is the client's, the redirect_uri the one it was issued for, the
// PKCE verifier hashes to its challenge, it has not expired and is spent
// here for the first time, on any instance.
func (srv *Server) authorizationCode(r *http.Request, a *authenticated, form url.Values) (*tokenResponse, *oauthError) {
	ctx := r.Context()
	code := form.Get("code")
	if code == "" || len(code) > 128 {
		return nil, badRequest("invalid_request", "code is required", nil)
	}
	h := hashKey(code)
	raw, err := srv.st.Get(ctx, codePrefix+h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("unknown code")
	} else if err != nil {
		return nil, unavailable(err)
	}
	var g codeGrant
	if json.Unmarshal(raw, &g) != nil {
		return nil, invalidGrant("unreadable code record")
	}
	// The bindings are checked before the code is spent, so that another
	// client, or a guess at the verifier, cannot spend the rightful
	// client's code; a guess at a 256-bit verifier is hopeless anyway.
	verifier := form.Get("code_verifier")
	switch {
	case g.Req.ClientID != a.c.id:
		return nil, invalidGrant("the code was issued to client " + g.Req.ClientID)
	case form.Get("redirect_uri") != g.Req.RedirectURI:
		return nil, invalidGrant("redirect_uri differs from the authorization request's")
	case verifier == "":
		return nil, badRequest("invalid_request", "code_verifier is required (PKCE)", nil)
	case !validVerifier(verifier) || subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(g.Req.Challenge)) != 1:
		return nil, invalidGrant("the PKCE code_verifier does not match the code_challenge")
	case !srv.now().Before(time.Unix(g.Exp, 0)):
		return nil, invalidGrant("the code has expired")
	}
	fresh, err := srv.st.SetNX(ctx, codeUsedPrefix+h, []byte("1"), codeRecordTTL)
	if err != nil {
		return nil, unavailable(err)
	}
	if !fresh {
		srv.codeReplayed(ctx, r, h, g)
		return nil, invalidGrant("the code was already redeemed: the tokens issued for it are revoked")
	}
	resp, family, e := srv.userTokens(r, a, form, userGrant{
		sub: g.Sub, scope: g.Req.Scope, nonce: g.Req.Nonce, sid: g.SID, acr: g.ACR, amr: g.AMR, authTime: g.AuthTime,
		grant: config.GrantAuthorizationCode, fed: g.Fed,
	}, nil)
	if e != nil {
		return nil, e
	}
	issued := codeIssued{JTI: resp.jti, Exp: resp.exp.Unix(), Family: family}
	if err := srv.st.Set(ctx, codeIssuedPrefix+h, mustJSON(issued), codeRecordTTL); err != nil {
		srv.revokeIssued(ctx, issued)
		return nil, unavailable(err)
	}
	// A replay that raced this redemption, and found nothing to revoke
	// yet, left its mark: revoke what was just issued.
	if _, err := srv.st.Get(ctx, codeReplayPrefix+h); err == nil {
		srv.revokeIssued(ctx, issued)
		return nil, invalidGrant("the code was replayed while it was redeemed")
	}
	return resp, nil
}

// codeReplayed revokes what a replayed code gave.
func (srv *Server) codeReplayed(ctx context.Context, r *http.Request, h string, g codeGrant) {
	srv.st.Set(ctx, codeReplayPrefix+h, []byte("1"), codeRecordTTL)
	srv.log.Warn("authorization code replayed: revoking its tokens", "client_id", g.Req.ClientID, "sub", g.Sub, "client_ip", srv.clientIP(r).String())
	srv.audit.Record(audit.Event{Kind: audit.AuthFailure, ClientIP: srv.clientIP(r), ClientID: g.Req.ClientID, Principal: g.Sub,
		Policy: "authorization_server", Code: "code_replayed", Status: http.StatusBadRequest, Detail: "authorization code replayed; its tokens are revoked"})
	raw, err := srv.st.Get(ctx, codeIssuedPrefix+h)
	if err != nil {
		return
	}
	var issued codeIssued
	if json.Unmarshal(raw, &issued) == nil {
		srv.revokeIssued(ctx, issued)
	}
}

func (srv *Server) revokeIssued(ctx context.Context, issued codeIssued) {
	if err := srv.RevokeJTI(ctx, issued.JTI, time.Unix(issued.Exp, 0)); err != nil {
		srv.log.Error("revoking the access token of a replayed code", "jti", issued.JTI, "err", err)
	}
	if issued.Family != "" {
		srv.revokeFamily(ctx, issued.Family, "authorization code replayed")
	}
}

// userGrant is an end user's grant, from a code or a refresh token.
type userGrant struct {
	sub, scope, nonce, sid, acr string
	amr                         []string
	authTime                    int64
	grant                       string
	fed                         *fedUser // a federated user's claims
}

// userTokens issues the access token, the ID token (scope openid) and a
// refresh token (a client with the refresh_token grant): a new family for
// a code, the next token of fam for a refresh. It returns the refresh
// token family.
func (srv *Server) userTokens(r *http.Request, a *authenticated, form url.Values, g userGrant, fam *rtFamily) (*tokenResponse, string, *oauthError) {
	aud, e := srv.audience(a.c, form)
	if e != nil {
		return nil, "", e
	}
	scopes := strings.Fields(g.scope)
	resp, e := srv.issue(r, a, issueRequest{sub: g.sub, aud: aud, scopes: scopes, grant: g.grant,
		authTime: g.authTime, acr: g.acr, sid: g.sid})
	if e != nil {
		return nil, "", e
	}
	if slices.Contains(scopes, "openid") {
		idt, err := srv.idToken(idTokenInput{clientID: a.c.id, sub: g.sub, scope: g.scope, nonce: g.nonce, acr: g.acr,
			sid: g.sid, amr: g.amr, authTime: g.authTime, accessToken: resp.AccessToken, lifetime: a.c.lifetime, fed: g.fed})
		if err != nil {
			return nil, "", serverError(err)
		}
		resp.IDToken = idt
	}
	if !slices.Contains(a.c.grants, config.GrantRefreshToken) {
		return resp, "", nil
	}
	ctx := r.Context()
	if fam == nil {
		tok, family, err := srv.newFamily(ctx, a.c.id, g, resp)
		if err != nil {
			srv.RevokeJTI(ctx, resp.jti, resp.exp)
			return nil, "", unavailable(err)
		}
		resp.RefreshToken = tok
		return resp, family, nil
	}
	tok, err := srv.rotate(ctx, fam, resp)
	if err != nil {
		srv.RevokeJTI(ctx, resp.jti, resp.exp)
		return nil, "", unavailable(err)
	}
	resp.RefreshToken = tok
	return resp, fam.ID, nil
}
