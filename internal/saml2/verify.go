package saml2

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// Errors, for errors.Is. Every error of Verify and Check wraps one.
var (
	// ErrMalformed: not a SAML 2.0 assertion of the accepted shape.
	ErrMalformed = errors.New("saml2: malformed assertion")
	// ErrUntrusted: not signed, or signed by a certificate that is not
	// trusted (or not valid now).
	ErrUntrusted = errors.New("saml2: untrusted signer")
	// ErrSignature: the signature does not verify, or does not cover
	// this very assertion (signature wrapping).
	ErrSignature = errors.New("saml2: bad signature")
	// ErrExpired: NotOnOrAfter has passed.
	ErrExpired = errors.New("saml2: assertion expired")
	// ErrNotYetValid: NotBefore has not come yet.
	ErrNotYetValid = errors.New("saml2: assertion not yet valid")
)

// VerifyOptions say how an assertion is verified.
type VerifyOptions struct {
	// Trusted are the certificates whose keys may sign assertions. A
	// certificate in the signature's KeyInfo only selects among these; it
	// is never trusted on its own.
	Trusted []*x509.Certificate
	// Now is the time certificates must be valid at.
	Now time.Time
	// Algorithms are the permitted digest and signature algorithms; zero
	// means xmlsig.DefaultAlgorithms.
	Algorithms xmlsig.Algorithms
	// IDs indexes the whole document the assertion is part of (a SOAP
	// message). Nil: Verify indexes the tree above the assertion itself.
	// Either way a duplicate ID anywhere in it is refused.
	IDs *xmlsig.IDIndex
}

// Verify checks that el is a SAML 2.0 assertion carrying exactly one
// signature, a direct child, enveloped, whose one Reference is el itself
// by identity, made by a trusted certificate valid at opts.Now; and
// returns the assertion as read from a re-parse of its verified canonical
// form. It does not check times or audience: see Check and AudienceOK.
func Verify(el *etree.Element, opts VerifyOptions) (*Assertion, error) {
	if el == nil || el.Tag != "Assertion" || el.NamespaceURI() != NamespaceAssertion {
		return nil, fmt.Errorf("not a SAML 2.0 Assertion: %w", ErrMalformed)
	}
	id := el.SelectAttrValue("ID", "")
	if id == "" || el.SelectAttrValue("Version", "") != "2.0" {
		return nil, fmt.Errorf("assertion without ID or Version 2.0: %w", ErrMalformed)
	}
	// Exactly one Signature anywhere inside, and it is a child of the
	// assertion: XSW variants hide a second, or move the real one into an
	// Advice or Extensions, so that one is verified and another acted on.
	var sigEl *etree.Element
	n := 0
	walk(el, func(e *etree.Element) {
		if e.Tag == "Signature" && e.NamespaceURI() == xmlsig.NamespaceDSig {
			n++
			sigEl = e
		}
	})
	switch {
	case n == 0:
		return nil, fmt.Errorf("assertion is not signed: %w", ErrUntrusted)
	case n > 1:
		return nil, fmt.Errorf("assertion holds %d signatures: %w", n, ErrSignature)
	case sigEl.Parent() != el:
		return nil, fmt.Errorf("the assertion's signature is not its child: %w", ErrSignature)
	}
	sig, err := xmlsig.Parse(sigEl, xmlsig.Options{Algorithms: opts.Algorithms, MaxReferences: 1})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	ref := sig.References[0]
	if !ref.Enveloped || ref.ID != id {
		return nil, fmt.Errorf("the signature's reference is not an enveloped one to the assertion %q: %w", id, ErrSignature)
	}
	idx := opts.IDs
	if idx == nil {
		root := el
		for root.Parent() != nil {
			root = root.Parent()
		}
		if idx, err = xmlsig.NewIDIndex(root); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSignature, err)
		}
	}
	if idx.Lookup(id) != el {
		return nil, fmt.Errorf("ID %q names another element than the assertion: %w", id, ErrSignature)
	}
	cert, err := chooseCert(sig.KeyInfo, opts.Trusted, opts.Now)
	if err != nil {
		return nil, err
	}
	covered, err := sig.Verify(idx, cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if len(covered) != 1 || covered[0] != el {
		return nil, fmt.Errorf("the signature covers another element: %w", ErrSignature)
	}
	canon, err := xmlsig.Canonicalize(el, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// From here on only the verified bytes are read.
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(canon); err != nil {
		return nil, fmt.Errorf("re-parsing the verified assertion: %v: %w", err, ErrMalformed)
	}
	a, err := read(doc.Root())
	if err != nil {
		return nil, err
	}
	a.Signer, a.Canonical = cert, canon
	return a, nil
}

// Check checks the validity window at now, allowing skew either way.
func (a *Assertion) Check(now time.Time, skew time.Duration) error {
	if !a.NotBefore.IsZero() && now.Add(skew).Before(a.NotBefore) {
		return fmt.Errorf("not before %s (now %s): %w", a.NotBefore, now, ErrNotYetValid)
	}
	if !now.Add(-skew).Before(a.NotOnOrAfter) {
		return fmt.Errorf("expired at %s (now %s): %w", a.NotOnOrAfter, now, ErrExpired)
	}
	return nil
}

// chooseCert returns the trusted certificate the signature is to be
// verified with: the one equal to KeyInfo's X509Certificate when KeyInfo
// carries one, else the only trusted one.
func chooseCert(keyInfo *etree.Element, trusted []*x509.Certificate, now time.Time) (*x509.Certificate, error) {
	var cert *x509.Certificate
	var named *x509.Certificate
	if keyInfo != nil {
		if xc := findDS(keyInfo, "X509Data", "X509Certificate"); xc != nil {
			c, err := parseB64Cert(xc.Text())
			if err != nil {
				return nil, fmt.Errorf("KeyInfo certificate: %v: %w", err, ErrMalformed)
			}
			named = c
		}
	}
	switch {
	case named != nil:
		for _, t := range trusted {
			if t.Equal(named) {
				cert = t
			}
		}
		if cert == nil {
			return nil, fmt.Errorf("signer %q is not a trusted certificate: %w", named.Subject, ErrUntrusted)
		}
	case len(trusted) == 1:
		cert = trusted[0]
	default:
		return nil, fmt.Errorf("the signature names no certificate and %d are trusted: %w", len(trusted), ErrUntrusted)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("signer certificate %q is not valid at %s: %w", cert.Subject, now, ErrUntrusted)
	}
	return cert, nil
}

func findDS(el *etree.Element, path ...string) *etree.Element {
	for _, p := range path {
		var next *etree.Element
		for _, c := range el.ChildElements() {
			if c.Tag == p && c.NamespaceURI() == xmlsig.NamespaceDSig {
				next = c
				break
			}
		}
		if next == nil {
			return nil
		}
		el = next
	}
	return el
}

func parseB64Cert(s string) (*x509.Certificate, error) {
	der, err := xmlsig.DecodeBase64(s)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func walk(el *etree.Element, fn func(*etree.Element)) {
	fn(el)
	for _, c := range el.ChildElements() {
		walk(c, fn)
	}
}

// read reads the re-parsed, verified assertion.
func read(root *etree.Element) (*Assertion, error) {
	a := &Assertion{ID: root.SelectAttrValue("ID", ""), Attributes: map[string][]string{}}
	var err error
	if a.IssueInstant, err = parseTime(root.SelectAttrValue("IssueInstant", "")); err != nil {
		return nil, fmt.Errorf("IssueInstant: %v: %w", err, ErrMalformed)
	}
	var seenIssuer, seenSubject, seenConditions bool
	for i, c := range root.ChildElements() {
		if c.NamespaceURI() == xmlsig.NamespaceDSig && c.Tag == "Signature" {
			continue
		}
		if c.NamespaceURI() != NamespaceAssertion {
			return nil, fmt.Errorf("unexpected {%s}%s in the assertion: %w", c.NamespaceURI(), c.Tag, ErrMalformed)
		}
		switch c.Tag {
		case "Issuer":
			if seenIssuer || i != 0 {
				return nil, fmt.Errorf("the Issuer must come first, once: %w", ErrMalformed)
			}
			seenIssuer = true
			if a.Issuer, err = pureText(c); err != nil {
				return nil, err
			}
		case "Subject":
			if seenSubject {
				return nil, fmt.Errorf("two Subjects: %w", ErrMalformed)
			}
			seenSubject = true
			if err := readSubject(a, c); err != nil {
				return nil, err
			}
		case "Conditions":
			if seenConditions {
				return nil, fmt.Errorf("two Conditions: %w", ErrMalformed)
			}
			seenConditions = true
			if err := readConditions(a, c); err != nil {
				return nil, err
			}
		case "AuthnStatement":
			if a.AuthnContext != "" {
				return nil, fmt.Errorf("two AuthnStatements: %w", ErrMalformed)
			}
			a.AuthnInstant, _ = parseTime(c.SelectAttrValue("AuthnInstant", ""))
			if ref := child(child(c, "AuthnContext"), "AuthnContextClassRef"); ref != nil {
				if a.AuthnContext, err = pureText(ref); err != nil {
					return nil, err
				}
			}
			if a.AuthnContext == "" {
				a.AuthnContext = "unspecified"
			}
		case "AttributeStatement":
			for _, at := range c.ChildElements() {
				if at.Tag != "Attribute" || at.NamespaceURI() != NamespaceAssertion {
					return nil, fmt.Errorf("unexpected %s in AttributeStatement: %w", at.Tag, ErrMalformed)
				}
				name := at.SelectAttrValue("Name", "")
				if name == "" {
					return nil, fmt.Errorf("an Attribute without Name: %w", ErrMalformed)
				}
				for _, v := range at.ChildElements() {
					if v.Tag != "AttributeValue" || v.NamespaceURI() != NamespaceAssertion {
						continue
					}
					s, err := pureText(v)
					if err != nil {
						return nil, err
					}
					a.Attributes[name] = append(a.Attributes[name], s)
				}
			}
		case "Advice", "Statement", "AuthzDecisionStatement":
			// Allowed by the schema; nothing of them is used.
		default:
			return nil, fmt.Errorf("unexpected saml2:%s in the assertion: %w", c.Tag, ErrMalformed)
		}
	}
	switch {
	case !seenIssuer || a.Issuer == "":
		return nil, fmt.Errorf("assertion without Issuer: %w", ErrMalformed)
	case !seenSubject || a.NameID == "":
		return nil, fmt.Errorf("assertion without Subject NameID: %w", ErrMalformed)
	case !seenConditions || a.NotOnOrAfter.IsZero():
		return nil, fmt.Errorf("assertion without Conditions NotOnOrAfter: %w", ErrMalformed)
	}
	return a, nil
}

func readSubject(a *Assertion, subj *etree.Element) error {
	for _, c := range subj.ChildElements() {
		if c.NamespaceURI() != NamespaceAssertion {
			return fmt.Errorf("unexpected %s in Subject: %w", c.Tag, ErrMalformed)
		}
		switch c.Tag {
		case "NameID":
			if a.NameID != "" {
				return fmt.Errorf("two NameIDs: %w", ErrMalformed)
			}
			s, err := pureText(c)
			if err != nil {
				return err
			}
			if s = strings.TrimSpace(s); s == "" {
				return fmt.Errorf("empty NameID: %w", ErrMalformed)
			}
			a.NameID, a.NameIDFormat = s, c.SelectAttrValue("Format", NameIDUnspecified)
		case "SubjectConfirmation":
			conf := Confirmation{Method: c.SelectAttrValue("Method", "")}
			if scd := child(c, "SubjectConfirmationData"); scd != nil {
				var err error
				if v := scd.SelectAttrValue("NotOnOrAfter", ""); v != "" {
					if conf.NotOnOrAfter, err = parseTime(v); err != nil {
						return fmt.Errorf("SubjectConfirmationData NotOnOrAfter: %v: %w", err, ErrMalformed)
					}
				}
				if v := scd.SelectAttrValue("NotBefore", ""); v != "" {
					if conf.NotBefore, err = parseTime(v); err != nil {
						return fmt.Errorf("SubjectConfirmationData NotBefore: %v: %w", err, ErrMalformed)
					}
				}
				conf.Recipient = scd.SelectAttrValue("Recipient", "")
				conf.Address = scd.SelectAttrValue("Address", "")
				conf.InResponseTo = scd.SelectAttrValue("InResponseTo", "")
				if ki := findDS(scd, "KeyInfo"); ki != nil {
					if conf.Certificate, conf.Key, err = keyInfoKey(ki); err != nil {
						return err
					}
				}
			}
			if conf.Method == MethodHolderOfKey && conf.Key == nil {
				return fmt.Errorf("holder-of-key confirmation without a key: %w", ErrMalformed)
			}
			a.Confirmations = append(a.Confirmations, conf)
		case "BaseID", "EncryptedID":
			return fmt.Errorf("a Subject %s is not supported: %w", c.Tag, ErrMalformed)
		default:
			return fmt.Errorf("unexpected %s in Subject: %w", c.Tag, ErrMalformed)
		}
	}
	return nil
}

// keyInfoKey reads a holder-of-key: an X509Certificate, or an RSA or EC
// KeyValue.
func keyInfoKey(ki *etree.Element) (*x509.Certificate, crypto.PublicKey, error) {
	if xc := findDS(ki, "X509Data", "X509Certificate"); xc != nil {
		c, err := parseB64Cert(xc.Text())
		if err != nil {
			return nil, nil, fmt.Errorf("holder-of-key certificate: %v: %w", err, ErrMalformed)
		}
		return c, c.PublicKey, nil
	}
	if rv := findDS(ki, "KeyValue", "RSAKeyValue"); rv != nil {
		m, err1 := xmlsig.DecodeBase64(textOf(findDS(rv, "Modulus")))
		e, err2 := xmlsig.DecodeBase64(textOf(findDS(rv, "Exponent")))
		if err1 != nil || err2 != nil || len(m) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, nil, fmt.Errorf("holder-of-key RSAKeyValue: %w", ErrMalformed)
		}
		return nil, &rsa.PublicKey{N: new(big.Int).SetBytes(m), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	return nil, nil, fmt.Errorf("holder-of-key KeyInfo holds neither an X509Certificate nor an RSAKeyValue: %w", ErrMalformed)
}

func textOf(el *etree.Element) string {
	if el == nil {
		return ""
	}
	return el.Text()
}

func readConditions(a *Assertion, cond *etree.Element) error {
	var err error
	if v := cond.SelectAttrValue("NotBefore", ""); v != "" {
		if a.NotBefore, err = parseTime(v); err != nil {
			return fmt.Errorf("the Conditions NotBefore: %v: %w", err, ErrMalformed)
		}
	}
	if a.NotOnOrAfter, err = parseTime(cond.SelectAttrValue("NotOnOrAfter", "")); err != nil {
		return fmt.Errorf("the Conditions NotOnOrAfter: %v: %w", err, ErrMalformed)
	}
	for _, c := range cond.ChildElements() {
		if c.NamespaceURI() != NamespaceAssertion {
			return fmt.Errorf("unexpected %s in Conditions: %w", c.Tag, ErrMalformed)
		}
		switch c.Tag {
		case "AudienceRestriction":
			var auds []string
			for _, au := range c.ChildElements() {
				s, err := pureText(au)
				if err != nil {
					return err
				}
				auds = append(auds, strings.TrimSpace(s))
			}
			a.Audiences = append(a.Audiences, auds)
		case "OneTimeUse":
			if a.OneTimeUse {
				return fmt.Errorf("two OneTimeUse conditions: %w", ErrMalformed)
			}
			a.OneTimeUse = true
		case "ProxyRestriction":
		default:
			// SAML core 2.5.1: a condition we do not understand makes the
			// assertion indeterminate, which must be treated as invalid.
			return fmt.Errorf("unknown condition %s: %w", c.Tag, ErrMalformed)
		}
	}
	return nil
}

// pureText returns el's text, refusing anything but character data in it:
// after canonicalization no comment is left, but a processing instruction
// or an element would split the text, and whoever reads only its first
// part gets another identity.
func pureText(el *etree.Element) (string, error) {
	var b strings.Builder
	for _, t := range el.Child {
		cd, ok := t.(*etree.CharData)
		if !ok {
			return "", fmt.Errorf("%s holds markup, not only text: %w", el.Tag, ErrMalformed)
		}
		b.WriteString(cd.Data)
	}
	return b.String(), nil
}

func child(el *etree.Element, local string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == NamespaceAssertion {
			return c
		}
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("missing time")
	}
	return time.Parse(time.RFC3339Nano, s)
}
