// Package xmlsig verifies XML signatures (XML-DSig) the way WS-Security
// uses them: detached signatures whose References point by Id ("#id") at
// other elements of the same document (the SOAP Body, a wsu:Timestamp, a
// token), canonicalized with exclusive XML canonicalization.
//
// No Go library does this: goxmldsig verifies only enveloped signatures over
// the element that holds them (SAML). This package has its own exclusive
// canonicalization (c14n.go), which walks the caller's tree in place and
// is held byte for byte to goxmldsig's and to xmlsec1's in the tests, and
// adds what WS-Security needs around it, with the WS-I Basic Security
// Profile's restrictions:
//
//   - exactly one SignedInfo, no Object (so no Manifest), exclusive c14n for
//     SignedInfo and as the last transform of every Reference;
//   - References only by shorthand "#id", resolved against an index of every
//     ID attribute (wsu:Id, Id, ID, xml:id) of the whole document, in which
//     a duplicate is an error rather than a choice;
//   - digests SHA-1 and SHA-256, signatures RSA-SHA1, RSA-SHA256 and
//     ECDSA-SHA256 (P-256, r||s), each only when allowed;
//   - digests compared in constant time.
//
// Verify returns the elements the signature covers, as pointers into the
// caller's tree: whoever acts on the message must check that the Body and
// Timestamp it acts on are among them (by identity, not by Id), which is
// what defeats signature wrapping. Keys are the caller's business too: this
// package never takes a key from KeyInfo.
//
// A verified Signature names what it covers by the SHA-256 of its
// canonical SignedInfo (SignedInfoDigest, ReplayKey), and Spend records
// it in the store's replay cache: the one replay check of every door that
// accepts signed messages, keyed on content rather than on the spelling
// of the SignatureValue. DecodeBase64 is the strict base64Binary decoder
// every signature path uses.
package xmlsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/rsaverify"
)

// Namespaces.
const (
	NamespaceDSig = "http://www.w3.org/2000/09/xmldsig#"
	// NamespaceExcC14N qualifies InclusiveNamespaces.
	NamespaceExcC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
	// NamespaceWSU is the WS-Security utility namespace of wsu:Id.
	NamespaceWSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	// NamespaceXML is the namespace bound to the xml prefix (xml:id).
	NamespaceXML = "http://www.w3.org/XML/1998/namespace"
)

// Algorithm identifiers.
const (
	AlgExcC14N         = "http://www.w3.org/2001/10/xml-exc-c14n#"
	AlgEnveloped       = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	AlgSHA1            = "http://www.w3.org/2000/09/xmldsig#sha1"
	AlgSHA256          = "http://www.w3.org/2001/04/xmlenc#sha256"
	AlgRSASHA1         = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	AlgRSASHA256       = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	AlgECDSASHA256     = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	algExcC14NComments = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
)

// Algorithms is a set of permitted algorithms. The zero value permits
// nothing; DefaultAlgorithms is the usual choice.
type Algorithms uint8

// The algorithms a set can hold.
const (
	DigestSHA1 Algorithms = 1 << iota
	DigestSHA256
	SignatureRSASHA1
	SignatureRSASHA256
	SignatureECDSASHA256
)

// DefaultAlgorithms are the SHA-256 based algorithms. SHA-1 is left out:
// it is broken for collisions, and a peer that still needs it must be
// listed on purpose.
const DefaultAlgorithms = DigestSHA256 | SignatureRSASHA256 | SignatureECDSASHA256

// ParseAlgorithm returns the set holding the algorithm named by its short
// name (sha1, sha256, rsa-sha1, rsa-sha256, ecdsa-sha256).
func ParseAlgorithm(name string) (Algorithms, error) {
	switch strings.ToLower(name) {
	case "sha1":
		return DigestSHA1, nil
	case "sha256":
		return DigestSHA256, nil
	case "rsa-sha1":
		return SignatureRSASHA1, nil
	case "rsa-sha256":
		return SignatureRSASHA256, nil
	case "ecdsa-sha256":
		return SignatureECDSASHA256, nil
	}
	return 0, fmt.Errorf("xmlsig: unknown algorithm %q (want sha1, sha256, rsa-sha1, rsa-sha256 or ecdsa-sha256)", name)
}

// Errors, for errors.Is. Every error of this package wraps exactly one of
// them, so that a caller can map it to a fault.
var (
	// ErrMalformed: the Signature, or the document, breaks the structure
	// this package accepts (a second SignedInfo, an Object, a missing
	// element, bad base64, a duplicate attribute).
	ErrMalformed = errors.New("xmlsig: malformed signature")
	// ErrUnsupportedAlgorithm: an algorithm or transform that is unknown
	// or not permitted.
	ErrUnsupportedAlgorithm = errors.New("xmlsig: unsupported algorithm")
	// ErrDuplicateID: two elements of the document carry the same ID.
	ErrDuplicateID = errors.New("xmlsig: duplicate ID")
	// ErrUnresolved: a Reference whose URI is not "#id" of an element of
	// the document.
	ErrUnresolved = errors.New("xmlsig: unresolved reference")
	// ErrDigestMismatch: a referenced element changed after signing.
	ErrDigestMismatch = errors.New("xmlsig: digest mismatch")
	// ErrBadSignature: the SignatureValue does not verify with the key.
	ErrBadSignature = errors.New("xmlsig: signature does not verify")
	// ErrKey: the key is of a type or size that cannot verify the
	// signature's algorithm.
	ErrKey = errors.New("xmlsig: unsuitable key")
)

// IDIndex maps the ID attribute values of a document to their elements.
type IDIndex struct {
	ids map[string]*etree.Element
}

// NewIDIndex indexes every ID attribute of the tree under root: wsu:Id (in
// the WS-Security utility namespace), unqualified Id and ID, and xml:id.
// Two elements with the same ID are ErrDuplicateID: a reference that could
// name either is the start of a signature wrapping attack. An element with
// two ID attributes of different values is indexed under both. While it
// walks the tree it also refuses elements carrying the same attribute twice
// (ErrMalformed), which encoding/xml tolerates but libxml2 refuses, so that
// the gateway and the service never read different attribute values.
//
// Lower-case id is not an ID: business payloads use it freely, and a
// reference to it has no standing in WS-Security.
func NewIDIndex(root *etree.Element) (*IDIndex, error) {
	ix := &IDIndex{ids: make(map[string]*etree.Element, 8)}
	if root == nil {
		return ix, nil
	}
	if err := ix.add(root); err != nil {
		return nil, err
	}
	return ix, nil
}

func (ix *IDIndex) add(el *etree.Element) error {
	for i := range el.Attr {
		a := &el.Attr[i]
		for j := range i {
			if b := &el.Attr[j]; b.Space == a.Space && b.Key == a.Key {
				return fmt.Errorf("element %s has attribute %s twice: %w", el.FullTag(), a.FullKey(), ErrMalformed)
			}
		}
		if !isIDAttr(a) {
			continue
		}
		if a.Value == "" {
			return fmt.Errorf("element %s has an empty %s: %w", el.FullTag(), a.FullKey(), ErrMalformed)
		}
		if prev, ok := ix.ids[a.Value]; ok && prev != el {
			return fmt.Errorf("ID %q on %s and %s: %w", a.Value, prev.FullTag(), el.FullTag(), ErrDuplicateID)
		}
		ix.ids[a.Value] = el
	}
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok {
			if err := ix.add(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func isIDAttr(a *etree.Attr) bool {
	switch {
	case a.Space == "":
		return a.Key == "Id" || a.Key == "ID"
	case a.Space == "xml":
		return a.Key == "id"
	case a.Key == "Id":
		return a.NamespaceURI() == NamespaceWSU
	}
	return false
}

// Lookup returns the element whose ID is id, or nil.
func (ix *IDIndex) Lookup(id string) *etree.Element { return ix.ids[id] }

// Len returns the number of IDs indexed.
func (ix *IDIndex) Len() int { return len(ix.ids) }

// Signature is a parsed ds:Signature whose structure and algorithms have
// been checked. It is not verified until Verify says so.
type Signature struct {
	// Element is the ds:Signature element.
	Element *etree.Element
	// SignedInfo is its one ds:SignedInfo.
	SignedInfo *etree.Element
	// KeyInfo is its ds:KeyInfo, or nil. Its content names a key; it is
	// never a key the signature may be verified with on its own.
	KeyInfo *etree.Element
	// Method is the SignatureMethod algorithm.
	Method string
	// References are SignedInfo's references, in order.
	References []Reference

	prefixList string // SignedInfo's c14n InclusiveNamespaces
	value      []byte

	// signedInfoDigest is the SHA-256 of SignedInfo's canonical form,
	// set by a successful Verify (verified reports it).
	signedInfoDigest [sha256.Size]byte
	verified         bool
}

// Reference is one ds:Reference of SignedInfo.
type Reference struct {
	// ID is the URI without its '#'.
	ID string
	// Enveloped reports an enveloped-signature transform.
	Enveloped bool
	// DigestMethod is the digest algorithm.
	DigestMethod string

	prefixList string
	digest     []byte
}

// Options limit what Parse accepts.
type Options struct {
	// Algorithms are the permitted digest and signature algorithms; zero
	// means DefaultAlgorithms.
	Algorithms Algorithms
	// MaxReferences bounds the References of one SignedInfo; 0 means 16.
	MaxReferences int
}

const defaultMaxReferences = 16

// Parse checks sig, a ds:Signature element, and returns it parsed. The
// structure must be SignedInfo, SignatureValue, then at most one KeyInfo;
// no Object, no second SignedInfo anywhere inside. SignedInfo must hold
// CanonicalizationMethod (exclusive c14n, optionally with
// InclusiveNamespaces), SignatureMethod and 1..MaxReferences References,
// each with a "#id" URI, transforms drawn from enveloped-signature and
// exclusive c14n with exclusive c14n last, and a DigestMethod and
// DigestValue. Errors wrap ErrMalformed or ErrUnsupportedAlgorithm.
func Parse(sig *etree.Element, opts Options) (*Signature, error) {
	algs := opts.Algorithms
	if algs == 0 {
		algs = DefaultAlgorithms
	}
	maxRefs := opts.MaxReferences
	if maxRefs <= 0 {
		maxRefs = defaultMaxReferences
	}
	if !isDS(sig, "Signature") {
		return nil, fmt.Errorf("%s is not a ds:Signature: %w", sig.FullTag(), ErrMalformed)
	}
	s := &Signature{Element: sig}
	// The one SignedInfo: a second one hidden in KeyInfo or elsewhere
	// inside is how some verifiers get fooled into checking one and
	// acting on the other.
	if n := countDS(sig, "SignedInfo"); n != 1 {
		return nil, fmt.Errorf("signature holds %d SignedInfo elements, want 1: %w", n, ErrMalformed)
	}
	kids := sig.ChildElements()
	if len(kids) < 2 || !isDS(kids[0], "SignedInfo") || !isDS(kids[1], "SignatureValue") {
		return nil, fmt.Errorf("signature must start with SignedInfo and SignatureValue: %w", ErrMalformed)
	}
	for _, k := range kids[2:] {
		if !isDS(k, "KeyInfo") || s.KeyInfo != nil {
			return nil, fmt.Errorf("unexpected %s in Signature (only one KeyInfo may follow SignatureValue): %w", k.FullTag(), ErrMalformed)
		}
		s.KeyInfo = k
	}
	s.SignedInfo = kids[0]
	var err error
	if s.value, err = DecodeBase64(kids[1].Text()); err != nil || len(s.value) == 0 {
		return nil, fmt.Errorf("SignatureValue is not base64: %w", ErrMalformed)
	}

	si := s.SignedInfo.ChildElements()
	if len(si) < 3 || !isDS(si[0], "CanonicalizationMethod") || !isDS(si[1], "SignatureMethod") {
		return nil, fmt.Errorf("SignedInfo must hold CanonicalizationMethod, SignatureMethod and References: %w", ErrMalformed)
	}
	if s.prefixList, err = c14nMethod(si[0]); err != nil {
		return nil, fmt.Errorf("SignedInfo: %w", err)
	}
	s.Method = si[1].SelectAttrValue("Algorithm", "")
	if err := signatureAllowed(s.Method, algs); err != nil {
		return nil, err
	}
	if len(si[1].ChildElements()) != 0 {
		// HMACOutputLength truncation attacks live here; no supported
		// method takes parameters.
		return nil, fmt.Errorf("SignatureMethod has parameters: %w", ErrMalformed)
	}
	if len(si)-2 > maxRefs {
		return nil, fmt.Errorf("SignedInfo holds %d References, more than %d: %w", len(si)-2, maxRefs, ErrMalformed)
	}
	for i, r := range si[2:] {
		if !isDS(r, "Reference") {
			return nil, fmt.Errorf("unexpected %s in SignedInfo: %w", r.FullTag(), ErrMalformed)
		}
		ref, err := parseReference(r, algs)
		if err != nil {
			return nil, fmt.Errorf("reference %d: %w", i, err)
		}
		s.References = append(s.References, ref)
	}
	return s, nil
}

func parseReference(r *etree.Element, algs Algorithms) (Reference, error) {
	var ref Reference
	uri := r.SelectAttrValue("URI", "")
	id, ok := strings.CutPrefix(uri, "#")
	if !ok || id == "" || strings.ContainsAny(id, "()#") {
		// Only shorthand XPointers (BSP R5204): no whole-document "",
		// no xpointer(...), no external URIs.
		return ref, fmt.Errorf("URI %q is not a same-document #id reference: %w", uri, ErrUnsupportedAlgorithm)
	}
	ref.ID = id
	kids := r.ChildElements()
	i := 0
	c14n := false
	if i < len(kids) && isDS(kids[i], "Transforms") {
		ts := kids[i].ChildElements()
		if len(ts) == 0 {
			return ref, fmt.Errorf("empty Transforms: %w", ErrMalformed)
		}
		for j, t := range ts {
			if !isDS(t, "Transform") {
				return ref, fmt.Errorf("unexpected %s in Transforms: %w", t.FullTag(), ErrMalformed)
			}
			alg := t.SelectAttrValue("Algorithm", "")
			switch {
			case alg == AlgEnveloped && !ref.Enveloped && j == 0 && len(t.ChildElements()) == 0:
				ref.Enveloped = true
			case alg == AlgExcC14N && j == len(ts)-1:
				pl, err := c14nMethod(t)
				if err != nil {
					return ref, err
				}
				ref.prefixList, c14n = pl, true
			default:
				return ref, fmt.Errorf("transform %q at position %d: only enveloped-signature first and exclusive c14n last are supported: %w", alg, j, ErrUnsupportedAlgorithm)
			}
		}
		i++
	}
	if !c14n {
		// Without it the node set would be serialized with inclusive c14n,
		// which BSP R5412 rules out and we do not implement.
		return ref, fmt.Errorf("exclusive c14n must be the last transform: %w", ErrUnsupportedAlgorithm)
	}
	if len(kids) != i+2 || !isDS(kids[i], "DigestMethod") || !isDS(kids[i+1], "DigestValue") {
		return ref, fmt.Errorf("reference must hold Transforms, DigestMethod and DigestValue: %w", ErrMalformed)
	}
	ref.DigestMethod = kids[i].SelectAttrValue("Algorithm", "")
	h := digestHash(ref.DigestMethod, algs)
	if h == 0 {
		return ref, fmt.Errorf("digest method %q: %w", ref.DigestMethod, ErrUnsupportedAlgorithm)
	}
	d, err := DecodeBase64(kids[i+1].Text())
	if err != nil || len(d) != h.Size() {
		return ref, fmt.Errorf("DigestValue is not a base64 %s digest: %w", ref.DigestMethod, ErrMalformed)
	}
	ref.digest = d
	return ref, nil
}

// c14nMethod checks that el names exclusive c14n without comments and
// returns its InclusiveNamespaces PrefixList.
func c14nMethod(el *etree.Element) (string, error) {
	if alg := el.SelectAttrValue("Algorithm", ""); alg != AlgExcC14N {
		return "", fmt.Errorf("canonicalization %q: only exclusive c14n without comments is supported: %w", alg, ErrUnsupportedAlgorithm)
	}
	kids := el.ChildElements()
	if len(kids) == 0 {
		return "", nil
	}
	if len(kids) > 1 || kids[0].Tag != "InclusiveNamespaces" || kids[0].NamespaceURI() != NamespaceExcC14N {
		return "", fmt.Errorf("unexpected content in a c14n method: %w", ErrMalformed)
	}
	pl := kids[0].SelectAttrValue("PrefixList", "")
	for _, p := range strings.Fields(pl) {
		if p == "#default" {
			// Canonicalize renders it, but no signer we meet sends it
			// (BSP profiles of WSS do not need it), and refusing it keeps
			// what a verifier accepts small.
			return "", fmt.Errorf("InclusiveNamespaces #default is not supported: %w", ErrUnsupportedAlgorithm)
		}
	}
	return pl, nil
}

func signatureAllowed(method string, algs Algorithms) error {
	var need Algorithms
	switch method {
	case AlgRSASHA1:
		need = SignatureRSASHA1
	case AlgRSASHA256:
		need = SignatureRSASHA256
	case AlgECDSASHA256:
		need = SignatureECDSASHA256
	}
	if need == 0 || algs&need == 0 {
		return fmt.Errorf("signature method %q: %w", method, ErrUnsupportedAlgorithm)
	}
	return nil
}

func digestHash(method string, algs Algorithms) crypto.Hash {
	switch {
	case method == AlgSHA256 && algs&DigestSHA256 != 0:
		return crypto.SHA256
	case method == AlgSHA1 && algs&DigestSHA1 != 0:
		return crypto.SHA1
	}
	return 0
}

// Verify checks s against key and returns the referenced elements, in
// Reference order, as pointers into the tree idx indexes. It verifies the
// SignatureValue over the canonical SignedInfo first, then each
// Reference's digest over its element, canonicalized in the namespace
// context of its place in the document. The tree is not modified.
//
// key is an *rsa.PublicKey (at least 2048 bits) for RSA methods, an
// *ecdsa.PublicKey on P-256 for ECDSA-SHA256; anything else is ErrKey.
// Errors wrap ErrKey, ErrBadSignature, ErrUnresolved, ErrDigestMismatch or
// ErrMalformed.
func (s *Signature) Verify(idx *IDIndex, key crypto.PublicKey) ([]*etree.Element, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf, err := appendCanonical((*bp)[:0], s.SignedInfo, s.prefixList, nil)
	*bp = buf[:0]
	if err != nil {
		return nil, fmt.Errorf("canonicalizing SignedInfo: %w", err)
	}
	if err := verifyValue(s.Method, key, buf, s.value); err != nil {
		return nil, err
	}
	// What the signature covers, in the one spelling c14n allows: the
	// replay key (see ReplayKey). Taken before buf is reused.
	siDigest := sha256.Sum256(buf)
	covered := make([]*etree.Element, 0, len(s.References))
	for i := range s.References {
		ref := &s.References[i]
		el := idx.Lookup(ref.ID)
		if el == nil {
			return nil, fmt.Errorf("reference %d: no element has ID %q: %w", i, ref.ID, ErrUnresolved)
		}
		if el == s.Element || el == s.SignedInfo || isAncestor(el, s.SignedInfo) && !ref.Enveloped {
			return nil, fmt.Errorf("reference %d: %q contains the signature itself without the enveloped transform: %w", i, ref.ID, ErrMalformed)
		}
		var exclude *etree.Element
		if ref.Enveloped {
			exclude = s.Element
		}
		buf, err = appendCanonical(buf[:0], el, ref.prefixList, exclude)
		*bp = buf[:0]
		if err != nil {
			return nil, fmt.Errorf("reference %d: canonicalizing: %w", i, err)
		}
		var sum []byte
		if ref.DigestMethod == AlgSHA1 {
			d := sha1.Sum(buf)
			sum = d[:]
		} else {
			d := sha256.Sum256(buf)
			sum = d[:]
		}
		if subtle.ConstantTimeCompare(sum, ref.digest) != 1 {
			return nil, fmt.Errorf("reference %d (#%s): %w", i, ref.ID, ErrDigestMismatch)
		}
		covered = append(covered, el)
	}
	s.signedInfoDigest, s.verified = siDigest, true
	return covered, nil
}

// bufPool holds the buffers canonical forms are written to: a signed
// message's parts are a few kilobytes, and one buffer serves them all.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Canonicalize returns the exclusive canonical form (without comments) of
// el where it stands in its document: the namespaces it inherits from its
// ancestors are in scope, and those it visibly uses, or that prefixList
// (InclusiveNamespaces, space separated; #default for the default
// namespace) names, are rendered on it. el is not modified. Errors wrap
// ErrMalformed (an undeclared prefix, a reserved prefix or namespace
// declared).
func Canonicalize(el *etree.Element, prefixList string) ([]byte, error) {
	b, err := appendCanonical(nil, el, prefixList, nil)
	if err != nil {
		return nil, fmt.Errorf("canonicalizing %s: %w", el.FullTag(), err)
	}
	return b, nil
}

func isAncestor(a, el *etree.Element) bool {
	for e := el.Parent(); e != nil; e = e.Parent() {
		if e == a {
			return true
		}
	}
	return false
}

// rsaVerifiers keeps the prepared moduli of the RSA keys signatures are
// verified with: a client's certificate signs message after message.
var rsaVerifiers = rsaverify.NewCache(256)

func verifyValue(method string, key crypto.PublicKey, signed, value []byte) error {
	switch method {
	case AlgRSASHA1, AlgRSASHA256:
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%s needs an RSA key, got %T: %w", method, key, ErrKey)
		}
		if pub.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits, less than 2048: %w", pub.N.BitLen(), ErrKey)
		}
		h, sum := crypto.SHA256, sha256.Sum256(signed)
		digest := sum[:]
		if method == AlgRSASHA1 {
			s1 := sha1.Sum(signed)
			h, digest = crypto.SHA1, s1[:]
		}
		if err := rsaVerifiers.Verify(pub, h, digest, value); err != nil {
			return ErrBadSignature
		}
		return nil
	case AlgECDSASHA256:
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return fmt.Errorf("%s needs a P-256 key, got %T: %w", method, key, ErrKey)
		}
		// XML-DSig's ECDSA value is r||s, each padded to the curve size
		// (RFC 4050 / XML-DSig 1.1), not the DER of X.509 signatures.
		if len(value) != 64 {
			return fmt.Errorf("ECDSA-SHA256 value of %d bytes, want 64: %w", len(value), ErrBadSignature)
		}
		r := new(big.Int).SetBytes(value[:32])
		sv := new(big.Int).SetBytes(value[32:])
		sum := sha256.Sum256(signed)
		if !ecdsa.Verify(pub, sum[:], r, sv) {
			return ErrBadSignature
		}
		return nil
	}
	return fmt.Errorf("signature method %q: %w", method, ErrUnsupportedAlgorithm)
}

func isDS(el *etree.Element, local string) bool {
	return el.Tag == local && el.NamespaceURI() == NamespaceDSig
}

func countDS(el *etree.Element, local string) int {
	n := 0
	if isDS(el, local) {
		n++
	}
	for _, c := range el.ChildElements() {
		n += countDS(c, local)
	}
	return n
}

// DecodeBase64 decodes an XML Schema base64Binary value: standard base64
// (RFC 4648 §4) in which the XML white space characters (space, tab, CR,
// LF), which base64Binary's whitespace facet collapses and line-wrapping
// signers insert, are ignored. Everything else is strict, so that one
// value has one spelling only: padding is required and only at the end
// ("QQ==QQ==" is refused), the unused bits of the last group must be zero
// ("QR==" is refused, though it would decode to the bytes of "QQ=="), and
// nothing but the base64 alphabet may appear (no URL alphabet, no
// non-ASCII white space). Every base64Binary on a signature path
// (SignatureValue, DigestValue, BinarySecurityToken, X509Certificate,
// KeyIdentifier, Nonce, PasswordDigest) is read with it.
func DecodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, " \t\r\n") {
		s = strings.Map(func(r rune) rune {
			switch r {
			case ' ', '\t', '\r', '\n':
				return -1
			}
			return r
		}, s)
	}
	return strictBase64.DecodeString(s)
}

// strictBase64 refuses non-zero padding bits, which base64.StdEncoding
// tolerates.
var strictBase64 = base64.StdEncoding.Strict()
