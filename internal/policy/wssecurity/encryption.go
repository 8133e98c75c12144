package wssecurity

import (
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pemfile"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/wsse"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// EncryptionConfig sets the decryption of XML Encryption in messages
// addressed to the gateway (WSS 1.1 §9).
//
//	encryption:
//	  keys:
//	    - {certificate: gateway-enc.pem, key: {file: gateway-enc.key}}
//	    - {key: {env: GATEWAY_ENC_PEM}}   # key and certificate PEM
//	    - {store: gateway-enc-2}          # the gateway's store
//	  key_encryption_key: {env: GATEHOUSE_KEK}
//	  required_parts: [Body, UsernameToken]
//	  allow_cbc: false
type EncryptionConfig struct {
	// Keys are the gateway's RSA key transport keys (2048 bits or more),
	// each from a file, the environment or the gateway's store (see
	// EncryptionKeyConfig). An EncryptedKey naming a certificate uses its
	// key; one naming none uses the first. At least one key or wrap key
	// is required.
	Keys []EncryptionKeyConfig `yaml:"keys"`
	// WrapKeys are symmetric key-encryption keys for EncryptedKeys made
	// with kw-aes128/192/256, found by the ds:KeyName the message gives.
	WrapKeys []WrapKeyConfig `yaml:"wrap_keys"`
	// RequiredParts must arrive encrypted: Body (its content),
	// UsernameToken and Signature (when present), or a header block by
	// its Clark QName. Default none.
	RequiredParts []string `yaml:"required_parts"`
	// AllowCBC accepts AES-CBC content encryption, and then only when a
	// signature verified before decryption covers the ciphertext
	// (encrypt-then-sign). Default false: AES-GCM only.
	AllowCBC bool `yaml:"allow_cbc"`
	// KeyCache is how many RSA-unwrapped EncryptedKeys are remembered (by
	// the SHA-256 of their ciphertext and parameters, for 10 minutes), so
	// that a client sending the same EncryptedKey with many messages costs
	// one RSA private-key operation. Only keys that unwrapped are
	// remembered. Default 1024; 0 turns it off; at most 65536.
	KeyCache *int `yaml:"key_cache"`
	// KeyEncryptionKey opens the keys read from the store (Keys[i].Store):
	// 32 bytes, base64 or 64 hex digits. Required with such keys.
	KeyEncryptionKey *config.Secret `yaml:"key_encryption_key"`
	// Forward says what the upstream receives: decrypted (the default),
	// or reencrypt: the parts that arrived encrypted (the Body's content,
	// header blocks, and the Security header's children when it is kept)
	// encrypted again, after the whole chain has seen the plaintext, to
	// UpstreamCertificate with a fresh AES-256-GCM key a message.
	Forward string `yaml:"forward"`
	// UpstreamCertificate is the PEM certificate file (RSA, 2048 bits or
	// more) the upstream decrypts with; relative to the config file.
	// Required with forward reencrypt, refused without.
	UpstreamCertificate string `yaml:"upstream_certificate"`
	// UpstreamKeyTransport is how the key travels to the upstream:
	// rsa-oaep-mgf1p (RSA-OAEP, SHA-1 digest and MGF1: the default, read
	// by every WS-Security stack) or rsa-oaep (XML Encryption 1.1, SHA-256
	// digest and MGF1-SHA256).
	UpstreamKeyTransport string `yaml:"upstream_key_transport"`
}

// EncryptionKeyConfig is one key transport key, from one of three
// places: a certificate file and a private key (a secret: inline,
// {env: NAME} or {file: PATH}); a private key secret whose PEM holds the
// certificate too; or the gateway's store, by name (a key put there with
// wsse.PutEncryptionKey, sealed under key_encryption_key, read when the
// config is loaded).
type EncryptionKeyConfig struct {
	Certificate string        `yaml:"certificate"`
	Key         config.Secret `yaml:"key"`
	Store       string        `yaml:"store"`
}

// WrapKeyConfig is one key-wrap key.
type WrapKeyConfig struct {
	// Name is the ds:KeyName messages use for it.
	Name string `yaml:"name"`
	// Key is the base64 of 16, 24 or 32 bytes.
	Key config.Secret `yaml:"key"`
}

// encSettings is a decoded EncryptionConfig.
type encSettings struct {
	dec      *xmlenc.Decrypter
	allowCBC bool
	reenc    *reencSettings
	required struct {
		body, ut, sig bool
		headers       []qname
	}
}

func (c *EncryptionConfig) validate(p *config.Problems, cfg *config.Node) {
	stored := false
	for i, k := range c.Keys {
		field := config.Index("encryption.keys", i)
		switch {
		case k.Store != "":
			stored = true
			if k.Certificate != "" || k.Key.Value() != "" {
				p.Errorf(cfg, field, "wssecurity: a key from the store takes neither certificate nor key")
			} else if err := wsse.CheckKeyName(k.Store); err != nil {
				p.Errorf(cfg, field+".store", "wssecurity: %v", err)
			}
		case k.Key.Value() == "":
			p.Errorf(cfg, field, "wssecurity: an encryption key needs certificate and key, or store")
		}
	}
	if stored && c.KeyEncryptionKey == nil {
		p.Errorf(cfg, "encryption.key_encryption_key", "wssecurity: keys from the store need key_encryption_key")
	}
	if c.KeyEncryptionKey != nil {
		if !stored {
			p.Errorf(cfg, "encryption.key_encryption_key", "wssecurity: key_encryption_key is for keys from the store, and none is")
		} else if _, err := wsse.ParseKEK(c.KeyEncryptionKey.Value()); err != nil {
			p.Errorf(cfg, "encryption.key_encryption_key", "wssecurity: %v", err)
		}
	}
	names := map[string]bool{}
	for i, w := range c.WrapKeys {
		field := config.Index("encryption.wrap_keys", i)
		if w.Name == "" {
			p.Errorf(cfg, field+".name", "wssecurity: a wrap key needs a name")
		} else if names[w.Name] {
			p.Errorf(cfg, field+".name", "wssecurity: wrap key %q is listed twice", w.Name)
		}
		names[w.Name] = true
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(w.Key.Value()))
		if err != nil {
			p.Errorf(cfg, field+".key", "wssecurity: the wrap key is not base64")
		} else if n := len(b); n != 16 && n != 24 && n != 32 {
			p.Errorf(cfg, field+".key", "wssecurity: the wrap key is %d bytes, not 16, 24 or 32", n)
		}
	}
	if len(c.Keys) == 0 && len(c.WrapKeys) == 0 {
		p.Errorf(cfg, "encryption", "wssecurity: xmlenc: no keys")
	}
	if c.KeyCache != nil && (*c.KeyCache < 0 || *c.KeyCache > 65536) {
		p.Errorf(cfg, "encryption.key_cache", "wssecurity: key_cache must be between 0 and 65536")
	}
	for i, part := range c.RequiredParts {
		switch part {
		case "Body", "UsernameToken", "Signature":
		default:
			if _, ok := parseClark(part); !ok {
				p.Errorf(cfg, config.Index("encryption.required_parts", i), "wssecurity: %q is not Body, UsernameToken, Signature or a {namespace}Name header QName", part)
			}
		}
	}
	switch c.Forward {
	case "", forwardDecrypted:
		if c.UpstreamCertificate != "" {
			p.Errorf(cfg, "encryption.upstream_certificate", "wssecurity: upstream_certificate needs forward: reencrypt")
		}
		if c.UpstreamKeyTransport != "" {
			p.Errorf(cfg, "encryption.upstream_key_transport", "wssecurity: upstream_key_transport needs forward: reencrypt")
		}
	case forwardReencrypt:
		if c.UpstreamCertificate == "" {
			p.Errorf(cfg, "encryption.forward", "wssecurity: forward reencrypt needs upstream_certificate")
		}
		if _, ok := upstreamTransports[cmp.Or(c.UpstreamKeyTransport, "rsa-oaep-mgf1p")]; !ok {
			p.Errorf(cfg, "encryption.upstream_key_transport", "wssecurity: upstream_key_transport must be rsa-oaep-mgf1p or rsa-oaep, got %q", c.UpstreamKeyTransport)
		}
	default:
		p.Errorf(cfg, "encryption.forward", "wssecurity: forward must be decrypted or reencrypt, got %q", c.Forward)
	}
}

// storeTimeout bounds the reading of keys from the store at load.
const storeTimeout = 10 * time.Second

func (c *EncryptionConfig) provision(cfg *config.Node, st store.Store, maxBody int64) (*encSettings, error) {
	e := &encSettings{allowCBC: c.AllowCBC}
	keys := xmlenc.Keys{Symmetric: map[string][]byte{}}
	var kek []byte
	if c.KeyEncryptionKey != nil {
		kek, _ = wsse.ParseKEK(c.KeyEncryptionKey.Value()) // validated
	}
	for i, k := range c.Keys {
		field := config.Index("encryption.keys", i)
		var rk xmlenc.RSAKey
		var err error
		switch {
		case k.Store != "":
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			rk.Key, rk.Cert, err = wsse.LoadEncryptionKey(ctx, st, k.Store, kek)
			cancel()
			if err != nil {
				return nil, cfg.Errorf(field+".store", "wssecurity: %v", err)
			}
		case k.Certificate == "":
			// The key's PEM holds its certificate too ({env: NAME} for
			// deployments without files).
			rk, err = xmlenc.ParseRSAKey([]byte(k.Key.Value()), []byte(k.Key.Value()))
		default:
			rk, err = xmlenc.LoadRSAKey(cfg.ResolvePath(k.Certificate), []byte(k.Key.Value()))
		}
		if err != nil {
			return nil, cfg.Errorf(field, "wssecurity: %v", err)
		}
		keys.RSA = append(keys.RSA, rk)
	}
	for _, w := range c.WrapKeys {
		keys.Symmetric[w.Name], _ = base64.StdEncoding.DecodeString(strings.TrimSpace(w.Key.Value())) // validated
	}
	lim := xmlscan.DefaultLimits()
	lim.MaxBytes = maxBody
	cache := 1024
	if c.KeyCache != nil {
		cache = *c.KeyCache
	}
	d, err := xmlenc.New(keys, xmlenc.Options{Limits: lim, KeyCache: cache})
	if err != nil {
		return nil, cfg.Errorf("encryption", "wssecurity: %v", err)
	}
	e.dec = d
	for _, part := range c.RequiredParts {
		switch part {
		case "Body":
			e.required.body = true
		case "UsernameToken":
			e.required.ut = true
		case "Signature":
			e.required.sig = true
		default:
			q, _ := parseClark(part) // validated
			e.required.headers = append(e.required.headers, q)
		}
	}
	if c.Forward == forwardReencrypt {
		tr := upstreamTransports[cmp.Or(c.UpstreamKeyTransport, "rsa-oaep-mgf1p")]
		certs, err := pemfile.Certificates(cfg.ResolvePath(c.UpstreamCertificate))
		if err != nil {
			return nil, cfg.Errorf("encryption.upstream_certificate", "wssecurity: %v", err)
		}
		pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
		if !ok || pub.N.BitLen() < 2048 {
			return nil, cfg.Errorf("encryption.upstream_certificate", "wssecurity: the upstream certificate needs an RSA key of 2048 bits or more")
		}
		e.reenc = &reencSettings{pub: pub, thumb: xmlenc.Thumbprint(certs[0]), transport: tr, maxBody: maxBody}
	}
	return e, nil
}

// decFault is the one fault of every decryption failure, whatever the
// cause (padding, tag, key, algorithm, XML after decryption): one code,
// one text, one status, and the cause in the log only.
func decFault(format string, args ...any) *policy.Denial {
	return fault(CodeFailedCheck, format, args...)
}

// earlySig is a signature verified before decryption (encrypt-then-sign):
// what it covers are elements of the ciphertext tree.
type earlySig struct {
	tok     *token
	sig     *xmlsig.Signature
	covered []*etree.Element
}

// isEnc reports whether el is an XML Encryption element of a Security
// header.
func isEnc(el *etree.Element) bool {
	if el.NamespaceURI() != xmlenc.NamespaceXENC {
		return false
	}
	switch el.Tag {
	case "EncryptedKey", "ReferenceList", "EncryptedData":
		return true
	}
	return false
}

// decrypt decrypts the message's EncryptedData (WSS 1.1 §9) in place,
// after parse and before every other check. The order of the Security
// header says the order of the operations: a Signature before every
// encryption element was made last (encrypt-then-sign) and is verified
// first, over the ciphertext; otherwise the message is decrypted first and
// the signature verified over the plaintext as usual. It decrypts what the
// header's EncryptedKey and ReferenceList elements reference, and every
// EncryptedData in the Security header and in the Body. Afterwards the
// IDs are indexed again and the header's tokens collected again, so that
// everything after sees only the plaintext. Every failure is decFault.
func (p *Policy) decrypt(m *message, now time.Time) *policy.Denial {
	e := p.s.enc
	if e == nil {
		return nil
	}
	kids := m.security.ChildElements()
	firstEnc, sigAt := -1, -1
	for i, k := range kids {
		if isEnc(k) && firstEnc < 0 {
			firstEnc = i
		}
		if k == m.signature {
			sigAt = i
		}
	}
	// Targets: referenced first, in reference order, then the rest in
	// document order.
	var targets []*etree.Element
	seen := map[*etree.Element]bool{}
	add := func(el *etree.Element) *policy.Denial {
		if isEncryptedHeader(el) {
			// WSS 1.1 §9.3: a reference may name the EncryptedHeader;
			// what is decrypted is its one EncryptedData.
			kids := el.ChildElements()
			if len(kids) != 1 {
				return decFault("EncryptedHeader with %d children, want one EncryptedData", len(kids))
			}
			el = kids[0]
		}
		if el.Tag != "EncryptedData" || el.NamespaceURI() != xmlenc.NamespaceXENC {
			return decFault("a DataReference to %s, not to an EncryptedData", clark(el))
		}
		if !seen[el] {
			seen[el] = true
			targets = append(targets, el)
		}
		return nil
	}
	for _, k := range kids {
		if !isEnc(k) {
			continue
		}
		var refs []*etree.Element
		switch k.Tag {
		case "EncryptedKey":
			for _, c := range k.ChildElements() {
				if c.Tag == "ReferenceList" && c.NamespaceURI() == xmlenc.NamespaceXENC {
					refs = append(refs, c.ChildElements()...)
				}
			}
		case "ReferenceList":
			refs = k.ChildElements()
		}
		for _, r := range refs {
			if r.NamespaceURI() != xmlenc.NamespaceXENC || (r.Tag != "DataReference" && r.Tag != "KeyReference") {
				return decFault("unexpected %s in a ReferenceList", clark(r))
			}
			if r.Tag == "KeyReference" {
				continue
			}
			id, ok := strings.CutPrefix(r.SelectAttrValue("URI", ""), "#")
			el := m.ids.Lookup(id)
			if !ok || el == nil {
				return decFault("DataReference %q does not resolve", r.SelectAttrValue("URI", ""))
			}
			if d := add(el); d != nil {
				return d
			}
		}
	}
	for _, k := range kids {
		if k.Tag == "EncryptedData" && k.NamespaceURI() == xmlenc.NamespaceXENC {
			add(k)
		}
	}
	// Encrypted header blocks (WSS 1.1 §9.3) are decrypted whether or not
	// a ReferenceList names them.
	for _, h := range m.header.ChildElements() {
		if isEncryptedHeader(h) {
			if d := add(h); d != nil {
				return d
			}
		}
	}
	var walk func(*etree.Element)
	walk = func(el *etree.Element) {
		for _, c := range el.ChildElements() {
			if c.Tag == "EncryptedData" && c.NamespaceURI() == xmlenc.NamespaceXENC {
				add(c)
				continue
			}
			walk(c)
		}
	}
	walk(m.body)

	if len(targets) > 0 && m.signature != nil && sigAt >= 0 && (firstEnc < 0 || sigAt < firstEnc) {
		if p.s.x509 == nil {
			return fault(CodeUnsupportedSecurityToken, "Signature sent but x509 is not configured")
		}
		tok, sig, covered, d := p.verifySignature(m, now)
		if d != nil {
			return d
		}
		m.early = &earlySig{tok: tok, sig: sig, covered: covered}
	}

	// Parse every target before decrypting any, so that a malformed one
	// fails before any cryptography.
	datas := make([]*xmlenc.Data, len(targets))
	for i, t := range targets {
		d, err := xmlenc.ParseData(t)
		if err != nil {
			return decFault("%v", err)
		}
		if d.Type == xmlenc.TypeContent && t.Parent() == m.security {
			return decFault("Content EncryptedData in the Security header")
		}
		datas[i] = d
	}
	m.origin = map[*etree.Element][]*etree.Element{}
	m.plain = map[etree.Token]bool{}
	s := e.dec.NewSession(m.ids.Lookup)
	for _, d := range datas {
		auth := false
		if m.early != nil && e.allowCBC {
			for _, c := range m.early.covered {
				if c == d.Element || isAncestor(c, d.Element) {
					auth = true
				}
			}
		}
		parent := d.Element.Parent()
		if d.Type != xmlenc.TypeElement && isEncryptedHeader(parent) {
			return decFault("an EncryptedHeader must hold Type Element")
		}
		// Where the data sits, for encryption.forward reencrypt: the
		// Body, a header block (or an EncryptedHeader's, named by the
		// block it holds), or a child of the Security header.
		inBody := topUnder(m.body, d.Element) != nil
		top := topUnder(m.header, d.Element)
		var secChild *etree.Element
		if top == m.security {
			secChild = topUnder(m.security, d.Element)
		}
		nodes, err := s.Replace(d, auth)
		if err != nil {
			if errors.Is(err, xmlenc.ErrDecrypt) {
				return decFault("decryption failed")
			}
			return decFault("%v", err)
		}
		for _, n := range nodes {
			m.plain[n] = true
			if el, ok := n.(*etree.Element); ok {
				m.origin[el] = []*etree.Element{d.Element}
				if isEncryptedHeader(parent) {
					// A signature names the EncryptedHeader (WSS 1.1
					// §9.3) or its EncryptedData: either covers it.
					m.origin[el] = append(m.origin[el], parent)
				}
			}
		}
		if parent == m.body {
			m.bodyDecrypted = true
		}
		switch {
		case inBody:
			m.sealed.body = true
		case top == m.security && secChild == d.Element:
			for _, n := range nodes {
				if el, ok := n.(*etree.Element); ok {
					m.sealed.security = addQName(m.sealed.security, el)
				}
			}
		case top == m.security:
			m.sealed.security = addQName(m.sealed.security, secChild)
		case top == d.Element || isEncryptedHeader(top):
			for _, n := range nodes {
				if el, ok := n.(*etree.Element); ok {
					m.sealed.headers = addQName(m.sealed.headers, el)
				}
			}
		case top != nil:
			m.sealed.headers = addQName(m.sealed.headers, top)
		}
		if isEncryptedHeader(parent) {
			// The header block takes the EncryptedHeader's place. It
			// must not be a Security header: one that appears only after
			// the gateway chose its own would go upstream unchecked.
			for _, n := range nodes {
				if el, ok := n.(*etree.Element); ok && el.Tag == "Security" && el.NamespaceURI() == NamespaceWSSE {
					return decFault("an EncryptedHeader holds a Security header")
				}
			}
			hoist(parent)
		}
	}
	if len(targets) > 0 {
		m.decrypted = true
		ids, err := xmlsig.NewIDIndex(m.envelope)
		if err != nil {
			return decFault("after decryption: %v", err)
		}
		m.ids = ids
		m.timestamp, m.ut, m.bsts, m.signature = nil, nil, nil, nil
		if d := m.collect(); d != nil {
			return d
		}
	}
	return p.checkEncryptedParts(m)
}

// checkEncryptedParts refuses a message in which a part the route wants
// encrypted arrived in the clear.
func (p *Policy) checkEncryptedParts(m *message) *policy.Denial {
	r := p.s.enc.required
	came := func(el *etree.Element) bool { return len(m.origin[el]) > 0 }
	if r.body {
		if len(m.body.ChildElements()) == 0 || !m.bodyDecrypted {
			return fault(CodeInvalidSecurity, "the Body was not encrypted, and encryption.required_parts has Body")
		}
		// Every element and every piece of text in the Body came out of
		// an EncryptedData: nothing was added beside it in the clear.
		for _, t := range m.body.Child {
			switch t := t.(type) {
			case *etree.Element:
				if !m.plain[t] {
					return fault(CodeInvalidSecurity, "Body content was not encrypted, and encryption.required_parts has Body")
				}
			case *etree.CharData:
				if !t.IsWhitespace() && !m.plain[t] {
					return fault(CodeInvalidSecurity, "Body text was not encrypted, and encryption.required_parts has Body")
				}
			}
		}
	}
	if r.ut && m.ut != nil && !came(m.ut) {
		return fault(CodeInvalidSecurity, "the UsernameToken was not encrypted, and encryption.required_parts has UsernameToken")
	}
	if r.sig && m.signature != nil && !came(m.signature) && m.early == nil {
		return fault(CodeInvalidSecurity, "the Signature was not encrypted, and encryption.required_parts has Signature")
	}
	for _, q := range r.headers {
		for _, h := range m.header.ChildElements() {
			if h.Tag == q.local && h.NamespaceURI() == q.space && !came(h) {
				return fault(CodeInvalidSecurity, "header {%s}%s was not encrypted", q.space, q.local)
			}
		}
	}
	return nil
}

// NamespaceWSSE11 is WSS 1.1's secext namespace, of EncryptedHeader.
const nsWSSE11 = NamespaceWSSE11

func isEncryptedHeader(el *etree.Element) bool {
	return el != nil && el.Tag == "EncryptedHeader" && el.NamespaceURI() == nsWSSE11
}

// hoist puts the children of w in w's place.
func hoist(w *etree.Element) {
	p := w.Parent()
	at := w.Index()
	kids := slices.Clone(w.Child)
	p.RemoveChildAt(at)
	for i, k := range kids {
		w.RemoveChild(k)
		p.InsertChildAt(at+i, k)
	}
}

func isAncestor(a, el *etree.Element) bool {
	for p := el.Parent(); p != nil; p = p.Parent() {
		if p == a {
			return true
		}
	}
	return false
}

// covers reports whether a signature's covered elements include el, or
// the EncryptedData el was decrypted from (encrypt-then-sign: the
// signature covered the ciphertext of el).
func (m *message) covers(covered []*etree.Element, el *etree.Element) bool {
	if slices.Contains(covered, el) {
		return true
	}
	if m.early == nil {
		return false
	}
	for _, o := range m.origin[el] {
		if slices.Contains(covered, o) {
			return true
		}
	}
	return false
}

// plaintext returns the decrypted message as it goes upstream: the tree
// serialized, without the gateway's Security header unless it is kept
// (and then without its encryption elements, which name data no longer
// there).
func (p *Policy) plaintext(m *message) ([]byte, error) {
	if p.s.keepHeader {
		for _, k := range m.security.ChildElements() {
			if isEnc(k) {
				m.security.RemoveChild(k)
			}
		}
	} else {
		m.header.RemoveChild(m.security)
	}
	return m.doc.WriteToBytes()
}
