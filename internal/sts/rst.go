package sts

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/wstrust"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// WS-Trust 1.3 names (package wstrust, shared with relying parties).
const (
	NamespaceWST = wstrust.NamespaceWST
	wstBase      = NamespaceWST + "/"

	RequestIssue    = wstrust.RequestIssue
	RequestRenew    = wstrust.RequestRenew
	RequestCancel   = wstrust.RequestCancel
	RequestValidate = wstrust.RequestValidate

	KeyTypeBearer    = wstrust.KeyTypeBearer
	KeyTypePublicKey = wstrust.KeyTypePublicKey
	KeyTypeSymmetric = wstrust.KeyTypeSymmetric

	TokenTypeStatus = wstrust.TokenTypeStatus
	StatusValid     = wstrust.StatusValid
	StatusInvalid   = wstrust.StatusInvalid

	// TokenTypeSAML2Assertion is the ADFS-style SAML 2.0 token type,
	// accepted as a synonym of saml2.TokenTypeSAML20.
	TokenTypeSAML2Assertion = saml2.NamespaceAssertion

	nsWSP     = "http://schemas.xmlsoap.org/ws/2004/09/policy"
	nsWSP15   = "http://www.w3.org/ns/ws-policy"
	nsWSA     = "http://www.w3.org/2005/08/addressing"
	nsWSA2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWSSE    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSSE11  = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
	nsWSU     = xmlsig.NamespaceWSU

	valueX509v3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
)

// rst is a parsed wst:RequestSecurityToken.
type rst struct {
	context     string
	requestType string
	tokenType   string
	keyType     string
	appliesTo   string
	expires     time.Time // requested wst:Lifetime/wsu:Expires, zero if none
	useKey      *x509.Certificate
	// target is the Assertion of ValidateTarget, RenewTarget or
	// CancelTarget; targetID a SAMLID KeyIdentifier instead.
	target   *etree.Element
	targetID string
}

// errRequest is an RST the STS cannot act on: wst:InvalidRequest.
type errRequest struct{ msg string }

func (e *errRequest) Error() string { return "sts: invalid request: " + e.msg }

func invalid(format string, args ...any) error { return &errRequest{fmt.Sprintf(format, args...)} }

// maxRSTChildren bounds the children of one RST.
const maxRSTChildren = 32

// parseRST reads el, which must be a WS-Trust 1.3 RequestSecurityToken.
// Every child it knows it reads once; a second one is refused, unknown
// WS-Trust children are refused, and extension elements in other
// namespaces are ignored as the schema's xs:any allows.
func parseRST(el *etree.Element) (*rst, error) {
	if el == nil || el.Tag != "RequestSecurityToken" || el.NamespaceURI() != NamespaceWST {
		return nil, invalid("the Body does not hold a WS-Trust 1.3 RequestSecurityToken")
	}
	r := &rst{context: el.SelectAttrValue("Context", "")}
	kids := el.ChildElements()
	if len(kids) > maxRSTChildren {
		return nil, invalid("RequestSecurityToken with %d children", len(kids))
	}
	seen := map[string]bool{}
	for _, k := range kids {
		ns := k.NamespaceURI()
		if ns == nsWSP || ns == nsWSP15 {
			if k.Tag != "AppliesTo" {
				continue
			}
		} else if ns != NamespaceWST {
			continue
		}
		if seen[k.Tag] {
			return nil, invalid("%s given twice", k.Tag)
		}
		seen[k.Tag] = true
		var err error
		switch k.Tag {
		case "RequestType":
			r.requestType = strings.TrimSpace(k.Text())
		case "TokenType":
			r.tokenType = strings.TrimSpace(k.Text())
		case "KeyType":
			r.keyType = strings.TrimSpace(k.Text())
		case "AppliesTo":
			if r.appliesTo, err = appliesTo(k); err != nil {
				return nil, err
			}
		case "Lifetime":
			if ex := childNS(k, nsWSU, "Expires"); ex != nil {
				if r.expires, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(ex.Text())); err != nil {
					return nil, invalid("Lifetime Expires is not a date-time")
				}
			}
		case "UseKey":
			if r.useKey, err = useKey(k); err != nil {
				return nil, err
			}
		case "ValidateTarget", "RenewTarget", "CancelTarget":
			if r.target != nil || r.targetID != "" {
				return nil, invalid("more than one target")
			}
			if r.target, r.targetID, err = target(k); err != nil {
				return nil, err
			}
		case "Claims", "Entropy", "ComputedKeyAlgorithm", "KeySize", "Renewing", "SignatureAlgorithm",
			"EncryptionAlgorithm", "CanonicalizationAlgorithm", "AuthenticationType", "OnBehalfOf", "Forwardable", "Delegatable":
			// Known and not acted on: the STS issues what its config says.
		default:
			return nil, invalid("unsupported wst:%s", k.Tag)
		}
	}
	switch r.requestType {
	case RequestIssue, RequestRenew, RequestCancel, RequestValidate:
	case "":
		return nil, invalid("no RequestType")
	default:
		return nil, invalid("unsupported RequestType %q", r.requestType)
	}
	return r, nil
}

func appliesTo(el *etree.Element) (string, error) {
	for _, c := range el.ChildElements() {
		if c.Tag != "EndpointReference" || (c.NamespaceURI() != nsWSA && c.NamespaceURI() != nsWSA2004) {
			continue
		}
		if a := childNS(c, c.NamespaceURI(), "Address"); a != nil {
			if s := strings.TrimSpace(a.Text()); s != "" {
				return s, nil
			}
		}
	}
	return "", invalid("AppliesTo without an EndpointReference Address")
}

// useKey reads the key the requester wants bound: a BinarySecurityToken
// (X509v3) or a ds:KeyInfo with an X509Certificate.
func useKey(el *etree.Element) (*x509.Certificate, error) {
	kids := el.ChildElements()
	if len(kids) != 1 {
		return nil, invalid("UseKey must hold one key")
	}
	k := kids[0]
	var b64 string
	switch {
	case k.Tag == "BinarySecurityToken" && k.NamespaceURI() == nsWSSE:
		if vt := k.SelectAttrValue("ValueType", ""); vt != valueX509v3 {
			return nil, invalid("UseKey token ValueType %q is not X509v3", vt)
		}
		b64 = k.Text()
	case k.Tag == "KeyInfo" && k.NamespaceURI() == xmlsig.NamespaceDSig:
		xd := childNS(k, xmlsig.NamespaceDSig, "X509Data")
		xc := childNS(xd, xmlsig.NamespaceDSig, "X509Certificate")
		if xc == nil {
			return nil, invalid("UseKey KeyInfo without X509Certificate")
		}
		b64 = xc.Text()
	default:
		return nil, invalid("UseKey holds %s, not a BinarySecurityToken or KeyInfo", k.Tag)
	}
	der, err := xmlsig.DecodeBase64(b64)
	if err != nil {
		return nil, invalid("UseKey certificate is not base64")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, invalid("UseKey certificate: %v", err)
	}
	return c, nil
}

// target reads a Validate, Renew or Cancel target: a SAML 2.0 assertion, or
// a SecurityTokenReference naming one by its ID (Cancel).
func target(el *etree.Element) (*etree.Element, string, error) {
	kids := el.ChildElements()
	if len(kids) != 1 {
		return nil, "", invalid("%s must hold one token", el.Tag)
	}
	k := kids[0]
	switch {
	case k.Tag == "Assertion" && k.NamespaceURI() == saml2.NamespaceAssertion:
		return k, "", nil
	case k.Tag == "SecurityTokenReference" && k.NamespaceURI() == nsWSSE:
		ki := childNS(k, nsWSSE, "KeyIdentifier")
		if ki == nil || ki.SelectAttrValue("ValueType", "") != saml2.ValueTypeSAMLID {
			return nil, "", invalid("%s reference is not a SAMLID KeyIdentifier", el.Tag)
		}
		id := strings.TrimSpace(ki.Text())
		if id == "" || len(id) > 128 {
			return nil, "", invalid("%s reference without an ID", el.Tag)
		}
		return nil, id, nil
	}
	return nil, "", invalid("%s holds %s, not a SAML 2.0 assertion", el.Tag, k.Tag)
}

func childNS(el *etree.Element, ns, local string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}
