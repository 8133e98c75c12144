// Package wssecurity is the "wssecurity" policy: it checks the WS-Security
// 1.1 header of SOAP requests at the gateway, before the message reaches
// the service, with the WS-I Basic Security Profile's rules: Timestamp
// freshness, UsernameToken (PasswordText and PasswordDigest, with nonces
// remembered in the shared store so that a replay is refused on every
// instance), X.509 tokens validated against the route's trust store, and
// XML signatures (internal/xmlsig) whose coverage of the Body and Timestamp
// is checked by position, which defeats signature wrapping.
//
// On success the caller becomes the exchange's Principal and, unless
// configured otherwise, the Security header is removed from the message
// forwarded upstream.
package wssecurity

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/wsse"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// Unit registers the wssecurity policy.
var Unit = policy.Unit{Name: "wssecurity", New: New}

// Namespaces and URIs of WSS 1.1 and its token profiles.
const (
	NamespaceWSSE   = wsse.NamespaceWSSE
	NamespaceWSSE11 = wsse.NamespaceWSSE11
	NamespaceWSU    = wsse.NamespaceWSU
	NamespaceSOAP11 = wsse.NamespaceSOAP11
	NamespaceSOAP12 = wsse.NamespaceSOAP12

	wssBase        = "http://docs.oasis-open.org/wss/2004/01/"
	encBase64      = wssBase + "oasis-200401-wss-soap-message-security-1.0#Base64Binary"
	passwordText   = wssBase + "oasis-200401-wss-username-token-profile-1.0#PasswordText"
	passwordDigest = wssBase + "oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
	valueX509v3    = wssBase + "oasis-200401-wss-x509-token-profile-1.0#X509v3"
	valuePKIPath   = wssBase + "oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1"
	valueSKI       = wssBase + "oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
	valueThumbSHA1 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"

	actorNext11  = "http://schemas.xmlsoap.org/soap/actor/next"
	roleNext12   = "http://www.w3.org/2003/05/soap-envelope/role/next"
	roleUltimate = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
)

// Fault codes (WSS 1.1 section 12), the Denial codes of this policy
// (package wsse, shared with the saml policy and the STS).
const (
	CodeUnsupportedSecurityToken = wsse.CodeUnsupportedSecurityToken
	CodeUnsupportedAlgorithm     = wsse.CodeUnsupportedAlgorithm
	CodeInvalidSecurity          = wsse.CodeInvalidSecurity
	CodeInvalidSecurityToken     = wsse.CodeInvalidSecurityToken
	CodeFailedAuthentication     = wsse.CodeFailedAuthentication
	CodeFailedCheck              = wsse.CodeFailedCheck
	CodeSecurityTokenUnavailable = wsse.CodeSecurityTokenUnavailable
	CodeMessageExpired           = wsse.CodeMessageExpired
)

// ErrDenied is wrapped by the internal cause of every Denial of this
// policy.
var ErrDenied = errors.New("wssecurity: refused")

// fault returns the Denial of code (wsse.Fault) wrapping ErrDenied.
func fault(code string, format string, args ...any) *policy.Denial {
	return wsse.Fault(ErrDenied, code, format, args...)
}

// Policy checks the WS-Security header of SOAP requests. It is immutable
// apart from its caches and safe for concurrent use.
type Policy struct {
	s      *settings
	now    func() time.Time
	store  store.Store
	chains chainCache
	tokens tokenCache
	// dummy is compared against when the user is unknown, so that an
	// unknown user costs what a wrong password costs.
	dummy []byte
}

var _ policy.Policy = (*Policy)(nil)

// New builds the policy from cfg (see Config). It uses env.Clock() as its
// clock and env.StateStore() for the nonces of UsernameTokens, the
// signature replay cache and decryption keys kept in the store (without
// a gateway store, a process-local memory store, which refuses replays
// only on this instance). It holds no resources to Close.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	return Build(cfg, env)
}

// Build is New returning the concrete policy, for users of Verify outside
// a route's chain (the STS authenticating its requests).
func Build(cfg *config.Node, env *policy.Env) (*Policy, error) {
	st := env.StateStore()
	s, err := decode(cfg, st)
	if err != nil {
		return nil, err
	}
	return &Policy{s: s, now: env.Clock(), store: st, dummy: make([]byte, 32)}, nil
}

// message is one parsed request.
type message struct {
	doc      *etree.Document
	envelope *etree.Element
	header   *etree.Element // nil without Header
	body     *etree.Element
	soap12   bool
	ids      *xmlsig.IDIndex
	security *etree.Element // the gateway's Security header
	secIndex int            // its position among the Header's elements

	timestamp *etree.Element
	ut        *etree.Element
	bsts      []*etree.Element
	signature *etree.Element

	// Decryption (encryption.go): whether anything was decrypted, the
	// signature verified before decryption, the EncryptedData each
	// decrypted element came from, every decrypted node, and whether the
	// Body's content was decrypted.
	enc           bool
	decrypted     bool
	early         *earlySig
	origin        map[*etree.Element][]*etree.Element
	plain         map[etree.Token]bool
	bodyDecrypted bool
	// sealed are the parts that arrived encrypted (reencrypt.go).
	sealed sealedParts
}

// Apply checks the request's WS-Security header. It returns a *Denial with
// a wsse fault code (see the package's Code constants) when the message is
// refused, a 413 Denial when it is larger than max_body_bytes, and another
// error only when the nonce store fails (the request fails closed). A
// message it decrypted is then checked by every policy.PlaintextCheck an
// earlier policy registered (xmlguard's limits and allow-list), whose
// Denial it returns as is.
func (p *Policy) Apply(ctx context.Context, ex *policy.Exchange) error {
	body, err := ex.Body(p.s.maxBodyBytes)
	if err != nil {
		return err
	}
	// The tree xmlguard built of these very bytes, when it ran before us:
	// parsing is most of what a message costs, and doing it twice buys
	// nothing (SetBody clears it, so it is never a tree of other bytes).
	var doc *etree.Document
	if ex.SOAP != nil {
		doc = ex.SOAP.Doc
	}
	res, sealed, tree, err := p.verify(ctx, body, ex.TLS, doc)
	if err != nil {
		return err
	}
	ex.Principal = res.Principal
	if !p.s.keepHeader || res.Decrypted {
		ex.SetBody(res.Message)
	}
	if res.Decrypted {
		// The policies before this one (xmlguard) saw only ciphertext:
		// their checks run again on the plaintext, the whole message as
		// later policies and the upstream receive it, and refuse with
		// their own denial rather than the uniform decryption fault. That
		// distinction is no oracle: it is reached only after every
		// EncryptedData decrypted and authenticated (GCM's tag; CBC only
		// under a signature verified over the ciphertext first) and the
		// message passed every check above, so it says nothing about
		// padding, MAC or key validity; a sender who gets here chose the
		// plaintext and learns only what the route's limits are, as it
		// would sending that plaintext in clear.
		for _, c := range ex.PlaintextChecks() {
			if err := c.CheckPlaintext(ctx, ex, res.Message); err != nil {
				return err
			}
		}
	}
	if p.s.enc != nil && p.s.enc.reenc != nil && !sealed.empty() {
		// Encrypted again in FinishRequest, once the chain has seen the
		// plaintext.
		ex.SetValue(p, &pending{parts: sealed, sent: res.Message, doc: tree})
	}
	return nil
}

// Result is what Verify proved about a message (wsse.Result).
type Result = wsse.Result

// Verify checks the WS-Security header of msg exactly as Apply checks a
// request's (tls says whether msg came over TLS, for PasswordText), spends
// its nonce and signature in the replay cache, and returns what it proved.
// It returns a *policy.Denial with a wsse code when the message is
// refused, another error only when the replay cache fails. It is how code
// outside a route's chain (the STS) authenticates a SOAP message without
// forking these rules.
func (p *Policy) Verify(ctx context.Context, msg []byte, tls bool) (*Result, error) {
	res, _, _, err := p.verify(ctx, msg, tls, nil)
	return res, err
}

// verify is Verify on msg, or on doc when it is not nil: the tree of msg
// that an earlier policy parsed (and checked with xmlscan, which refuses
// more than parse does). The same checks run on either. It also returns
// the parts that arrived encrypted and, for a decrypted message, the tree
// the forwarded message was written from.
func (p *Policy) verify(ctx context.Context, msg []byte, tls bool, doc *etree.Document) (*Result, sealedParts, *etree.Document, error) {
	if int64(len(msg)) > p.s.maxBodyBytes {
		return nil, sealedParts{}, nil, fault(CodeInvalidSecurity, "message of %d bytes, more than max_body_bytes", len(msg))
	}
	body := msg
	m, d := p.parse(body, doc)
	if d != nil {
		return nil, sealedParts{}, nil, d
	}
	now := p.now()
	if d := p.decrypt(m, now); d != nil {
		return nil, sealedParts{}, nil, d
	}
	if m.timestamp == nil {
		if p.s.tsRequired {
			return nil, sealedParts{}, nil, fault(CodeInvalidSecurity, "no Timestamp in the Security header")
		}
	} else if d := p.checkTimestamp(m.timestamp, now); d != nil {
		return nil, sealedParts{}, nil, d
	}

	var user string
	var nonce []byte
	if m.ut != nil {
		if p.s.ut == nil {
			return nil, sealedParts{}, nil, fault(CodeUnsupportedSecurityToken, "UsernameToken sent but username_token is not configured")
		}
		if user, nonce, d = p.checkUsernameToken(m.ut, now, tls); d != nil {
			return nil, sealedParts{}, nil, d
		}
	}
	var cert *x509.Certificate
	var tok *token
	var sig *xmlsig.Signature
	if m.signature != nil {
		if p.s.x509 == nil {
			return nil, sealedParts{}, nil, fault(CodeUnsupportedSecurityToken, "Signature sent but x509 is not configured")
		}
		if tok, sig, d = p.checkSignature(m, now); d != nil {
			return nil, sealedParts{}, nil, d
		}
		cert = tok.cert
	}
	switch {
	case p.s.require == requireUsername && user == "":
		return nil, sealedParts{}, nil, fault(CodeFailedAuthentication, "no UsernameToken, and require is username_token")
	case p.s.require == requireX509 && cert == nil:
		return nil, sealedParts{}, nil, fault(CodeFailedAuthentication, "no Signature, and require is x509")
	case p.s.require == requireAll && (p.s.ut != nil && user == "" || p.s.x509 != nil && cert == nil):
		return nil, sealedParts{}, nil, fault(CodeFailedAuthentication, "require is all, and not every configured token authenticated")
	case user == "" && cert == nil:
		return nil, sealedParts{}, nil, fault(CodeFailedAuthentication, "no UsernameToken and no Signature")
	}
	// The nonce is spent last, once everything else holds, so that a
	// message refused for another reason does not burn it and junk never
	// reaches the store.
	// The nonce's key is its decoded bytes, never its text: one nonce
	// has many base64 spellings (line breaks, padding bits) and each
	// would otherwise be a fresh nonce.
	if nonce != nil {
		if d, err := p.spend(ctx, "nonce:wss:"+base64.RawStdEncoding.EncodeToString(nonce)); d != nil || err != nil {
			return nil, sealedParts{}, nil, firstErr(d, err, "nonce of user %q", user)
		}
	}
	if cert != nil && p.s.sigReplay {
		// A signed message without a nonce can be replayed as a whole
		// within its window. Its key is what the signature covers (the
		// canonical SignedInfo, shared with the saml policy and the STS),
		// not the SignatureValue's text, which can be re-spelled
		// (base64 line breaks, padding bits) or, for ECDSA, re-signed as
		// (r, n-s) without the key. A message without a (signed)
		// Timestamp is remembered for the same window: it has no end of
		// its own, so that is the best a bounded cache can do.
		if err := xmlsig.Spend(ctx, p.store, sig, p.s.maxAge+p.s.futureSkew); err != nil {
			if !errors.Is(err, xmlsig.ErrReplay) {
				return nil, sealedParts{}, nil, fmt.Errorf("wssecurity: %w", err)
			}
			return nil, sealedParts{}, nil, firstErr(fault(CodeFailedAuthentication, "replay"), nil, "a signature over the same SignedInfo (signer %q)", cert.Subject)
		}
	}

	pr := &policy.Principal{Claims: map[string]any{}}
	if cert != nil {
		desc := tok.description()
		pr.Subject, pr.Method = desc.subject, "wss-x509"
		pr.Claims["x509_subject"] = desc.subject
		pr.Claims["x509_issuer"] = desc.issuer
		pr.Claims["x509_serial"] = desc.serial
		pr.Claims["x509_sha256"] = desc.sha256
	}
	if user != "" {
		// The user is who calls; a certificate beside it is the sender
		// vouching for the message, kept in the claims.
		pr.Subject, pr.Method = user, "wss-username"
		pr.Claims["wss_username"] = user
	}
	pr.Consumer = pr.Subject
	if m.bodyDecrypted {
		// For rules that want a confidential operation encrypted (expr:
		// principal.claims.wss_encrypted_body).
		pr.Claims["wss_encrypted_body"] = true
	}
	res := &Result{Principal: pr, Certificate: cert, Message: body}
	if m.decrypted {
		nb, err := p.plaintext(m)
		if err != nil {
			return nil, sealedParts{}, nil, fmt.Errorf("wssecurity: writing the decrypted message: %w", err)
		}
		res.Message, res.Decrypted = nb, true
	} else if !p.s.keepHeader {
		nb, err := removeElement(body, m)
		if err != nil {
			return nil, sealedParts{}, nil, fmt.Errorf("wssecurity: removing the Security header: %w", err)
		}
		res.Message = nb
	}
	if !m.decrypted {
		return res, m.sealed, nil, nil
	}
	return res, m.sealed, m.doc, nil
}

// spend records key in the store for the freshness window; a key already
// there is a replay.
func (p *Policy) spend(ctx context.Context, key string) (*policy.Denial, error) {
	ok, err := p.store.SetNX(ctx, key, []byte{1}, p.s.maxAge+p.s.futureSkew)
	if err != nil {
		return nil, fmt.Errorf("wssecurity: replay cache: %w", err)
	}
	if !ok {
		return fault(CodeFailedAuthentication, "replay"), nil
	}
	return nil, nil
}

func firstErr(d *policy.Denial, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	d.Err = fmt.Errorf("%w: %s was used before: replay", ErrDenied, fmt.Sprintf(format, args...))
	return d
}

// maxDepth bounds the element nesting of a message; SOAP payloads are
// shallow, and deep nesting only costs us stack and time.
const maxDepth = 64

// parseLimits are the firewall limits parse applies when no xmlguard ran
// first: only the depth bound of old and max_body_bytes; the others as
// large as the body, so they refuse nothing a body of that size can hold.
func (p *Policy) parseLimits() xmlscan.Limits {
	n := p.s.maxBodyBytes
	big := int(min(n, math.MaxInt32))
	return xmlscan.Limits{
		MaxBytes:               n,
		MaxDepth:               maxDepth,
		MaxElements:            big,
		MaxAttributes:          big,
		MaxNamespaceDecls:      big,
		MaxTotalNamespaceDecls: big,
		MaxTextBytes:           big,
		MaxAttributeBytes:      big,
		MaxNameBytes:           big,
	}
}

// maxSecurityChildren bounds the tokens of one Security header.
const maxSecurityChildren = 16

// parse refuses DTDs and processing instructions, parses the message
// (unless doc, its tree, is given) and finds its envelope parts and the
// gateway's Security header.
func (p *Policy) parse(body []byte, doc *etree.Document) (*message, *policy.Denial) {
	if err := checkProlog(body); err != nil {
		return nil, fault(CodeInvalidSecurity, "%v", err)
	}
	m := &message{doc: doc, enc: p.s.enc != nil}
	if doc == nil {
		// No firewall ran before us: its well-formedness and namespace
		// rules (duplicate attributes, undeclared prefixes, no DTD) hold
		// here too, in the pass that builds the tree, under size limits
		// no tighter than max_body_bytes. The tree's attribute values are
		// normalized as XML 1.0 §3.3.3 says (etree alone does not):
		// literal tabs and line breaks in them are spaces to the service
		// and to the signer's c14n (xmlsec1, Santuario).
		var err error
		if m.doc, err = xmlscan.Parse(body, p.parseLimits()); err != nil {
			return nil, fault(CodeInvalidSecurity, "parsing the message: %v", err)
		}
	}
	var root *etree.Element
	for _, t := range m.doc.Child {
		switch t := t.(type) {
		case *etree.Element:
			if root != nil {
				return nil, fault(CodeInvalidSecurity, "more than one document element")
			}
			root = t
		case *etree.Directive:
			return nil, fault(CodeInvalidSecurity, "a DTD or other directive")
		case *etree.ProcInst:
			if t.Target != "xml" {
				return nil, fault(CodeInvalidSecurity, "processing instruction %q", t.Target)
			}
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, fault(CodeInvalidSecurity, "text outside the envelope")
			}
		}
	}
	if root == nil || root.Tag != "Envelope" {
		return nil, fault(CodeInvalidSecurity, "no SOAP Envelope")
	}
	switch root.NamespaceURI() {
	case NamespaceSOAP11:
	case NamespaceSOAP12:
		m.soap12 = true
	default:
		return nil, fault(CodeInvalidSecurity, "Envelope in namespace %q", root.NamespaceURI())
	}
	m.envelope = root
	ns := root.NamespaceURI()
	// Exactly [Header] Body, by position: the Body the service will act on
	// is the Envelope's one Body child, and no other.
	kids := root.ChildElements()
	if len(kids) > 0 && kids[0].Tag == "Header" && kids[0].NamespaceURI() == ns {
		m.header = kids[0]
		kids = kids[1:]
	}
	if len(kids) != 1 || kids[0].Tag != "Body" || kids[0].NamespaceURI() != ns {
		return nil, fault(CodeInvalidSecurity, "the Envelope must hold an optional Header and then exactly one Body")
	}
	m.body = kids[0]
	var err error
	if m.ids, err = xmlsig.NewIDIndex(root); err != nil {
		return nil, fault(CodeInvalidSecurity, "%v", err)
	}
	if m.header == nil {
		return nil, fault(CodeInvalidSecurity, "no SOAP Header, so no Security header")
	}
	for i, h := range m.header.ChildElements() {
		if h.Tag != "Security" || h.NamespaceURI() != NamespaceWSSE {
			continue
		}
		mine, err := p.forUs(h, m.soap12)
		if err != nil {
			return nil, fault(CodeInvalidSecurity, "%v", err)
		}
		if !mine {
			continue
		}
		if m.security != nil {
			return nil, fault(CodeInvalidSecurity, "more than one Security header for this node")
		}
		m.security, m.secIndex = h, i
	}
	if m.security == nil {
		return nil, fault(CodeInvalidSecurity, "no Security header for this node")
	}
	if d := m.collect(); d != nil {
		return nil, d
	}
	return m, nil
}

// forUs reports whether a Security header targets this gateway, and checks
// its mustUnderstand.
func (p *Policy) forUs(h *etree.Element, soap12 bool) (bool, error) {
	env := NamespaceSOAP11
	actorAttr := "actor"
	if soap12 {
		env, actorAttr = NamespaceSOAP12, "role"
	}
	actor := ""
	for i := range h.Attr {
		a := &h.Attr[i]
		if a.Space == "" || a.NamespaceURI() != env {
			continue
		}
		switch a.Key {
		case actorAttr:
			actor = a.Value
		case "mustUnderstand":
			switch a.Value {
			case "0", "1":
			case "true", "false":
				if !soap12 {
					return false, fmt.Errorf("mustUnderstand %q: SOAP 1.1 allows only 0 and 1", a.Value)
				}
			default:
				return false, fmt.Errorf("mustUnderstand %q", a.Value)
			}
		}
	}
	switch actor {
	case "", actorNext11, roleNext12, roleUltimate:
		return true, nil
	}
	return p.s.actors[actor], nil
}

// collect sorts the Security header's children.
func (m *message) collect() *policy.Denial {
	kids := m.security.ChildElements()
	if len(kids) > maxSecurityChildren {
		return fault(CodeInvalidSecurity, "Security header with %d children, more than %d", len(kids), maxSecurityChildren)
	}
	for _, k := range kids {
		ns := k.NamespaceURI()
		switch {
		case ns == NamespaceWSU && k.Tag == "Timestamp":
			if m.timestamp != nil {
				return fault(CodeInvalidSecurity, "more than one Timestamp")
			}
			m.timestamp = k
		case ns == NamespaceWSSE && k.Tag == "UsernameToken":
			if m.ut != nil {
				return fault(CodeInvalidSecurity, "more than one UsernameToken")
			}
			m.ut = k
		case ns == NamespaceWSSE && k.Tag == "BinarySecurityToken":
			m.bsts = append(m.bsts, k)
		case m.enc && isEnc(k):
			// Handled by decrypt, which runs collect again afterwards.
		case ns == xmlsig.NamespaceDSig && k.Tag == "Signature":
			if m.signature != nil {
				return fault(CodeInvalidSecurity, "more than one Signature")
			}
			m.signature = k
		default:
			// Encryption, SAML and other tokens: not supported, and an
			// unknown token is not silently ignored.
			return fault(CodeUnsupportedSecurityToken, "unsupported %s in the Security header", clark(k))
		}
	}
	return nil
}

func clark(el *etree.Element) string { return wsse.Clark(el) }

// checkProlog refuses DTDs (and with them entity expansion and XXE) and
// processing instructions before any parsing: byte scanning is cheap, and
// this does not depend on the XML firewall having run first. "<!" may only
// start a comment or a CDATA section; "<?" only the XML declaration at the
// very start.
func checkProlog(b []byte) error {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '<')
		if j < 0 {
			return nil
		}
		i += j
		if i+1 >= len(b) {
			return nil
		}
		switch b[i+1] {
		case '!':
			rest := b[i+2:]
			if !bytes.HasPrefix(rest, []byte("--")) && !bytes.HasPrefix(rest, []byte("[CDATA[")) {
				return errors.New("a DTD or declaration (<!...) is not allowed")
			}
		case '?':
			start := 0
			if bytes.HasPrefix(b, []byte("\xef\xbb\xbf")) {
				start = 3
			}
			if i != start || !bytes.HasPrefix(b[i:], []byte("<?xml ")) {
				return errors.New("processing instructions are not allowed")
			}
		}
		i++
	}
}

// utf8Only accepts the encodings whose bytes are UTF-8 (wsse.UTF8Only).
func utf8Only(charset string, r io.Reader) (io.Reader, error) { return wsse.UTF8Only(charset, r) }

// freshness is the policy's bounds on Timestamp and Created.
func (p *Policy) freshness() wsse.Freshness {
	return wsse.Freshness{MaxAge: p.s.maxAge, FutureSkew: p.s.futureSkew, Refused: ErrDenied}
}

// checkTimestamp checks a wsu:Timestamp (wsse.Freshness.CheckTimestamp).
func (p *Policy) checkTimestamp(ts *etree.Element, now time.Time) *policy.Denial {
	return p.freshness().CheckTimestamp(ts, now)
}

// CheckTimestamp checks a wsu:Timestamp element as the policy does. New
// code calls wsse.Freshness.CheckTimestamp, which this forwards to.
func CheckTimestamp(ts *etree.Element, now time.Time, maxAge, futureSkew time.Duration) *policy.Denial {
	return wsse.Freshness{MaxAge: maxAge, FutureSkew: futureSkew, Refused: ErrDenied}.CheckTimestamp(ts, now)
}

func (p *Policy) fresh(created, now time.Time, what string) *policy.Denial {
	return p.freshness().Fresh(created, now, what)
}

// parseUTC parses an xsd:dateTime in UTC (wsse.ParseUTC).
func parseUTC(s string) (time.Time, error) { return wsse.ParseUTC(s) }

// checkUsernameToken authenticates a UsernameToken and returns its user and
// the nonce to spend (nil if none).
func (p *Policy) checkUsernameToken(ut *etree.Element, now time.Time, tls bool) (string, []byte, *policy.Denial) {
	var username, password, nonceEl, created *etree.Element
	for _, k := range ut.ChildElements() {
		var slot **etree.Element
		switch ns := k.NamespaceURI(); {
		case ns == NamespaceWSSE && k.Tag == "Username":
			slot = &username
		case ns == NamespaceWSSE && k.Tag == "Password":
			slot = &password
		case ns == NamespaceWSSE && k.Tag == "Nonce":
			slot = &nonceEl
		case ns == NamespaceWSU && k.Tag == "Created":
			slot = &created
		default:
			return "", nil, fault(CodeInvalidSecurityToken, "unexpected %s in UsernameToken", clark(k))
		}
		if *slot != nil {
			return "", nil, fault(CodeInvalidSecurityToken, "UsernameToken holds %s twice", k.Tag)
		}
		*slot = k
	}
	if username == nil || password == nil {
		return "", nil, fault(CodeInvalidSecurityToken, "UsernameToken without Username or Password")
	}
	user := strings.TrimSpace(username.Text())
	var nonce []byte
	if nonceEl != nil {
		if enc := nonceEl.SelectAttrValue("EncodingType", encBase64); enc != encBase64 {
			return "", nil, fault(CodeInvalidSecurityToken, "Nonce EncodingType %q", enc)
		}
		var err error
		nonce, err = xmlsig.DecodeBase64(nonceEl.Text())
		if err != nil || len(nonce) < 8 || len(nonce) > 128 {
			return "", nil, fault(CodeInvalidSecurityToken, "Nonce is not base64 of 8 to 128 bytes")
		}
	}
	var createdText string
	if created != nil {
		createdText = created.Text()
		t, err := parseUTC(createdText)
		if err != nil {
			return "", nil, fault(CodeInvalidSecurityToken, "UsernameToken Created: %v", err)
		}
		if d := p.fresh(t, now, "UsernameToken"); d != nil {
			return "", nil, d
		}
	}
	secret, known := p.s.ut.users[user]
	if !known {
		secret = p.dummy
	}
	ok := false
	switch typ := password.SelectAttrValue("Type", passwordText); typ {
	case passwordDigest:
		if !p.s.ut.digest {
			return "", nil, fault(CodeUnsupportedSecurityToken, "PasswordDigest is not accepted")
		}
		if nonce == nil || created == nil {
			return "", nil, fault(CodeInvalidSecurityToken, "PasswordDigest without Nonce and Created")
		}
		got, err := xmlsig.DecodeBase64(password.Text())
		if err != nil {
			return "", nil, fault(CodeInvalidSecurityToken, "PasswordDigest is not base64")
		}
		want := PasswordDigest(nonce, createdText, secret)
		ok = subtle.ConstantTimeCompare(got, want[:]) == 1
	case passwordText:
		switch {
		case p.s.ut.text == textForbidden:
			return "", nil, fault(CodeUnsupportedSecurityToken, "PasswordText is forbidden")
		case p.s.ut.text == textTLSOnly && !tls:
			return "", nil, fault(CodeUnsupportedSecurityToken, "PasswordText over a connection without TLS")
		case p.s.ut.requireNonce && (nonce == nil || created == nil):
			return "", nil, fault(CodeInvalidSecurityToken, "PasswordText without Nonce and Created, and require_nonce is set")
		}
		// Hashes of equal length, so the comparison's time says nothing
		// about the password's length.
		got, want := sha256.Sum256([]byte(password.Text())), sha256.Sum256(secret)
		ok = subtle.ConstantTimeCompare(got[:], want[:]) == 1
	default:
		return "", nil, fault(CodeUnsupportedSecurityToken, "Password Type %q", typ)
	}
	if !ok || !known {
		return "", nil, fault(CodeFailedAuthentication, "wrong password or unknown user %q", user)
	}
	if nonce != nil && created == nil {
		// Without Created the nonce cannot be bound to the window it is
		// remembered for.
		return "", nil, fault(CodeInvalidSecurityToken, "Nonce without Created")
	}
	return user, nonce, nil
}

// PasswordDigest returns the WSS UsernameToken Profile 1.1 digest:
// SHA-1(nonce + created + password), with nonce the decoded bytes and
// created the literal text of wsu:Created.
func PasswordDigest(nonce []byte, created string, password []byte) [sha1.Size]byte {
	h := sha1.New()
	h.Write(nonce)
	io.WriteString(h, created)
	h.Write(password)
	var out [sha1.Size]byte
	h.Sum(out[:0])
	return out
}

// RemoveHeaderBlock returns body without the i-th element child of the
// Envelope's Header, cut out byte for byte so that the rest is forwarded
// exactly as the client sent it: how a policy that read its own Security
// header (saml) keeps credentials from the service.
func RemoveHeaderBlock(body []byte, i int) ([]byte, error) { return wsse.RemoveHeaderBlock(body, i) }

// removeElement returns body without m's Security header, cut out byte
// for byte so that everything else is forwarded exactly as the client sent
// it.
//
// It finds the header's bytes with a lexer of markup boundaries rather
// than a second run of encoding/xml: body has been parsed already, strictly,
// into m's tree, so it is well-formed, and in well-formed XML every '<'
// outside a comment, CDATA section, processing instruction or quoted
// attribute value starts a tag, which is all the lexer needs to know. It
// does not trust itself further than that: the elements it lands on must
// carry the names of the Header and of the Security header, or it fails
// (and the request with it).
func removeElement(body []byte, m *message) ([]byte, error) {
	depth, child, headerSeen := 0, -1, false
	start := -1
	for pos := 0; ; {
		j := bytes.IndexByte(body[pos:], '<')
		if j < 0 {
			return nil, errors.New("the Security header's end was not found")
		}
		k := pos + j
		rest := body[k:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			e := bytes.Index(rest[4:], []byte("-->"))
			if e < 0 {
				return nil, errors.New("unterminated comment")
			}
			pos = k + 4 + e + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			e := bytes.Index(rest[9:], []byte("]]>"))
			if e < 0 {
				return nil, errors.New("unterminated CDATA section")
			}
			pos = k + 9 + e + 3
		case bytes.HasPrefix(rest, []byte("<?")):
			e := bytes.Index(rest[2:], []byte("?>"))
			if e < 0 {
				return nil, errors.New("unterminated processing instruction")
			}
			pos = k + 2 + e + 2
		case bytes.HasPrefix(rest, []byte("<!")):
			return nil, errors.New("a declaration in the message")
		case bytes.HasPrefix(rest, []byte("</")):
			e := bytes.IndexByte(rest, '>')
			if e < 0 {
				return nil, errors.New("unterminated end tag")
			}
			pos = k + e + 1
			if depth == 3 && start >= 0 {
				return cut(body, start, pos), nil
			}
			depth--
		default:
			gt := tagEnd(rest)
			if gt < 0 {
				return nil, errors.New("unterminated start tag")
			}
			pos = k + gt + 1
			empty := rest[gt-1] == '/'
			depth++
			switch {
			case depth == 2 && !headerSeen:
				// The Envelope's first element child is its Header: parse
				// made sure of it.
				headerSeen = true
				if !tagIs(rest, m.header) {
					return nil, errors.New("the lexer and the tree disagree on the Header")
				}
			case depth == 3 && headerSeen && start < 0:
				child++
				if child == m.secIndex {
					if !tagIs(rest, m.security) {
						return nil, errors.New("the lexer and the tree disagree on the Security header")
					}
					start = k
					if empty {
						return cut(body, start, pos), nil
					}
				}
			case depth == 2:
				// Past the Header: the Security header was not in it.
				return nil, errors.New("the Security header was not found in the Header")
			}
			if empty {
				depth--
			}
		}
	}
}

func cut(body []byte, start, end int) []byte {
	out := make([]byte, 0, len(body)-(end-start))
	out = append(out, body[:start]...)
	return append(out, body[end:]...)
}

// tagEnd returns the index in b, which starts with a start tag, of the
// '>' that closes it: the first outside a quoted attribute value.
func tagEnd(b []byte) int {
	var quote byte
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// tagIs reports whether the start tag at the beginning of b names el.
func tagIs(b []byte, el *etree.Element) bool {
	b = b[1:]
	if el.Space != "" {
		if !bytes.HasPrefix(b, []byte(el.Space)) || len(b) <= len(el.Space) || b[len(el.Space)] != ':' {
			return false
		}
		b = b[len(el.Space)+1:]
	}
	if !bytes.HasPrefix(b, []byte(el.Tag)) || len(b) <= len(el.Tag) {
		return false
	}
	switch b[len(el.Tag)] {
	case ' ', '\t', '\r', '\n', '/', '>':
		return true
	}
	return false
}

// removeHeaderBlock returns body without the i-th element child of the
// Envelope's Header (wsse.RemoveHeaderBlock).
func removeHeaderBlock(body []byte, i int) ([]byte, error) { return wsse.RemoveHeaderBlock(body, i) }

// chainCache remembers verified certificate chains until the earliest
// expiry among them, so that a busy signer costs one chain verification,
// not one per message.
type chainCache struct {
	mu sync.Mutex
	m  map[[32]byte]chainEntry
}

type chainEntry struct {
	notBefore, notAfter time.Time
}

const maxChainCache = 1024

func (c *chainCache) get(k [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return ok && !now.Before(e.notBefore) && now.Before(e.notAfter)
}

func (c *chainCache) put(k [32]byte, e chainEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxChainCache {
		c.m = make(map[[32]byte]chainEntry)
	}
	c.m[k] = e
}
