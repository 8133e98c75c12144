package authserver

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/users"
)

// idClaims are an ID token's claims (OpenID Connect Core §2, §3.1.3.6,
// §5.1).
type idClaims struct {
	Iss      string   `json:"iss"`
	Sub      string   `json:"sub"`
	Aud      string   `json:"aud"`
	Azp      string   `json:"azp"`
	Exp      int64    `json:"exp"`
	Iat      int64    `json:"iat"`
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	SID      string   `json:"sid,omitempty"`
	AtHash   string   `json:"at_hash,omitempty"`
	userClaims
}

// userClaims are the standard claims of the scopes granted (OpenID
// Connect Core §5.4), in the ID token and the userinfo response.
type userClaims struct {
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

func claimsFor(u *users.User, scope string) userClaims {
	var c userClaims
	if u == nil {
		return c
	}
	sc := strings.Fields(scope)
	if slices.Contains(sc, "profile") {
		c.Name, c.PreferredUsername = u.Name, u.Username
	}
	if slices.Contains(sc, "email") && u.Email != "" {
		v := u.EmailVerified
		c.Email, c.EmailVerified = u.Email, &v
	}
	if slices.Contains(sc, "groups") {
		c.Groups = u.Groups
	}
	return c
}

// claims are a federated user's claims of the scopes granted.
func (f *fedUser) claims(scope string) userClaims {
	return claimsFor(&users.User{Username: f.Username, Name: f.Name, Email: f.Email,
		EmailVerified: f.EmailVerified != nil && *f.EmailVerified, Groups: f.Groups}, scope)
}

// idTokenInput is what an ID token says about a login.
type idTokenInput struct {
	clientID, sub, scope, nonce, acr, sid string
	amr                                   []string
	authTime                              int64
	accessToken                           string
	lifetime                              time.Duration
	fed                                   *fedUser
}

// idToken signs an ID token with the active key.
func (srv *Server) idToken(in idTokenInput) (string, error) {
	now := srv.now()
	key := srv.ring.signing()
	var u *users.User
	if srv.s.login != nil {
		u, _ = srv.s.login.users.BySub(in.sub)
	}
	c := idClaims{
		Iss: srv.s.issuer, Sub: in.sub, Aud: in.clientID, Azp: in.clientID,
		Iat: now.Unix(), Exp: now.Add(in.lifetime).Unix(), AuthTime: in.authTime,
		Nonce: in.nonce, ACR: in.acr, AMR: in.amr, SID: in.sid,
		AtHash:     atHash(key.Algorithm(), in.accessToken),
		userClaims: claimsFor(u, in.scope),
	}
	if in.fed != nil {
		c.userClaims = in.fed.claims(in.scope)
	}
	tok, err := key.Sign(mustJSON(c), "JWT")
	return string(tok), err
}

// atHash is the left half of the access token's hash with the hash of the
// ID token's algorithm (OpenID Connect Core §3.1.3.6; SHA-512 for EdDSA
// with Ed25519, the only EdDSA curve we sign with).
func atHash(alg, accessToken string) string {
	if accessToken == "" {
		return ""
	}
	var h hash.Hash
	switch alg {
	case "EdDSA":
		h = sha512.New()
	default: // ES256, RS256
		h = sha256.New()
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// loginMetadata adds to the discovery document what end-user login
// supports, exactly (OpenID Connect Discovery §3, RFC 8414 §2, RFC 9126
// §5, RFC 9207 §3, RP-Initiated Logout §3).
func (srv *Server) loginMetadata(m map[string]any) {
	iss := srv.s.issuer
	m["authorization_endpoint"] = iss + PathAuthorize
	m["pushed_authorization_request_endpoint"] = iss + PathPAR
	m["require_pushed_authorization_requests"] = srv.s.login.requirePAR
	m["userinfo_endpoint"] = iss + PathUserinfo
	m["end_session_endpoint"] = iss + PathLogout
	m["grant_types_supported"] = []string{config.GrantClientCredentials, config.GrantTokenExchange, config.GrantAuthorizationCode, config.GrantRefreshToken}
	m["response_types_supported"] = []string{"code"}
	m["response_modes_supported"] = []string{"query"}
	m["code_challenge_methods_supported"] = []string{"S256"}
	m["authorization_response_iss_parameter_supported"] = true
	m["subject_types_supported"] = []string{"public"}
	// The algorithm of the key that signs now; after a change of
	// algorithm the ring holds keys of both until the old ones retire.
	m["id_token_signing_alg_values_supported"] = []string{srv.s.alg}
	m["userinfo_signing_alg_values_supported"] = []string{}
	m["prompt_values_supported"] = []string{"none", "login", "consent", "select_account"}
	m["claims_supported"] = []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "amr", "sid", "at_hash",
		"name", "preferred_username", "email", "email_verified", "groups"}
	m["claims_parameter_supported"] = false
	m["request_parameter_supported"] = false
	m["request_uri_parameter_supported"] = false
	m["frontchannel_logout_supported"] = false
	m["backchannel_logout_supported"] = false
	m["token_endpoint_auth_methods_supported"] = append(slices.Clip(m["token_endpoint_auth_methods_supported"].([]string)), config.AuthNone)
	m["pushed_authorization_request_endpoint_auth_methods_supported"] = m["introspection_endpoint_auth_methods_supported"]
	sc := slices.Clone(m["scopes_supported"].([]string))
	for _, s := range oidcScopes {
		if !slices.Contains(sc, s) {
			sc = append(sc, s)
		}
	}
	m["scopes_supported"] = sc
}
