package authserver

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pemfile"
	"github.com/gatehouse/gatehouse/internal/users"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Defaults of the configuration (see config.AuthorizationServer).
const (
	DefaultAlgorithm         = "ES256"
	DefaultKeyRotation       = 30 * 24 * time.Hour
	DefaultTokenLifetime     = time.Hour
	DefaultFailuresPerIP     = 20
	DefaultFailuresPerClient = 10
)

// settings is a validated config.AuthorizationServer with defaults applied
// and its files read.
type settings struct {
	issuer        string
	prefix        string // the issuer URL's path, "" or "/as"
	alg           string
	kek           []byte // nil: plaintext keys
	rotation      time.Duration
	lifetime      time.Duration
	maxLifetime   time.Duration // the longest lifetime of any client
	audience      []string
	failuresIP    int
	failuresCl    int
	samlIssuers   map[string]*samlIssuer
	samlDecrypter *xmlenc.Decrypter // nil: encrypted assertions refused
	clients       map[string]*client
	clientsSorted []*client
	login         *loginSettings // nil: no end-user login
}

// client is one registered client, ready to authenticate.
type client struct {
	id        string
	secret    secretVerifier // nil: no secret methods
	methods   []string
	jwks      jwk.Set // private_key_jwt
	subjectDN string
	sanDNS    string
	sanURI    string
	scopes    []string
	audience  []string
	grants    []string
	lifetime  time.Duration
	claims    map[string]string // fixed claims of its tokens
	demo      bool
	mayExch   []string // client ids whose tokens it may exchange (may_exchange)
	redirects []string // redirect_uris, exact
	logoutRed []string // post_logout_redirect_uris, exact
}

func (c *client) allows(method string) bool { return slices.Contains(c.methods, method) }

// registeredClaims are the access token claims the server sets itself.
var registeredClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true,
	"jti": true, "client_id": true, "scope": true, "cnf": true, "act": true,
	"auth_time": true, "acr": true, "sid": true,
}

// samlIssuer is a trusted SAML assertion issuer.
type samlIssuer struct {
	issuer   string
	certs    []*x509.Certificate
	audience string
}

// configError places err at field of the authorization_server section.
func configError(cfg *config.Config, field, format string, args ...any) error {
	p := "authorization_server"
	if field != "" {
		p += "." + field
	}
	if cfg == nil {
		return fmt.Errorf("authserver: %s: %s", p, fmt.Sprintf(format, args...))
	}
	return cfg.Errorf(p, format, args...)
}

// newSettings checks what config validation cannot (key sizes, files,
// hashes) and applies defaults. cfg may be nil; it only places errors.
// Relative files are relative to baseDir.
func newSettings(as *config.AuthorizationServer, cfg *config.Config, baseDir string) (*settings, error) {
	if as == nil {
		return nil, errors.New("authserver: no authorization_server config")
	}
	u, err := url.Parse(as.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, configError(cfg, "issuer", "issuer %q must be an absolute http(s) URL", as.Issuer)
	}
	s := &settings{
		issuer:      as.Issuer,
		prefix:      strings.TrimSuffix(u.Path, "/"),
		alg:         cmp.Or(as.Algorithm, DefaultAlgorithm),
		rotation:    cmp.Or(as.KeyRotation.Std(), DefaultKeyRotation),
		lifetime:    cmp.Or(as.TokenLifetime.Std(), DefaultTokenLifetime),
		audience:    as.Audience,
		failuresIP:  cmp.Or(as.Limits.FailuresPerIP, DefaultFailuresPerIP),
		failuresCl:  cmp.Or(as.Limits.FailuresPerClient, DefaultFailuresPerClient),
		samlIssuers: make(map[string]*samlIssuer),
		clients:     make(map[string]*client),
	}
	if len(s.audience) == 0 {
		s.audience = []string{s.issuer}
	}
	switch s.alg {
	case "ES256", "EdDSA", "RS256":
	default:
		return nil, configError(cfg, "algorithm", "invalid algorithm %q (want ES256, EdDSA or RS256)", s.alg)
	}
	if as.KeyEncryptionKey != nil {
		kek, err := parseKEK(as.KeyEncryptionKey.Value())
		if err != nil {
			return nil, configError(cfg, "key_encryption_key", "%v", err)
		}
		s.kek = kek
	} else if !as.InsecurePlaintextKeys {
		return nil, configError(cfg, "key_encryption_key", "required to encrypt the signing keys at rest (or insecure_plaintext_keys: true)")
	}
	s.maxLifetime = s.lifetime
	for i, si := range as.SAMLIssuers {
		field := fmt.Sprintf("saml_issuers[%d]", i)
		certs, err := pemfile.Certificates(resolve(baseDir, si.CertificateFile))
		if err != nil {
			return nil, configError(cfg, field+".certificate_file", "%v", err)
		}
		if _, dup := s.samlIssuers[si.Issuer]; dup {
			return nil, configError(cfg, field+".issuer", "duplicate SAML issuer %q", si.Issuer)
		}
		s.samlIssuers[si.Issuer] = &samlIssuer{issuer: si.Issuer, certs: certs, audience: cmp.Or(si.Audience, s.issuer)}
	}
	if s.samlDecrypter, err = samlDecrypter(as.SAMLDecryptionKeys, cfg, baseDir); err != nil {
		return nil, err
	}
	if len(as.Clients) == 0 {
		return nil, configError(cfg, "clients", "at least one client is required")
	}
	for i := range as.Clients {
		c, err := newClient(&as.Clients[i], s, cfg, fmt.Sprintf("clients[%d]", i), baseDir)
		if err != nil {
			return nil, err
		}
		if _, dup := s.clients[c.id]; dup {
			return nil, configError(cfg, fmt.Sprintf("clients[%d].client_id", i), "duplicate client_id %q", c.id)
		}
		s.clients[c.id] = c
		s.clientsSorted = append(s.clientsSorted, c)
		s.maxLifetime = max(s.maxLifetime, c.lifetime)
	}
	if s.login, err = newLoginSettings(as, s, cfg, baseDir); err != nil {
		return nil, err
	}
	return s, nil
}

func newClient(cc *config.AuthClient, s *settings, cfg *config.Config, field, baseDir string) (*client, error) {
	if cc.ClientID == "" {
		return nil, configError(cfg, field+".client_id", "required field is missing")
	}
	c := &client{
		id:        cc.ClientID,
		methods:   cc.AuthMethods,
		subjectDN: cc.TLSSubjectDN,
		sanDNS:    cc.TLSSANDNS,
		sanURI:    cc.TLSSANURI,
		scopes:    cc.Scopes,
		audience:  cc.Audience,
		grants:    cc.GrantTypes,
		lifetime:  cmp.Or(cc.TokenLifetime.Std(), s.lifetime),
		claims:    cc.Claims,
		demo:      cc.Demo,
		mayExch:   cc.MayExchange,
		redirects: cc.RedirectURIs,
		logoutRed: cc.PostLogoutRedirectURIs,
	}
	for i, id := range cc.MayExchange {
		if id == "" {
			return nil, configError(cfg, fmt.Sprintf("%s.may_exchange[%d]", field, i), "empty client id")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cc.Claims)) {
		if registeredClaims[name] || name == "" {
			return nil, configError(cfg, field+".claims."+name, "%q is set by the server and cannot be fixed per client", name)
		}
	}
	if len(c.audience) == 0 {
		c.audience = s.audience
	}
	if len(c.grants) == 0 {
		c.grants = []string{config.GrantClientCredentials}
	}
	var err error
	switch {
	case cc.SecretHash != "" && cc.Secret != nil:
		return nil, configError(cfg, field+".secret", "give secret_hash or secret, not both")
	case cc.SecretHash != "":
		if c.secret, err = parseSecretHash(cc.SecretHash); err != nil {
			return nil, configError(cfg, field+".secret_hash", "%v", err)
		}
	case cc.Secret != nil:
		if len(cc.Secret.Value()) < 16 {
			return nil, configError(cfg, field+".secret", "a client secret needs at least 16 characters")
		}
		c.secret = plainSecret(sha256.Sum256([]byte(cc.Secret.Value())))
	}
	if cc.JWKSFile != "" {
		set, err := readClientJWKS(resolve(baseDir, cc.JWKSFile))
		if err != nil {
			return nil, configError(cfg, field+".jwks_file", "%v", err)
		}
		c.jwks = set
	}
	hasTLS := c.subjectDN != "" || c.sanDNS != "" || c.sanURI != ""
	if slices.Contains(c.methods, config.AuthNone) {
		if len(c.methods) > 1 || c.secret != nil || c.jwks != nil || hasTLS {
			return nil, configError(cfg, field+".auth_methods", "a public client (none) has no credentials and no other method")
		}
		for i, g := range c.grants {
			if g != config.GrantAuthorizationCode && g != config.GrantRefreshToken {
				return nil, configError(cfg, fmt.Sprintf("%s.grant_types[%d]", field, i), "a public client may use only authorization_code and refresh_token")
			}
		}
	}
	if len(c.methods) == 0 {
		if c.secret != nil {
			c.methods = append(c.methods, config.AuthSecretBasic, config.AuthSecretPost)
		}
		if c.jwks != nil {
			c.methods = append(c.methods, config.AuthPrivateKeyJWT)
		}
		if hasTLS {
			c.methods = append(c.methods, config.AuthTLSClient)
		}
		if len(c.methods) == 0 {
			return nil, configError(cfg, field, "client %q has no credentials: set secret_hash, secret, jwks_file or a tls_client_auth name", c.id)
		}
	}
	for i, m := range c.methods {
		mf := fmt.Sprintf("%s.auth_methods[%d]", field, i)
		switch m {
		case config.AuthSecretBasic, config.AuthSecretPost:
			if c.secret == nil {
				return nil, configError(cfg, mf, "%s needs secret_hash or secret", m)
			}
		case config.AuthPrivateKeyJWT:
			if c.jwks == nil {
				return nil, configError(cfg, mf, "%s needs jwks_file", m)
			}
		case config.AuthNone:
		case config.AuthTLSClient:
			if !hasTLS {
				return nil, configError(cfg, mf, "%s needs tls_client_auth_subject_dn, tls_client_auth_san_dns or tls_client_auth_san_uri", m)
			}
		default:
			return nil, configError(cfg, mf, "unknown method %q", m)
		}
	}
	for i, a := range c.audience {
		if a == "" {
			return nil, configError(cfg, fmt.Sprintf("%s.audience[%d]", field, i), "empty audience")
		}
	}
	return c, nil
}

func resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// parseKEK decodes a 32-byte key-encryption key from base64 (either
// alphabet, padded or not) or hex.
func parseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("the key encryption key is %d bytes, want 32 (AES-256)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("the key encryption key is neither base64 nor 64 hex digits (make one: openssl rand -base64 32)")
}

// readClientJWKS reads a client's public keys for private_key_jwt. Private
// and symmetric keys are refused: the file is the client's public half, and
// client_secret_jwt (HMAC) is not offered.
func readClientJWKS(path string) (jwk.Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("%s: the JWK Set is empty", path)
	}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if k.KeyType() == jwa.OctetSeq() {
			return nil, fmt.Errorf("%s: symmetric (oct) keys are not accepted; give the client's public keys", path)
		}
		if priv, _ := jwk.IsPrivateKey(k); priv {
			return nil, fmt.Errorf("%s: key %d is a private key; give only the public half", path, i)
		}
	}
	return set, nil
}

// A secretVerifier checks a presented client secret in time independent of
// where it differs.
type secretVerifier interface {
	verify(secret string) bool
}

// plainSecret is the SHA-256 of a secret known in full (from the
// environment or a file); comparing digests makes the comparison's time
// independent of both lengths.
type plainSecret [32]byte

func (p plainSecret) verify(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], p[:]) == 1
}

// sha256Secret is "sha256:HEX": fit only for generated, high-entropy
// secrets, which a fast hash protects well enough.
type sha256Secret [32]byte

func (h sha256Secret) verify(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], h[:]) == 1
}

// argonSecret is an argon2id hash in PHC form, for secrets people choose:
// the users file's hash (internal/users), with its parameter limits and
// its bound on concurrent checks.
type argonSecret struct{ *users.Hash }

func (a argonSecret) verify(secret string) bool { return a.Verify(secret) }

func parseSecretHash(s string) (secretVerifier, error) {
	if h, ok := strings.CutPrefix(s, "sha256:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return nil, errors.New("sha256: needs 64 hex digits")
		}
		return sha256Secret(b), nil
	}
	if strings.HasPrefix(s, "$argon2id$") {
		h, err := users.ParseHash(s)
		if err != nil {
			return nil, fmt.Errorf("argon2id hash: %w", err)
		}
		return argonSecret{h}, nil
	}
	return nil, errors.New(`want "sha256:HEX" or an argon2id PHC string ("$argon2id$v=19$..."); make one with gatehouse clients hash`)
}

// HashSecret returns the argon2id PHC string of secret with the OWASP
// minimum parameters (19 MiB, 2 passes, 1 thread), for secret_hash.
func HashSecret(secret string) (string, error) {
	h, err := users.HashPassword(secret)
	if err != nil {
		return "", fmt.Errorf("authserver: %w", err)
	}
	return h, nil
}
