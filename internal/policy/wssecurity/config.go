package wssecurity

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pemfile"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// Config is the wssecurity policy's settings.
//
//	wssecurity:
//	  timestamp: {required: true, max_age: 300s, future_skew: 60s}
//	  username_token:
//	    digest: true
//	    text: tls_only
//	    users:
//	      - {username: alice, password: {env: ALICE_PASSWORD}}
//	    users_file: users.txt
//	  x509:
//	    trust: {ca_file: clients-ca.pem}
//	    subjects: ["CN=billing,O=Example"]
//	  signature:
//	    required_parts: [Body, Timestamp]
//	    algorithms: [rsa-sha256, ecdsa-sha256, sha256]
//	  require: any
//	  keep_security_header: false
//
// See docs/policies/wssecurity.md for every field.
type Config struct {
	// Timestamp sets the freshness rules for wsu:Timestamp and for the
	// Created of a UsernameToken.
	Timestamp TimestampConfig `yaml:"timestamp"`
	// UsernameToken enables UsernameToken authentication. Absent: a
	// message carrying a UsernameToken is refused.
	UsernameToken *UsernameTokenConfig `yaml:"username_token"`
	// X509 enables X.509 token signatures. Absent: a message carrying a
	// Signature is refused.
	X509 *X509Config `yaml:"x509"`
	// Signature sets what a signature must cover and how it may be made.
	Signature SignatureConfig `yaml:"signature"`
	// Require says what must authenticate a message: any (one of the
	// configured mechanisms), username_token, x509, or all (each
	// configured one). Default any.
	Require string `yaml:"require"`
	// Actors lists further SOAP 1.1 actor / SOAP 1.2 role URIs the
	// gateway acts as. A Security header without actor, or for the
	// ultimate receiver or "next", is always the gateway's.
	Actors []string `yaml:"actors"`
	// Encryption enables the decryption of XML Encryption (EncryptedKey,
	// EncryptedData) addressed to the gateway. Absent: a Security header
	// holding encryption elements is refused. See EncryptionConfig.
	Encryption *EncryptionConfig `yaml:"encryption"`
	// KeepSecurityHeader forwards the processed Security header upstream.
	// Default false: it is removed, so the service sees no credentials.
	KeepSecurityHeader bool `yaml:"keep_security_header"`
	// MaxBodyBytes refuses larger messages before parsing. Default 1MiB,
	// at most 64MiB.
	MaxBodyBytes config.ByteSize `yaml:"max_body_bytes"`
}

// TimestampConfig sets freshness.
type TimestampConfig struct {
	// Required refuses messages without a wsu:Timestamp. Default true.
	Required *bool `yaml:"required"`
	// MaxAge is the oldest a Created may be. Default 300s, between 1s and
	// 1h. It is also how long UsernameToken nonces are remembered.
	MaxAge config.Duration `yaml:"max_age"`
	// FutureSkew is how far in the future a Created may be (clock skew).
	// Absent: 60s; 0s for none; at most 5m.
	FutureSkew *config.Duration `yaml:"future_skew"`
}

// UsernameTokenConfig sets UsernameToken authentication.
type UsernameTokenConfig struct {
	// Digest accepts PasswordDigest tokens. Default true.
	Digest *bool `yaml:"digest"`
	// Text says when PasswordText tokens are accepted: tls_only (the
	// default: only on TLS connections), allowed, or forbidden.
	Text string `yaml:"text"`
	// Users are the accepted users.
	Users []UserConfig `yaml:"users"`
	// UsersFile is a file of further users, one "username:password" a
	// line ('#' starts a comment line; a password "{base64}..." is the
	// base64 of its bytes). Relative to the config file. Read at load.
	UsersFile string `yaml:"users_file"`
	// RequireNonce refuses PasswordText tokens without Nonce and Created,
	// so that they, too, cannot be replayed. Default false.
	RequireNonce bool `yaml:"require_nonce"`
}

// UserConfig is one user.
type UserConfig struct {
	// Username is the wsse:Username. Required.
	Username string `yaml:"username"`
	// Password is what the client uses as the password: the clear
	// password, or the equivalent a client is configured with (WSS4J's
	// "encoded passwords" use Base64(SHA-1(password))); a digest is made
	// from it, so a one-way hash of it cannot be stored. Required.
	Password config.Secret `yaml:"password"`
	// Encoding is how Password is written: "" (its UTF-8 bytes) or
	// "base64" (the base64 of the bytes, for binary equivalents).
	Encoding string `yaml:"encoding"`
}

// X509Config sets X.509 token signatures.
type X509Config struct {
	// Trust is the trust store certificates are validated against.
	// Required.
	Trust TrustConfig `yaml:"trust"`
	// Subjects, when set, pins the signer: its certificate subject, as
	// RFC 2253 ("CN=billing,O=Example", most specific first), must be
	// one of these.
	Subjects []string `yaml:"subjects"`
	// Certificates are PEM files of signer certificates known in
	// advance, for messages that reference their certificate by
	// KeyIdentifier or X509IssuerSerial instead of carrying it. They are
	// validated against Trust like carried ones.
	Certificates []string `yaml:"certificates"`
}

// TrustConfig is a trust store.
type TrustConfig struct {
	// CAFile holds the PEM CA certificates a signer's chain must end in.
	// Relative to the config file. Required.
	CAFile string `yaml:"ca_file"`
}

// SignatureConfig sets signature rules.
type SignatureConfig struct {
	// RequiredParts must be covered by the signature: Body, Timestamp,
	// UsernameToken, or a header block by its QName in Clark notation
	// ("{urn:example:ns}Account"). Body is always required when a
	// signature is; the others when present in the message. Default
	// [Body, Timestamp].
	RequiredParts []string `yaml:"required_parts"`
	// Algorithms are the permitted signature (rsa-sha256, ecdsa-sha256,
	// rsa-sha1) and digest (sha256, sha1) algorithms. Default
	// [rsa-sha256, ecdsa-sha256, sha256]: SHA-1 only when listed.
	Algorithms []string `yaml:"algorithms"`
	// MaxReferences bounds the references of one signature. Default 16,
	// at most 64.
	MaxReferences int `yaml:"max_references"`
	// ReplayCache remembers what every accepted signed message's
	// signature covers (the SHA-256 of its canonical SignedInfo, which
	// holds the digests of Body and Timestamp) for the freshness window,
	// max_age + future_skew, in the shared store, and refuses a message
	// whose signature covers the same again, however its SignatureValue
	// is spelled. The key space is shared with the saml policy's message
	// signatures and the STS. Default true.
	ReplayCache *bool `yaml:"replay_cache"`
}

// Require values.
const (
	requireAny = iota
	requireUsername
	requireX509
	requireAll
)

// Text password modes.
const (
	textTLSOnly = iota
	textAllowed
	textForbidden
)

const (
	defaultMaxAge     = 300 * time.Second
	defaultFutureSkew = 60 * time.Second
	defaultMaxBody    = 1 << 20
	maxMaxBody        = 64 << 20
)

// settings is a validated Config with defaults applied and files read.
type settings struct {
	tsRequired   bool
	maxAge       time.Duration
	futureSkew   time.Duration
	ut           *utSettings
	x509         *x509Settings
	parts        parts
	algs         xmlsig.Algorithms
	maxRefs      int
	sigReplay    bool
	require      int
	actors       map[string]bool
	keepHeader   bool
	maxBodyBytes int64
	enc          *encSettings
}

type utSettings struct {
	digest       bool
	text         int
	requireNonce bool
	users        map[string][]byte
}

type x509Settings struct {
	roots    *x509.CertPool
	subjects map[string]bool
	known    []*x509.Certificate
}

// parts are the signature's required parts.
type parts struct {
	body, timestamp, usernameToken bool
	headers                        []qname
}

type qname struct{ space, local string }

// decode builds the policy's settings from cfg in the steps of the unit
// lifecycle: decodeConfig (strict), validate (checks only, every
// independent problem at once), provision (defaults, files, keys, the
// keys in st, the gateway's store).
func decode(cfg *config.Node, st store.Store) (*settings, error) {
	c, err := decodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.validate(cfg); err != nil {
		return nil, err
	}
	return c.provision(cfg, st)
}

// decodeConfig decodes cfg strictly (an unknown field is an error).
func decodeConfig(cfg *config.Node) (*Config, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks c, reporting every independent problem at its place in
// cfg. It does no I/O: files and the store are read by provision.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Timestamp.MaxAge != 0 {
		if d := c.Timestamp.MaxAge.Std(); d < time.Second || d > time.Hour {
			p.Errorf(cfg, "timestamp.max_age", "wssecurity: max_age must be between 1s and 1h, got %s", d)
		}
	}
	if c.Timestamp.FutureSkew != nil {
		if d := c.Timestamp.FutureSkew.Std(); d < 0 || d > 5*time.Minute {
			p.Errorf(cfg, "timestamp.future_skew", "wssecurity: future_skew must be between 0s and 5m, got %s", d)
		}
	}
	if c.MaxBodyBytes != 0 && (c.MaxBodyBytes < 1024 || c.MaxBodyBytes > maxMaxBody) {
		p.Errorf(cfg, "max_body_bytes", "wssecurity: max_body_bytes must be between 1KiB and 64MiB")
	}
	for i, a := range c.Actors {
		if a == "" {
			p.Errorf(cfg, config.Index("actors", i), "wssecurity: empty actor")
		}
	}
	if c.UsernameToken == nil && c.X509 == nil {
		p.Errorf(cfg, "", "wssecurity: configure username_token, x509 or both")
	}
	if c.UsernameToken != nil {
		c.UsernameToken.validate(&p, cfg)
	}
	if c.X509 != nil {
		c.X509.validate(&p, cfg)
	}
	switch c.Require {
	case "", "any", "all":
	case "username_token":
		if c.UsernameToken == nil {
			p.Errorf(cfg, "require", "wssecurity: require username_token needs username_token")
		}
	case "x509":
		if c.X509 == nil {
			p.Errorf(cfg, "require", "wssecurity: require x509 needs x509")
		}
	default:
		p.Errorf(cfg, "require", "wssecurity: require must be any, username_token, x509 or all, got %q", c.Require)
	}
	c.Signature.validate(&p, cfg)
	if c.Encryption != nil {
		c.Encryption.validate(&p, cfg)
	}
	return p.Err()
}

func (u *UsernameTokenConfig) validate(p *config.Problems, cfg *config.Node) {
	text, ok := textModes[u.Text]
	if !ok {
		p.Errorf(cfg, "username_token.text", "wssecurity: text must be tls_only, allowed or forbidden, got %q", u.Text)
	}
	if u.Digest != nil && !*u.Digest && ok && text == textForbidden {
		p.Errorf(cfg, "username_token", "wssecurity: digest false and text forbidden accept no UsernameToken at all")
	}
	seen := map[string]bool{}
	for i, uc := range u.Users {
		field := config.Index("username_token.users", i)
		if err := checkUsername(uc.Username); err != nil {
			p.Errorf(cfg, field+".username", "wssecurity: %v", err)
		} else if seen[uc.Username] {
			p.Errorf(cfg, field+".username", "wssecurity: user %q is listed twice", uc.Username)
		}
		seen[uc.Username] = true
		if uc.Password.Value() == "" {
			p.Errorf(cfg, field+".password", "wssecurity: password is required")
			continue
		}
		switch uc.Encoding {
		case "":
		case "base64":
			if b, err := base64.StdEncoding.DecodeString(uc.Password.Value()); err != nil || len(b) == 0 {
				p.Errorf(cfg, field+".password", "wssecurity: encoding base64: the password is not base64")
			}
		default:
			p.Errorf(cfg, field+".encoding", "wssecurity: encoding must be empty or base64, got %q", uc.Encoding)
		}
	}
	if len(u.Users) == 0 && u.UsersFile == "" {
		p.Errorf(cfg, "username_token", "wssecurity: username_token needs users or users_file")
	}
}

var textModes = map[string]int{"": textTLSOnly, "tls_only": textTLSOnly, "allowed": textAllowed, "forbidden": textForbidden}

var requireModes = map[string]int{"": requireAny, "any": requireAny, "username_token": requireUsername, "x509": requireX509, "all": requireAll}

func (x *X509Config) validate(p *config.Problems, cfg *config.Node) {
	if x.Trust.CAFile == "" {
		p.Errorf(cfg, "x509.trust", "wssecurity: x509 needs trust.ca_file")
	}
	for i, s := range x.Subjects {
		if s == "" {
			p.Errorf(cfg, config.Index("x509.subjects", i), "wssecurity: empty subject")
		}
	}
}

func (c *SignatureConfig) validate(p *config.Problems, cfg *config.Node) {
	for i, part := range c.RequiredParts {
		switch part {
		case "Body", "Timestamp", "UsernameToken":
		default:
			if _, ok := parseClark(part); !ok {
				p.Errorf(cfg, config.Index("signature.required_parts", i), "wssecurity: %q is not Body, Timestamp, UsernameToken or a {namespace}Name header QName", part)
			}
		}
	}
	if c.Algorithms != nil {
		var algs xmlsig.Algorithms
		bad := false
		for i, name := range c.Algorithms {
			a, err := xmlsig.ParseAlgorithm(name)
			if err != nil {
				p.Errorf(cfg, config.Index("signature.algorithms", i), "wssecurity: %v", err)
				bad = true
			}
			algs |= a
		}
		sigs := xmlsig.SignatureRSASHA1 | xmlsig.SignatureRSASHA256 | xmlsig.SignatureECDSASHA256
		if !bad && (algs&sigs == 0 || algs&^sigs == 0) {
			p.Errorf(cfg, "signature.algorithms", "wssecurity: algorithms needs at least one signature algorithm and one digest (sha256 or sha1)")
		}
	}
	if c.MaxReferences != 0 && (c.MaxReferences < 1 || c.MaxReferences > 64) {
		p.Errorf(cfg, "signature.max_references", "wssecurity: max_references must be between 1 and 64")
	}
}

// provision builds the settings of a validated c: defaults, the users
// file, the trust store and certificates, the decryption keys (files and
// the store st), the upstream's certificate.
func (c *Config) provision(cfg *config.Node, st store.Store) (*settings, error) {
	s := &settings{
		tsRequired:   c.Timestamp.Required == nil || *c.Timestamp.Required,
		maxAge:       defaultMaxAge,
		futureSkew:   defaultFutureSkew,
		keepHeader:   c.KeepSecurityHeader,
		maxBodyBytes: defaultMaxBody,
		maxRefs:      cmp.Or(c.Signature.MaxReferences, 16),
		algs:         xmlsig.DefaultAlgorithms,
		actors:       map[string]bool{},
		require:      requireModes[c.Require],
		sigReplay:    c.Signature.ReplayCache == nil || *c.Signature.ReplayCache,
	}
	if c.Timestamp.MaxAge != 0 {
		s.maxAge = c.Timestamp.MaxAge.Std()
	}
	if c.Timestamp.FutureSkew != nil {
		s.futureSkew = c.Timestamp.FutureSkew.Std()
	}
	if c.MaxBodyBytes != 0 {
		s.maxBodyBytes = int64(c.MaxBodyBytes)
	}
	for _, a := range c.Actors {
		s.actors[a] = true
	}
	var err error
	if c.UsernameToken != nil {
		if s.ut, err = c.UsernameToken.provision(cfg); err != nil {
			return nil, err
		}
	}
	if c.X509 != nil {
		if s.x509, err = c.X509.provision(cfg); err != nil {
			return nil, err
		}
	}
	c.Signature.provision(s)
	if c.Encryption != nil {
		if s.enc, err = c.Encryption.provision(cfg, st, s.maxBodyBytes); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (c *UsernameTokenConfig) provision(cfg *config.Node) (*utSettings, error) {
	u := &utSettings{
		digest:       c.Digest == nil || *c.Digest,
		text:         textModes[c.Text],
		users:        map[string][]byte{},
		requireNonce: c.RequireNonce,
	}
	for _, uc := range c.Users {
		pw := []byte(uc.Password.Value())
		if uc.Encoding == "base64" {
			pw, _ = base64.StdEncoding.DecodeString(uc.Password.Value()) // validated
		}
		u.users[uc.Username] = pw
	}
	if c.UsersFile != "" {
		if err := readUsersFile(cfg.ResolvePath(c.UsersFile), u.users); err != nil {
			return nil, cfg.Errorf("username_token.users_file", "%v", err)
		}
	}
	if len(u.users) == 0 {
		return nil, cfg.Errorf("username_token", "wssecurity: username_token needs users or users_file")
	}
	return u, nil
}

// parseClark parses "{namespace}Local".
func parseClark(s string) (qname, bool) {
	rest, ok := strings.CutPrefix(s, "{")
	if !ok {
		return qname{}, false
	}
	space, local, ok := strings.Cut(rest, "}")
	if !ok || space == "" || local == "" || strings.ContainsAny(local, ":{} ") {
		return qname{}, false
	}
	return qname{space, local}, true
}

func (c *X509Config) provision(cfg *config.Node) (*x509Settings, error) {
	x := &x509Settings{subjects: map[string]bool{}}
	cas, err := pemfile.Certificates(cfg.ResolvePath(c.Trust.CAFile))
	if err != nil {
		return nil, cfg.Errorf("x509.trust.ca_file", "%v", err)
	}
	x.roots = x509.NewCertPool()
	for _, ca := range cas {
		x.roots.AddCert(ca)
	}
	for _, s := range c.Subjects {
		x.subjects[s] = true
	}
	for i, f := range c.Certificates {
		certs, err := pemfile.Certificates(cfg.ResolvePath(f))
		if err != nil {
			return nil, cfg.Errorf(config.Index("x509.certificates", i), "%v", err)
		}
		x.known = append(x.known, certs...)
	}
	return x, nil
}

func (c *SignatureConfig) provision(s *settings) {
	if c.RequiredParts == nil {
		s.parts = parts{body: true, timestamp: true}
	}
	for _, part := range c.RequiredParts {
		switch part {
		case "Body":
			s.parts.body = true
		case "Timestamp":
			s.parts.timestamp = true
		case "UsernameToken":
			s.parts.usernameToken = true
		default:
			q, _ := parseClark(part) // validated
			s.parts.headers = append(s.parts.headers, q)
		}
	}
	// The Body is what the service acts on: a signature that leaves it
	// out proves nothing about the request.
	s.parts.body = true
	if c.Algorithms != nil {
		s.algs = 0
		for _, name := range c.Algorithms {
			a, _ := xmlsig.ParseAlgorithm(name) // validated
			s.algs |= a
		}
	}
}
func checkUsername(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("username is required")
	case len(name) > 256:
		return fmt.Errorf("username longer than 256 bytes")
	case strings.ContainsAny(name, ":\r\n"):
		return fmt.Errorf("username %q contains ':' or a line break", name)
	}
	return nil
}

// readUsersFile adds the users of an htpasswd-like file to users.
func readUsersFile(path string, users map[string][]byte) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("wssecurity: users file: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		name, pw, ok := strings.Cut(line, ":")
		if !ok || pw == "" {
			return fmt.Errorf("wssecurity: users file %s:%d: want username:password", path, n)
		}
		if err := checkUsername(name); err != nil {
			return fmt.Errorf("wssecurity: users file %s:%d: %v", path, n, err)
		}
		if strings.HasPrefix(pw, "$") {
			// A crypt/bcrypt hash: usable for neither digest nor, at a
			// bcrypt's cost per request, text passwords.
			return fmt.Errorf("wssecurity: users file %s:%d: password hashes are not supported: a digest needs the password or its equivalent", path, n)
		}
		p := []byte(pw)
		if enc, ok := strings.CutPrefix(pw, "{base64}"); ok {
			if p, err = base64.StdEncoding.DecodeString(enc); err != nil || len(p) == 0 {
				return fmt.Errorf("wssecurity: users file %s:%d: bad {base64} password", path, n)
			}
		}
		if _, dup := users[name]; dup {
			return fmt.Errorf("wssecurity: users file %s:%d: user %q is defined twice", path, n, name)
		}
		users[name] = p
	}
	return sc.Err()
}
