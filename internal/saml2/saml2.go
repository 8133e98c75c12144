// Package saml2 builds, signs and verifies SAML 2.0 assertions the way the
// WS-Security SAML Token Profile 1.1 and the WS-Trust STS use them: an
// enveloped XML-DSig signature over the whole assertion, exclusive c14n,
// RSA-SHA256 (RSA-2048 or larger) or ECDSA-SHA256 (P-256, r||s as XML-DSig
// 1.1 says, not the DER of X.509).
//
// Signing and verification both sit on internal/xmlsig (goxmldsig's
// exclusive canonicalizer with our own reference checks) rather than on
// goxmldsig's SigningContext and ValidationContext: those write and expect
// DER-encoded ECDSA values, which no other XML-DSig implementation
// (xmlsec1, xml-crypto, Santuario) produces or accepts, and their
// validator searches the whole subtree for any Signature naming the root,
// which is more than an assertion check needs to allow.
//
// Verify defends against signature wrapping (XSW1-XSW8) by identity, not
// by Id: the one Signature must be a direct child of the assertion being
// checked, its one Reference must resolve, in an index of the whole
// document in which duplicate IDs are refused, to that very element, and
// everything the caller gets (NameID, conditions, attributes, confirmation
// keys) is read from a re-parse of the verified canonical bytes, never
// from the tree that was handed in. Comments and processing instructions
// inside NameID therefore cannot shorten the identity (CVE-2017-11427,
// CVE-2018-0489): comments are not in the canonical form, and a NameID with
// anything but text in it is refused.
package saml2

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// Namespaces and URIs of SAML 2.0 and its profiles.
const (
	NamespaceAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	NamespaceXSI       = "http://www.w3.org/2001/XMLSchema-instance"

	// TokenTypeSAML20 is the WS-Security SAML Token Profile 1.1 token type.
	TokenTypeSAML20 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
	// ValueTypeSAMLID is the KeyIdentifier ValueType referring to a SAML
	// 2.0 assertion by its ID.
	ValueTypeSAMLID = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"

	MethodBearer        = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	MethodHolderOfKey   = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
	MethodSenderVouches = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"

	NameIDUnspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
	AttrNameBasic     = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"

	AuthnPassword        = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
	AuthnPasswordProtTLS = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	AuthnX509            = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
)

// Assertion is the content of an assertion: what Build writes and what
// Verify reads back from a verified one.
type Assertion struct {
	// ID is the assertion's ID (an NCName). Build makes one when empty.
	ID string
	// Issuer is the issuing entity's name (an STS URL).
	Issuer string
	// IssueInstant is when it was issued.
	IssueInstant time.Time
	// NameID is the subject's name; NameIDFormat its format (default
	// unspecified).
	NameID, NameIDFormat string
	// NotBefore and NotOnOrAfter bound its validity (Conditions).
	NotBefore, NotOnOrAfter time.Time
	// Audiences are the Audience values of each AudienceRestriction; an
	// assertion is for an audience only if every restriction names it.
	Audiences [][]string
	// OneTimeUse is the OneTimeUse condition.
	OneTimeUse bool
	// Confirmations are the subject confirmations.
	Confirmations []Confirmation
	// AuthnContext is the AuthnContextClassRef of the AuthnStatement, ""
	// for none.
	AuthnContext string
	// AuthnInstant is when the subject authenticated.
	AuthnInstant time.Time
	// Attributes are the AttributeStatement's attributes by Name, each
	// with its values in order. Build writes names in sorted order.
	Attributes map[string][]string

	// Signer is the trusted certificate the assertion verified with; set
	// by Verify only.
	Signer *x509.Certificate
	// Canonical is the verified exclusive canonical form of the assertion
	// (with its signature); set by Verify only.
	Canonical []byte
}

// Confirmation is one SubjectConfirmation.
type Confirmation struct {
	// Method is MethodBearer, MethodHolderOfKey or MethodSenderVouches.
	Method string
	// NotBefore, NotOnOrAfter, Recipient, Address and InResponseTo are
	// SubjectConfirmationData's, if set (SAML core §2.4.1.2).
	NotBefore, NotOnOrAfter time.Time
	Recipient               string
	Address                 string
	InResponseTo            string
	// Certificate is the holder-of-key certificate
	// (KeyInfoConfirmationDataType, ds:X509Certificate); Key is its
	// public key, or an RSA or EC key given as ds:KeyValue.
	Certificate *x509.Certificate
	Key         crypto.PublicKey
}

// AudienceOK reports whether aud is in every AudienceRestriction, and there
// is at least one.
func (a *Assertion) AudienceOK(aud string) bool {
	if len(a.Audiences) == 0 {
		return false
	}
	for _, r := range a.Audiences {
		found := false
		for _, v := range r {
			found = found || v == aud
		}
		if !found {
			return false
		}
	}
	return true
}

// Confirmation returns the first confirmation with the method, or nil.
func (a *Assertion) Confirmation(method string) *Confirmation {
	for i := range a.Confirmations {
		if a.Confirmations[i].Method == method {
			return &a.Confirmations[i]
		}
	}
	return nil
}

// NewID returns a fresh assertion ID: "_" and 32 hex digits (an NCName).
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "_" + hex.EncodeToString(b[:])
}

// Build returns the unsigned assertion element, with the saml2 prefix
// declared on it. Times are written in UTC with millisecond precision.
func Build(a *Assertion) *etree.Element {
	if a.ID == "" {
		a.ID = NewID()
	}
	as := etree.NewElement("saml2:Assertion")
	as.CreateAttr("xmlns:saml2", NamespaceAssertion)
	as.CreateAttr("ID", a.ID)
	as.CreateAttr("IssueInstant", FormatTime(a.IssueInstant))
	as.CreateAttr("Version", "2.0")
	as.CreateElement("saml2:Issuer").SetText(a.Issuer)

	subj := as.CreateElement("saml2:Subject")
	nid := subj.CreateElement("saml2:NameID")
	nid.CreateAttr("Format", cmp.Or(a.NameIDFormat, NameIDUnspecified))
	nid.SetText(a.NameID)
	for _, c := range a.Confirmations {
		sc := subj.CreateElement("saml2:SubjectConfirmation")
		sc.CreateAttr("Method", c.Method)
		if c.NotBefore.IsZero() && c.NotOnOrAfter.IsZero() && c.Recipient == "" && c.Address == "" && c.InResponseTo == "" && c.Certificate == nil {
			continue
		}
		scd := sc.CreateElement("saml2:SubjectConfirmationData")
		if !c.NotBefore.IsZero() {
			scd.CreateAttr("NotBefore", FormatTime(c.NotBefore))
		}
		if !c.NotOnOrAfter.IsZero() {
			scd.CreateAttr("NotOnOrAfter", FormatTime(c.NotOnOrAfter))
		}
		if c.Recipient != "" {
			scd.CreateAttr("Recipient", c.Recipient)
		}
		if c.InResponseTo != "" {
			scd.CreateAttr("InResponseTo", c.InResponseTo)
		}
		if c.Address != "" {
			scd.CreateAttr("Address", c.Address)
		}
		if c.Certificate != nil {
			scd.CreateAttr("xmlns:xsi", NamespaceXSI)
			scd.CreateAttr("xsi:type", "saml2:KeyInfoConfirmationDataType")
			ki := scd.CreateElement("ds:KeyInfo")
			ki.CreateAttr("xmlns:ds", xmlsig.NamespaceDSig)
			ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").
				SetText(base64.StdEncoding.EncodeToString(c.Certificate.Raw))
		}
	}

	cond := as.CreateElement("saml2:Conditions")
	cond.CreateAttr("NotBefore", FormatTime(a.NotBefore))
	cond.CreateAttr("NotOnOrAfter", FormatTime(a.NotOnOrAfter))
	for _, r := range a.Audiences {
		ar := cond.CreateElement("saml2:AudienceRestriction")
		for _, v := range r {
			ar.CreateElement("saml2:Audience").SetText(v)
		}
	}
	if a.OneTimeUse {
		cond.CreateElement("saml2:OneTimeUse")
	}
	if a.AuthnContext != "" {
		st := as.CreateElement("saml2:AuthnStatement")
		st.CreateAttr("AuthnInstant", FormatTime(a.AuthnInstant))
		st.CreateElement("saml2:AuthnContext").CreateElement("saml2:AuthnContextClassRef").SetText(a.AuthnContext)
	}
	if len(a.Attributes) > 0 {
		st := as.CreateElement("saml2:AttributeStatement")
		for _, name := range sortedKeys(a.Attributes) {
			at := st.CreateElement("saml2:Attribute")
			at.CreateAttr("Name", name)
			at.CreateAttr("NameFormat", AttrNameBasic)
			for _, v := range a.Attributes[name] {
				at.CreateElement("saml2:AttributeValue").SetText(v)
			}
		}
	}
	return as
}

// Signer signs assertions with one key and names its certificate in
// KeyInfo. It is immutable and safe for concurrent use.
type Signer struct {
	key    crypto.Signer
	cert   *x509.Certificate
	method string
	b64    string // the certificate, base64
}

// NewSigner returns a signer for key, whose certificate is cert: RSA keys
// of at least 2048 bits sign with RSA-SHA256, P-256 keys with
// ECDSA-SHA256. Other keys are an error.
func NewSigner(key crypto.Signer, cert *x509.Certificate) (*Signer, error) {
	s := &Signer{key: key, cert: cert, b64: base64.StdEncoding.EncodeToString(cert.Raw)}
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("saml2: RSA key of %d bits, want at least 2048", k.N.BitLen())
		}
		s.method = xmlsig.AlgRSASHA256
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("saml2: ECDSA keys must be on P-256")
		}
		s.method = xmlsig.AlgECDSASHA256
	default:
		return nil, fmt.Errorf("saml2: unsupported key %T (want RSA or ECDSA P-256)", key.Public())
	}
	if !publicEqual(key.Public(), cert.PublicKey) {
		return nil, errors.New("saml2: the certificate is not for the key")
	}
	return s, nil
}

// Certificate returns the signer's certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// Method returns the XML-DSig signature method URI.
func (s *Signer) Method() string { return s.method }

// Sign inserts an enveloped signature into as, an assertion element that
// is the root of its own tree (as Build returns it), right after its
// Issuer as the SAML schema requires.
func (s *Signer) Sign(as *etree.Element) error {
	id := as.SelectAttrValue("ID", "")
	if id == "" {
		return errors.New("saml2: assertion without ID")
	}
	// The digest is over the assertion without its signature: what the
	// enveloped-signature transform leaves.
	c, err := xmlsig.Canonicalize(as, "")
	if err != nil {
		return fmt.Errorf("saml2: %w", err)
	}
	sum := sha256.Sum256(c)

	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", xmlsig.NamespaceDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", xmlsig.AlgExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", s.method)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+id)
	trs := ref.CreateElement("ds:Transforms")
	trs.CreateElement("ds:Transform").CreateAttr("Algorithm", xmlsig.AlgEnveloped)
	trs.CreateElement("ds:Transform").CreateAttr("Algorithm", xmlsig.AlgExcC14N)
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", xmlsig.AlgSHA256)
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(sum[:]))
	sv := sig.CreateElement("ds:SignatureValue")
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(s.b64)

	pos := 0
	if iss := as.SelectElement("Issuer"); iss != nil {
		pos = iss.Index() + 1
	}
	as.InsertChildAt(pos, sig)
	sic, err := xmlsig.Canonicalize(si, "")
	if err != nil {
		return fmt.Errorf("saml2: %w", err)
	}
	v, err := signBytes(s.key, sic)
	if err != nil {
		return fmt.Errorf("saml2: signing: %w", err)
	}
	sv.SetText(base64.StdEncoding.EncodeToString(v))
	return nil
}

// signBytes signs data with SHA-256: PKCS #1 v1.5 for RSA, r||s for ECDSA.
func signBytes(key crypto.Signer, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	v, err := key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if _, ok := key.Public().(*ecdsa.PublicKey); !ok {
		return v, nil
	}
	r, sv, err := parseDERSig(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	sv.FillBytes(out[32:])
	return out, nil
}

// FormatTime writes t as an xsd:dateTime in UTC with milliseconds.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func publicEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// parseDERSig parses an ASN.1 ECDSA signature (SEQUENCE of two INTEGERs).
func parseDERSig(b []byte) (*big.Int, *big.Int, error) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(b, &sig); err != nil {
		return nil, nil, err
	}
	return sig.R, sig.S, nil
}

func sortedKeys(m map[string][]string) []string { return slices.Sorted(maps.Keys(m)) }
