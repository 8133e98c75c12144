package wssecurity

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// token is a resolved X.509 token: the signer's certificate and the
// intermediates that came with it.
type token struct {
	cert          *x509.Certificate
	intermediates []*x509.Certificate
	// desc is cert's description, made once for tokens in the cache;
	// nil for others.
	desc *certDesc
}

// certDesc is what the Principal says of a certificate.
type certDesc struct{ subject, issuer, serial, sha256 string }

func describe(c *x509.Certificate) *certDesc {
	sum := sha256.Sum256(c.Raw)
	return &certDesc{subject: c.Subject.String(), issuer: c.Issuer.String(),
		serial: c.SerialNumber.String(), sha256: hex.EncodeToString(sum[:])}
}

func (t *token) description() *certDesc {
	if t.desc != nil {
		return t.desc
	}
	return describe(t.cert)
}

// tokenCache remembers parsed BinarySecurityTokens by the SHA-256 of their
// bytes: a busy signer sends the same certificate with every message, and
// parsing it (and printing its names) cost more than the c14n of the
// message. Tokens in it are shared and never modified.
type tokenCache struct {
	mu sync.Mutex
	m  map[[32]byte]*cachedToken
}

type cachedToken struct {
	valueType string
	tok       *token
}

const maxTokenCache = 1024

func (c *tokenCache) get(k [32]byte, valueType string) *token {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil && e.valueType == valueType {
		return e.tok
	}
	return nil
}

func (c *tokenCache) put(k [32]byte, valueType string, t *token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxTokenCache {
		c.m = make(map[[32]byte]*cachedToken)
	}
	c.m[k] = &cachedToken{valueType: valueType, tok: t}
}

// checkSignature verifies the message's Signature with the key of the
// X.509 token its KeyInfo references, after validating that token against
// the trust store, and checks that it covers the required parts. It
// returns the token and the verified signature (whose ReplayKey the
// caller spends).
func (p *Policy) checkSignature(m *message, now time.Time) (*token, *xmlsig.Signature, *policy.Denial) {
	var tok *token
	var sig *xmlsig.Signature
	var covered []*etree.Element
	if m.early != nil {
		// Verified over the ciphertext before decryption.
		tok, sig, covered = m.early.tok, m.early.sig, m.early.covered
	} else {
		var d *policy.Denial
		if tok, sig, covered, d = p.verifySignature(m, now); d != nil {
			return nil, nil, d
		}
	}
	// Coverage by identity: the Body the service gets is the Envelope's
	// one Body child, found by position; that the signature covers an
	// element with the Body's Id somewhere else proves nothing. An
	// element decrypted from a covered EncryptedData is covered.
	has := func(el *etree.Element) bool { return m.covers(covered, el) }
	if !has(m.body) {
		return nil, nil, fault(CodeFailedCheck, "the signature does not cover the SOAP Body")
	}
	if p.s.parts.timestamp && m.timestamp != nil && !has(m.timestamp) {
		return nil, nil, fault(CodeFailedCheck, "the signature does not cover the Timestamp")
	}
	if p.s.parts.usernameToken && m.ut != nil && !has(m.ut) {
		return nil, nil, fault(CodeFailedCheck, "the signature does not cover the UsernameToken")
	}
	for _, q := range p.s.parts.headers {
		for _, h := range m.header.ChildElements() {
			if h.Tag == q.local && h.NamespaceURI() == q.space && !has(h) {
				return nil, nil, fault(CodeFailedCheck, "the signature does not cover header {%s}%s", q.space, q.local)
			}
		}
	}
	return tok, sig, nil
}

// verifySignature verifies the message's Signature with the key of the
// X.509 token its KeyInfo references, after validating that token against
// the trust store, and returns what it covers.
func (p *Policy) verifySignature(m *message, now time.Time) (*token, *xmlsig.Signature, []*etree.Element, *policy.Denial) {
	sig, err := xmlsig.Parse(m.signature, xmlsig.Options{Algorithms: p.s.algs, MaxReferences: p.s.maxRefs})
	if err != nil {
		return nil, nil, nil, sigFault(err)
	}
	tok, d := p.resolveToken(m, sig.KeyInfo)
	if d != nil {
		return nil, nil, nil, d
	}
	if d := p.validate(tok, now); d != nil {
		return nil, nil, nil, d
	}
	covered, err := sig.Verify(m.ids, tok.cert.PublicKey)
	if err != nil {
		return nil, nil, nil, sigFault(err)
	}
	return tok, sig, covered, nil
}

// sigFault maps an xmlsig error to its fault.
func sigFault(err error) *policy.Denial {
	switch {
	case errors.Is(err, xmlsig.ErrUnsupportedAlgorithm):
		return fault(CodeUnsupportedAlgorithm, "%v", err)
	case errors.Is(err, xmlsig.ErrKey):
		return fault(CodeInvalidSecurityToken, "%v", err)
	case errors.Is(err, xmlsig.ErrDigestMismatch), errors.Is(err, xmlsig.ErrBadSignature), errors.Is(err, xmlsig.ErrUnresolved):
		return fault(CodeFailedCheck, "%v", err)
	}
	return fault(CodeInvalidSecurity, "%v", err)
}

// resolveToken finds the certificate KeyInfo's one SecurityTokenReference
// names: by Reference to a BinarySecurityToken of this Security header, or
// by KeyIdentifier or X509IssuerSerial among those tokens and the
// configured certificates. A key is never taken from KeyInfo itself
// (ds:KeyValue, ds:X509Certificate): only from a token.
func (p *Policy) resolveToken(m *message, keyInfo *etree.Element) (*token, *policy.Denial) {
	if keyInfo == nil {
		return nil, fault(CodeSecurityTokenUnavailable, "Signature without KeyInfo")
	}
	kids := keyInfo.ChildElements()
	if len(kids) != 1 || kids[0].Tag != "SecurityTokenReference" || kids[0].NamespaceURI() != NamespaceWSSE {
		return nil, fault(CodeUnsupportedSecurityToken, "KeyInfo must hold exactly one wsse:SecurityTokenReference")
	}
	refs := kids[0].ChildElements()
	if len(refs) != 1 {
		return nil, fault(CodeInvalidSecurityToken, "SecurityTokenReference must hold exactly one reference")
	}
	ref := refs[0]
	switch ns := ref.NamespaceURI(); {
	case ns == NamespaceWSSE && ref.Tag == "Reference":
		uri := ref.SelectAttrValue("URI", "")
		id, ok := strings.CutPrefix(uri, "#")
		if !ok || id == "" {
			return nil, fault(CodeSecurityTokenUnavailable, "token reference %q is not #id", uri)
		}
		el := m.ids.Lookup(id)
		if el == nil || el.Parent() != m.security || el.Tag != "BinarySecurityToken" || el.NamespaceURI() != NamespaceWSSE {
			return nil, fault(CodeSecurityTokenUnavailable, "no BinarySecurityToken %q in this Security header", id)
		}
		if vt := ref.SelectAttrValue("ValueType", ""); vt != "" && vt != el.SelectAttrValue("ValueType", "") {
			return nil, fault(CodeInvalidSecurityToken, "reference ValueType %q differs from the token's", vt)
		}
		return p.parseBST(el)
	case ns == NamespaceWSSE && ref.Tag == "KeyIdentifier":
		return p.byKeyIdentifier(m, ref)
	case ns == xmlsig.NamespaceDSig && ref.Tag == "X509Data":
		return p.byIssuerSerial(m, ref)
	}
	return nil, fault(CodeUnsupportedSecurityToken, "unsupported token reference %s", clark(ref))
}

// parseBST decodes a BinarySecurityToken, X509v3 or X509PKIPathv1, or
// finds it in the cache.
func (p *Policy) parseBST(el *etree.Element) (*token, *policy.Denial) {
	if enc := el.SelectAttrValue("EncodingType", encBase64); enc != encBase64 {
		return nil, fault(CodeInvalidSecurityToken, "BinarySecurityToken EncodingType %q", enc)
	}
	der, err := xmlsig.DecodeBase64(el.Text())
	if err != nil {
		return nil, fault(CodeInvalidSecurityToken, "BinarySecurityToken is not base64")
	}
	vt := el.SelectAttrValue("ValueType", "")
	key := sha256.Sum256(der)
	if t := p.tokens.get(key, vt); t != nil {
		return t, nil
	}
	t, d := parseToken(der, vt)
	if d != nil {
		return nil, d
	}
	t.desc = describe(t.cert)
	p.tokens.put(key, vt, t)
	return t, nil
}

// parseToken parses the bytes of a BinarySecurityToken of ValueType vt.
func parseToken(der []byte, vt string) (*token, *policy.Denial) {
	switch vt {
	case valueX509v3:
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fault(CodeInvalidSecurityToken, "BinarySecurityToken: %v", err)
		}
		return &token{cert: c}, nil
	case valuePKIPath:
		// PkiPath: a SEQUENCE OF Certificate from the one closest to
		// the trust anchor down to the signer's.
		var raws []asn1.RawValue
		rest, err := asn1.Unmarshal(der, &raws)
		if err != nil || len(rest) != 0 || len(raws) == 0 || len(raws) > 8 {
			return nil, fault(CodeInvalidSecurityToken, "X509PKIPathv1 is not a sequence of 1 to 8 certificates")
		}
		certs := make([]*x509.Certificate, len(raws))
		for i, r := range raws {
			if certs[i], err = x509.ParseCertificate(r.FullBytes); err != nil {
				return nil, fault(CodeInvalidSecurityToken, "X509PKIPathv1 certificate %d: %v", i, err)
			}
		}
		return &token{cert: certs[len(certs)-1], intermediates: certs[:len(certs)-1]}, nil
	default:
		return nil, fault(CodeUnsupportedSecurityToken, "BinarySecurityToken ValueType %q", vt)
	}
}

// candidates are the certificates a KeyIdentifier or X509IssuerSerial can
// name: the X509v3 tokens of this Security header, then the configured
// ones.
func (p *Policy) candidates(m *message) []*token {
	var out []*token
	for _, b := range m.bsts {
		if t, d := p.parseBST(b); d == nil {
			out = append(out, t)
		}
	}
	for _, c := range p.s.x509.known {
		out = append(out, &token{cert: c})
	}
	return out
}

func (p *Policy) byKeyIdentifier(m *message, ki *etree.Element) (*token, *policy.Denial) {
	if enc := ki.SelectAttrValue("EncodingType", encBase64); enc != encBase64 {
		return nil, fault(CodeInvalidSecurityToken, "KeyIdentifier EncodingType %q", enc)
	}
	want, err := xmlsig.DecodeBase64(ki.Text())
	if err != nil || len(want) == 0 {
		return nil, fault(CodeInvalidSecurityToken, "KeyIdentifier is not base64")
	}
	vt := ki.SelectAttrValue("ValueType", "")
	var match func(c *x509.Certificate) bool
	switch vt {
	case valueSKI:
		match = func(c *x509.Certificate) bool { return len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, want) }
	case valueThumbSHA1:
		match = func(c *x509.Certificate) bool { s := sha1.Sum(c.Raw); return bytes.Equal(s[:], want) }
	default:
		return nil, fault(CodeUnsupportedSecurityToken, "KeyIdentifier ValueType %q", vt)
	}
	for _, t := range p.candidates(m) {
		if match(t.cert) {
			return t, nil
		}
	}
	return nil, fault(CodeSecurityTokenUnavailable, "no known certificate matches the %s KeyIdentifier", vt)
}

// byIssuerSerial resolves the X509Data of a SecurityTokenReference: one
// X509IssuerSerial, one X509Certificate, or both in that order, as
// python-zeep's Signature and other xmlsec-based signers write it (zeep's
// X509IssuerSerial is even empty). Neither is where the key comes from:
// each only names one of the candidates (this header's tokens, the
// configured certificates), the issuer and serial by value, the
// certificate byte for byte, as a ThumbprintSHA1 KeyIdentifier names one
// by its hash; and when both are given they must name the same one. A
// certificate that is not a candidate is not trusted for being there.
func (p *Policy) byIssuerSerial(m *message, xd *etree.Element) (*token, *policy.Denial) {
	var is, xc *etree.Element
	for i, k := range xd.ChildElements() {
		switch {
		case i == 0 && k.NamespaceURI() == xmlsig.NamespaceDSig && k.Tag == "X509IssuerSerial":
			is = k
		case xc == nil && k.NamespaceURI() == xmlsig.NamespaceDSig && k.Tag == "X509Certificate":
			xc = k
		default:
			return nil, fault(CodeUnsupportedSecurityToken, "X509Data must hold an X509IssuerSerial, an X509Certificate, or both in that order")
		}
	}
	if is != nil && len(is.ChildElements()) == 0 && xc != nil {
		is = nil // zeep's empty template: the certificate names the key
	}
	var match func(c *x509.Certificate) bool
	var what string
	switch {
	case is != nil:
		name := is.SelectElement("X509IssuerName")
		serialEl := is.SelectElement("X509SerialNumber")
		if name == nil || serialEl == nil || len(is.ChildElements()) != 2 {
			return nil, fault(CodeInvalidSecurityToken, "X509IssuerSerial must hold X509IssuerName and X509SerialNumber")
		}
		serial, ok := new(big.Int).SetString(strings.TrimSpace(serialEl.Text()), 10)
		if !ok {
			return nil, fault(CodeInvalidSecurityToken, "X509SerialNumber is not a decimal integer")
		}
		issuer := normalizeDN(name.Text())
		match = func(c *x509.Certificate) bool {
			return c.SerialNumber.Cmp(serial) == 0 && normalizeDN(c.Issuer.String()) == issuer
		}
		what = "X509IssuerSerial " + name.Text() + " / " + serial.String()
	case xc != nil:
		what = "X509Certificate"
	default:
		return nil, fault(CodeUnsupportedSecurityToken, "empty X509Data")
	}
	var named *x509.Certificate
	if xc != nil {
		der, err := xmlsig.DecodeBase64(xc.Text())
		if err != nil {
			return nil, fault(CodeInvalidSecurityToken, "X509Certificate is not base64")
		}
		if named, err = x509.ParseCertificate(der); err != nil {
			return nil, fault(CodeInvalidSecurityToken, "X509Certificate: %v", err)
		}
	}
	for _, t := range p.candidates(m) {
		switch {
		case match != nil && !match(t.cert), match == nil && !named.Equal(t.cert):
			continue
		case named != nil && !named.Equal(t.cert):
			return nil, fault(CodeInvalidSecurityToken, "the X509Certificate beside X509IssuerSerial is another certificate than the one it names")
		}
		return t, nil
	}
	return nil, fault(CodeSecurityTokenUnavailable, "no known certificate matches the %s", what)
}

// normalizeDN makes the RFC 2253 forms different stacks print comparable:
// no spaces around the separators, attribute types upper-case.
func normalizeDN(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok {
			k = strings.ToUpper(strings.TrimSpace(k))
			if k == "E" {
				k = "EMAILADDRESS"
			}
			parts[i] = k + "=" + strings.TrimSpace(v)
		}
	}
	return strings.Join(parts, ",")
}

// validate checks the token's certificate: a chain to the trust store at
// now, key usage digital signature (when the certificate restricts key
// usage), and the subject pins.
func (p *Policy) validate(t *token, now time.Time) *policy.Denial {
	c := t.cert
	if c.KeyUsage != 0 && c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return fault(CodeFailedAuthentication, "certificate %q may not sign (key usage)", c.Subject)
	}
	if len(p.s.x509.subjects) > 0 && !p.s.x509.subjects[c.Subject.String()] {
		return fault(CodeFailedAuthentication, "certificate subject %q is not pinned", c.Subject)
	}
	h := sha256.New()
	h.Write(c.Raw)
	for _, i := range t.intermediates {
		h.Write(i.Raw)
	}
	var key [32]byte
	h.Sum(key[:0])
	if p.chains.get(key, now) {
		return nil
	}
	opts := x509.VerifyOptions{
		Roots:         p.s.x509.roots,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		Intermediates: x509.NewCertPool(),
	}
	for _, i := range t.intermediates {
		opts.Intermediates.AddCert(i)
	}
	chains, err := c.Verify(opts)
	if err != nil {
		return fault(CodeFailedAuthentication, "certificate %q: %v", c.Subject, err)
	}
	e := chainEntry{notBefore: c.NotBefore, notAfter: c.NotAfter}
	for _, cc := range chains[0] {
		if cc.NotBefore.After(e.notBefore) {
			e.notBefore = cc.NotBefore
		}
		if cc.NotAfter.Before(e.notAfter) {
			e.notAfter = cc.NotAfter
		}
	}
	p.chains.put(key, e)
	return nil
}
