package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// AuthorizationServer is the embedded OAuth 2.0 authorization server
// (docs/authorization-server.md). It serves its endpoints on every gateway
// listener, under the path of Issuer.
//
//	authorization_server:
//	  issuer: https://gw.example.com
//	  key_encryption_key: {env: GATEHOUSE_KEK}
//	  clients:
//	    - client_id: billing
//	      secret_hash: sha256:9f86d0...
//	      scopes: [invoices:read]
//	      audience: [api://invoices]
type AuthorizationServer struct {
	// Issuer is the server's identifier: the iss of its tokens and the base
	// of its endpoint URLs (https, or http on loopback or with AllowHTTP).
	// Required.
	Issuer string `yaml:"issuer"`
	// AllowHTTP permits a plain http issuer that is not on loopback.
	AllowHTTP bool `yaml:"allow_http"`
	// Algorithm signs the access tokens: ES256 (default), EdDSA or RS256.
	Algorithm string `yaml:"algorithm"`
	// KeyEncryptionKey encrypts the signing keys kept in the state store
	// (AES-256-GCM): 32 bytes, base64 (standard or URL alphabet, padded
	// or not) or 64 hex digits. Required unless InsecurePlaintextKeys.
	KeyEncryptionKey *Secret `yaml:"key_encryption_key"`
	// InsecurePlaintextKeys keeps the private keys unencrypted in the
	// store. Anyone who reads the store can then mint tokens.
	InsecurePlaintextKeys bool `yaml:"insecure_plaintext_keys"`
	// KeyRotation is how often a new signing key takes over. Default 30
	// days (720h), at least 1h.
	KeyRotation Duration `yaml:"key_rotation"`
	// TokenLifetime is the default access token lifetime. Default 1h,
	// between 1m and 24h.
	TokenLifetime Duration `yaml:"token_lifetime"`
	// Audience is the default aud of access tokens for clients without
	// their own. Default: [Issuer].
	Audience []string `yaml:"audience"`
	// Limits bound failed client authentications at the token endpoint.
	Limits AuthServerLimits `yaml:"limits"`
	// SAMLIssuers are the SAML 2.0 assertion issuers (our STS) whose
	// assertions token exchange accepts as subject tokens.
	SAMLIssuers []SAMLIssuer `yaml:"saml_issuers"`
	// SAMLDecryptionKeys are the RSA keys (PEM certificate file and PEM
	// private key) with which token exchange decrypts a subject token
	// that is a saml2:EncryptedAssertion addressed to the gateway.
	// Empty: encrypted assertions are refused.
	SAMLDecryptionKeys []SAMLDecryptionKey `yaml:"saml_decryption_keys"`
	// Clients are the registered clients. At least one is required.
	Clients []AuthClient `yaml:"clients"`
	// UsersFile is the users file (package users) of the people who may
	// log in at the login page, relative to the config file. Required
	// when a client has the authorization_code grant.
	UsersFile string `yaml:"users_file"`
	// Login configures end-user login: the authorization endpoint, the
	// login page, ID and refresh tokens.
	Login AuthServerLogin `yaml:"login"`
}

// AuthServerLogin configures end-user login at the authorization server.
type AuthServerLogin struct {
	// SessionLifetime is how long a login at the login page lasts (the
	// AS's session cookie): within it, an authorization request is
	// answered without asking again. Default 8h, between 1m and 720h.
	SessionLifetime Duration `yaml:"session_lifetime"`
	// RefreshTokenLifetime is the absolute lifetime of a refresh token
	// family (from the login; rotation does not extend it). Default 24h,
	// between 1m and 2160h.
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime"`
	// FailuresPerUser is the failed logins per minute for one username
	// before the login page refuses it with 429 until the budget refills.
	// Default 5. Failures per address are limits.failures_per_ip.
	FailuresPerUser int `yaml:"failures_per_user"`
	// RequirePAR refuses authorization requests that were not pushed
	// first (RFC 9126 pushed authorization requests).
	RequirePAR bool `yaml:"require_pushed_authorization_requests"`
	// Federation lets users log in at an upstream OpenID provider (a
	// corporate IdP): the AS is its relying party and maps its claims to
	// the AS's own. Without users_file it is the only way in and the
	// login page redirects straight to it.
	Federation *AuthServerFederation `yaml:"federation"`
}

// AuthServerFederation is an upstream OpenID provider users log in at.
type AuthServerFederation struct {
	// Issuer is the upstream's issuer; its discovery document is
	// fetched from Issuer/.well-known/openid-configuration. Required.
	Issuer string `yaml:"issuer"`
	// ClientID and ClientSecret are the AS's registration at the
	// upstream (client_secret_basic). ClientID is required.
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// RedirectPath is the AS's callback path below its issuer, to be
	// registered at the upstream as Issuer+RedirectPath. Default
	// /oauth2/federation/callback.
	RedirectPath string `yaml:"redirect_path"`
	// Scopes asked of the upstream. Default [openid, profile, email].
	Scopes []string `yaml:"scopes"`
	// Claims maps the AS's user claims to the upstream ID token's claim
	// names.
	Claims FederationClaims `yaml:"claims"`
	// ButtonLabel is the login page's button. Default "Sign in with
	// single sign-on".
	ButtonLabel string `yaml:"button_label"`
	// AllowHTTP permits an http upstream issuer that is not on a
	// loopback address.
	AllowHTTP bool `yaml:"allow_http"`
}

// FederationClaims names the upstream claims each AS user claim is taken
// from; empty means the same name (groups: "groups").
type FederationClaims struct {
	// Sub is the upstream claim that becomes the AS's sub. Default sub.
	Sub string `yaml:"sub"`
	// Username becomes preferred_username. Default preferred_username.
	Username string `yaml:"username"`
	// Email becomes email (and email_verified is taken along). Default email.
	Email string `yaml:"email"`
	// Name becomes name. Default name.
	Name string `yaml:"name"`
	// Groups becomes groups (a string or a list of strings). Default groups.
	Groups string `yaml:"groups"`
}

// AuthServerLimits are failure limits at the token, introspection and
// revocation endpoints: after that many failed client authentications in
// a minute, from one address or for one client_id, requests are refused
// with 429 until the budget refills.
type AuthServerLimits struct {
	// FailuresPerIP per minute from one client address. Default 20.
	FailuresPerIP int `yaml:"failures_per_ip"`
	// FailuresPerClient per minute for one client_id. Default 10.
	FailuresPerClient int `yaml:"failures_per_client"`
}

// SAMLDecryptionKey is one key for encrypted SAML assertions.
type SAMLDecryptionKey struct {
	// CertificateFile is the key's PEM certificate, relative to the
	// config file. Required.
	CertificateFile string `yaml:"certificate_file"`
	// Key is the PEM private key (RSA, at least 2048 bits). Required.
	Key Secret `yaml:"key"`
}

// SAMLIssuer is a trusted issuer of SAML 2.0 assertions.
type SAMLIssuer struct {
	// Issuer is the assertion's <Issuer> exactly. Required.
	Issuer string `yaml:"issuer"`
	// CertificateFile holds the PEM certificate(s) whose keys sign the
	// assertions, relative to the config file. Required.
	CertificateFile string `yaml:"certificate_file"`
	// Audience must be among the assertion's audiences. Default: the
	// authorization server's issuer.
	Audience string `yaml:"audience"`
}

// AuthClient is one registered OAuth client.
type AuthClient struct {
	// ClientID identifies the client. Required, unique.
	ClientID string `yaml:"client_id"`
	// SecretHash is the client secret's hash: "sha256:HEX" for generated,
	// high-entropy secrets, or an argon2id PHC string ("$argon2id$v=19$...")
	// for secrets people choose (`gatehouse clients hash`).
	SecretHash string `yaml:"secret_hash"`
	// Secret is the secret itself, from {env: NAME} or {file: PATH}.
	// At most one of SecretHash and Secret.
	Secret *Secret `yaml:"secret"`
	// AuthMethods are the accepted client authentication methods:
	// client_secret_basic, client_secret_post, private_key_jwt,
	// tls_client_auth, or none alone for a public client. Default: the secret methods when a secret is set,
	// private_key_jwt with JWKSFile, tls_client_auth with a TLS name.
	AuthMethods []string `yaml:"auth_methods"`
	// JWKSFile is the client's public JWK Set for private_key_jwt,
	// relative to the config file.
	JWKSFile string `yaml:"jwks_file"`
	// TLSSubjectDN is the certificate subject (RFC 4514 string, as Go
	// prints it: "CN=billing,O=Example") for tls_client_auth.
	TLSSubjectDN string `yaml:"tls_client_auth_subject_dn"`
	// TLSSANDNS is a DNS name the certificate must carry, for
	// tls_client_auth.
	TLSSANDNS string `yaml:"tls_client_auth_san_dns"`
	// TLSSANURI is a URI SAN (a SPIFFE ID) the certificate must carry.
	TLSSANURI string `yaml:"tls_client_auth_san_uri"`
	// Scopes are the scopes the client may be given. Empty: none.
	Scopes []string `yaml:"scopes"`
	// Audience lists the aud values the client may ask for; the first is
	// the default. Empty: the server's Audience.
	Audience []string `yaml:"audience"`
	// GrantTypes are the allowed grants: client_credentials (default),
	// urn:ietf:params:oauth:grant-type:token-exchange, authorization_code
	// and refresh_token.
	GrantTypes []string `yaml:"grant_types"`
	// TokenLifetime overrides the server's TokenLifetime for this client.
	TokenLifetime Duration `yaml:"token_lifetime"`
	// Claims are fixed claims put into every access token the client gets
	// (a department, a tenant), for the authorization policies after jwt
	// to read. They cannot replace the registered claims (iss, sub, aud,
	// exp, nbf, iat, jti, client_id, scope, cnf, act).
	Claims map[string]string `yaml:"claims"`
	// Demo marks a demo-only client, announced loudly at start.
	Demo bool `yaml:"demo"`
	// RedirectURIs are the client's redirection endpoints for the
	// authorization code grant, compared as exact strings (RFC 9700
	// §4.1.3). Required with that grant.
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser afterwards, compared as exact strings.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// MayExchange are the client ids whose tokens this client may present
	// as token exchange subject tokens besides its own and those naming it
	// (aud, client_id, azp, may_act): the delegation rule of RFC 8693
	// §4.4 kept in config. Empty: none.
	MayExchange []string `yaml:"may_exchange"`
}

// Authorization server grant and authentication method names.
const (
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"

	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthTLSClient     = "tls_client_auth"
	// AuthNone is a public client (a browser or native app): no secret,
	// only the authorization code grant with PKCE and refresh tokens.
	AuthNone = "none"
)

// validateAuthorizationServer checks the section's shape; the authserver
// package checks what needs files and keys.
func (c *Config) validateAuthorizationServer(v *validator) {
	as := c.AuthorizationServer
	if as == nil {
		return
	}
	p := "authorization_server"
	if as.Issuer == "" {
		v.add(p+".issuer", "required field is missing")
	} else if u, err := url.Parse(as.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add(p+".issuer", "issuer %q must be an absolute http(s) URL", as.Issuer)
	} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		v.add(p+".issuer", "issuer %q must not have a query, fragment or user info (RFC 8414 §2)", as.Issuer)
	} else if strings.HasSuffix(as.Issuer, "/") {
		v.add(p+".issuer", "issuer %q must not end with a slash", as.Issuer)
	} else if u.Scheme == "http" && !as.AllowHTTP && !loopbackHost(u.Hostname()) {
		v.add(p+".issuer", "an http issuer sends client secrets in clear text: use https, or allow_http: true")
	}
	switch as.Algorithm {
	case "", "ES256", "EdDSA", "RS256":
	default:
		v.add(p+".algorithm", "invalid algorithm %q (want ES256, EdDSA or RS256)", as.Algorithm)
	}
	if as.KeyEncryptionKey == nil && !as.InsecurePlaintextKeys {
		v.add(p+".key_encryption_key", "required to encrypt the signing keys at rest (or insecure_plaintext_keys: true)")
	}
	if as.KeyEncryptionKey != nil && as.InsecurePlaintextKeys {
		v.add(p+".insecure_plaintext_keys", "conflicts with key_encryption_key")
	}
	if d := as.KeyRotation.Std(); d != 0 && d.Hours() < 1 {
		v.add(p+".key_rotation", "must be at least 1h, got %v", as.KeyRotation)
	}
	if d := as.TokenLifetime.Std(); d != 0 && (d.Minutes() < 1 || d.Hours() > 24) {
		v.add(p+".token_lifetime", "must be between 1m and 24h, got %v", as.TokenLifetime)
	}
	if as.Limits.FailuresPerIP < 0 {
		v.add(p+".limits.failures_per_ip", "must not be negative")
	}
	if d := as.Login.SessionLifetime.Std(); d != 0 && (d.Minutes() < 1 || d.Hours() > 720) {
		v.add(p+".login.session_lifetime", "must be between 1m and 720h, got %v", as.Login.SessionLifetime)
	}
	if d := as.Login.RefreshTokenLifetime.Std(); d != 0 && (d.Minutes() < 1 || d.Hours() > 2160) {
		v.add(p+".login.refresh_token_lifetime", "must be between 1m and 2160h, got %v", as.Login.RefreshTokenLifetime)
	}
	if as.Login.FailuresPerUser < 0 {
		v.add(p+".login.failures_per_user", "must not be negative")
	}
	if f := as.Login.Federation; f != nil {
		validateFederation(v, p+".login.federation", f)
	}
	if as.Limits.FailuresPerClient < 0 {
		v.add(p+".limits.failures_per_client", "must not be negative")
	}
	for i, s := range as.SAMLIssuers {
		sp := fmt.Sprintf("%s.saml_issuers[%d]", p, i)
		if s.Issuer == "" {
			v.add(sp+".issuer", "required field is missing")
		}
		if s.CertificateFile == "" {
			v.add(sp+".certificate_file", "required field is missing")
		}
	}
	if len(as.Clients) == 0 {
		v.add(p+".clients", "at least one client is required")
	}
	ids := make(map[string]string)
	for i := range as.Clients {
		cl := &as.Clients[i]
		cp := fmt.Sprintf("%s.clients[%d]", p, i)
		if cl.ClientID == "" {
			v.add(cp+".client_id", "required field is missing")
		} else if first, dup := ids[cl.ClientID]; dup {
			v.add(cp+".client_id", "duplicate client_id %q (first at line %d)", cl.ClientID, v.line(first))
		} else {
			ids[cl.ClientID] = cp + ".client_id"
		}
		if cl.SecretHash != "" && cl.Secret != nil {
			v.add(cp+".secret", "give secret_hash or secret, not both")
		}
		if d := cl.TokenLifetime.Std(); d != 0 && (d.Minutes() < 1 || d.Hours() > 24) {
			v.add(cp+".token_lifetime", "must be between 1m and 24h, got %v", cl.TokenLifetime)
		}
		for j, m := range cl.AuthMethods {
			switch m {
			case AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthTLSClient:
			case AuthNone:
				if len(cl.AuthMethods) > 1 {
					v.add(fmt.Sprintf("%s.auth_methods[%d]", cp, j), "none (a public client) excludes every other method")
				}
			default:
				v.add(fmt.Sprintf("%s.auth_methods[%d]", cp, j), "unknown method %q (want %s, %s, %s, %s or %s)", m, AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthTLSClient, AuthNone)
			}
		}
		public := slices.Contains(cl.AuthMethods, AuthNone)
		for j, g := range cl.GrantTypes {
			switch g {
			case GrantClientCredentials, GrantTokenExchange:
				if public {
					v.add(fmt.Sprintf("%s.grant_types[%d]", cp, j), "a public client (auth_methods: [none]) may use only %s and %s", GrantAuthorizationCode, GrantRefreshToken)
				}
			case GrantAuthorizationCode, GrantRefreshToken:
			default:
				v.add(fmt.Sprintf("%s.grant_types[%d]", cp, j), "unsupported grant type %q (want %s, %s, %s or %s)", g, GrantClientCredentials, GrantTokenExchange, GrantAuthorizationCode, GrantRefreshToken)
			}
		}
		if public && len(cl.GrantTypes) == 0 {
			v.add(cp+".grant_types", "a public client needs grant_types: [%s] (and %s if it refreshes)", GrantAuthorizationCode, GrantRefreshToken)
		}
		if public && (cl.SecretHash != "" || cl.Secret != nil || cl.JWKSFile != "") {
			v.add(cp+".auth_methods", "a public client (none) has no credentials: remove secret_hash, secret and jwks_file")
		}
		if slices.Contains(cl.GrantTypes, GrantAuthorizationCode) {
			if len(cl.RedirectURIs) == 0 {
				v.add(cp+".redirect_uris", "required with the %s grant", GrantAuthorizationCode)
			}
			if as.UsersFile == "" && as.Login.Federation == nil {
				v.add(p+".users_file", "required when a client has the %s grant (client %q), unless login.federation is set", GrantAuthorizationCode, cl.ClientID)
			}
		} else if len(cl.RedirectURIs) > 0 {
			v.add(cp+".redirect_uris", "only for clients with the %s grant", GrantAuthorizationCode)
		}
		if slices.Contains(cl.GrantTypes, GrantRefreshToken) && !slices.Contains(cl.GrantTypes, GrantAuthorizationCode) {
			v.add(cp+".grant_types", "%s needs %s (refresh tokens are issued with authorization codes)", GrantRefreshToken, GrantAuthorizationCode)
		}
		for j, u := range cl.RedirectURIs {
			if msg := checkRedirectURI(u); msg != "" {
				v.add(fmt.Sprintf("%s.redirect_uris[%d]", cp, j), "%s", msg)
			}
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			if msg := checkRedirectURI(u); msg != "" {
				v.add(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", cp, j), "%s", msg)
			}
		}
		for j, s := range cl.Scopes {
			if s == "" || strings.ContainsAny(s, " \"\\") || slices.Contains(cl.Scopes[:j], s) {
				v.add(fmt.Sprintf("%s.scopes[%d]", cp, j), "invalid or repeated scope %q (RFC 6749 §3.3)", s)
			}
		}
	}
}

// checkRedirectURI says what is wrong with a registered redirect URI:
// absolute, no fragment (RFC 6749 §3.1.2), https or http on loopback
// (RFC 8252 §7.3), or a private-use scheme of a native app (RFC 8252
// §7.1, with a dot: com.example.app:/cb).
func checkRedirectURI(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs():
		return fmt.Sprintf("%q is not an absolute URI", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Sprintf("%q has a fragment (RFC 6749 §3.1.2)", s)
	case u.Scheme == "https":
		if u.Host == "" {
			return fmt.Sprintf("%q has no host", s)
		}
	case u.Scheme == "http":
		if !loopbackHost(u.Hostname()) {
			return fmt.Sprintf("%q: http redirect URIs only on loopback (use https)", s)
		}
	case !strings.Contains(u.Scheme, "."):
		return fmt.Sprintf("%q: want https, http on loopback or a reverse-domain private-use scheme (RFC 8252 §7.1)", s)
	}
	return ""
}

func loopbackHost(h string) bool {
	return h == "localhost" || h == "127.0.0.1" || h == "::1" || strings.HasPrefix(h, "127.")
}

func validateFederation(v *validator, p string, f *AuthServerFederation) {
	if f.Issuer == "" {
		v.add(p+".issuer", "required field is missing")
	} else if u, err := url.Parse(f.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		v.add(p+".issuer", "issuer %q must be an absolute http(s) URL without query, fragment or user info", f.Issuer)
	} else if u.Scheme == "http" && !f.AllowHTTP && !loopbackHost(u.Hostname()) {
		v.add(p+".issuer", "an http upstream issuer sends the client secret and codes in clear text: use https, or allow_http: true")
	}
	if f.ClientID == "" {
		v.add(p+".client_id", "required field is missing")
	}
	if f.RedirectPath != "" && (!strings.HasPrefix(f.RedirectPath, "/") || strings.ContainsAny(f.RedirectPath, "?#") || strings.Contains(f.RedirectPath, "//")) {
		v.add(p+".redirect_path", "must be a path starting with / without query or fragment, got %q", f.RedirectPath)
	}
	if len(f.Scopes) > 0 && !slices.Contains(f.Scopes, "openid") {
		v.add(p+".scopes", "must include openid")
	}
	for i, s := range f.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			v.add(fmt.Sprintf("%s.scopes[%d]", p, i), "invalid scope %q", s)
		}
	}
	if len(f.ButtonLabel) > 100 {
		v.add(p+".button_label", "must be at most 100 characters")
	}
}
