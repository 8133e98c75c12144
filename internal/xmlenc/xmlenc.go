// Package xmlenc decrypts XML Encryption 1.1 (W3C, 2013) EncryptedData
// addressed to the gateway, with the defences the known attacks on XML
// Encryption require:
//
//   - RSA PKCS#1 v1.5 key transport is never used (Jager, Schinzel and
//     Somorovsky, "Bleichenbacher's Attack Strikes Again", ESORICS 2012).
//     Key transport is RSA-OAEP only (xmlenc#rsa-oaep-mgf1p and
//     xmlenc11#rsa-oaep, SHA-1 or SHA-256 digest and MGF1), or AES key wrap
//     (RFC 3394) of a key configured by name.
//   - Content encryption is AES-128/256-GCM; AES-128/256-CBC only when the
//     caller says the ciphertext is authenticated otherwise (a verified
//     signature over it), because unauthenticated CBC is a padding and
//     parsing oracle (Jager and Somorovsky, "How to Break XML Encryption",
//     CCS 2011).
//   - Every failure that depends on secret data or on the ciphertext (a key
//     that does not unwrap, a refused key transport or content algorithm,
//     a wrong tag, bad padding, plaintext that is not acceptable XML) is
//     one error, ErrDecrypt, reached through the same steps: a key that
//     fails to unwrap is replaced by a random one and the content is still
//     decrypted, so the failure surfaces where a tampered ciphertext's
//     would, and a failed decryption still scans a plaintext-sized buffer.
//   - The plaintext is untrusted input: it is scanned with internal/xmlscan
//     (no DTD, no processing instruction, limits) in the namespace context
//     of the EncryptedData before it is parsed.
//   - Keys come only from the configuration (Keys); a key in the message
//     (a ds:KeyValue, a certificate) only selects among configured keys.
//     CipherReference (fetching ciphertext) and nested encryption are
//     refused.
package xmlenc

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/xmlscan"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// Namespaces.
const (
	NamespaceXENC   = "http://www.w3.org/2001/04/xmlenc#"
	NamespaceXENC11 = "http://www.w3.org/2009/xmlenc11#"
	NamespaceDSig   = xmlsig.NamespaceDSig
	NamespaceWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
)

// Algorithm identifiers.
const (
	RSAOAEPMGF1P = NamespaceXENC + "rsa-oaep-mgf1p"
	RSAOAEP      = NamespaceXENC11 + "rsa-oaep"
	RSA15        = NamespaceXENC + "rsa-1_5"
	KWAES128     = NamespaceXENC + "kw-aes128"
	KWAES192     = NamespaceXENC + "kw-aes192"
	KWAES256     = NamespaceXENC + "kw-aes256"
	AES128GCM    = NamespaceXENC11 + "aes128-gcm"
	AES192GCM    = NamespaceXENC11 + "aes192-gcm"
	AES256GCM    = NamespaceXENC11 + "aes256-gcm"
	AES128CBC    = NamespaceXENC + "aes128-cbc"
	AES192CBC    = NamespaceXENC + "aes192-cbc"
	AES256CBC    = NamespaceXENC + "aes256-cbc"
	TripleDESCBC = NamespaceXENC + "tripledes-cbc"

	DigestSHA1   = xmlsig.NamespaceDSig + "sha1"
	DigestSHA256 = NamespaceXENC + "sha256"
	MGF1SHA1     = NamespaceXENC11 + "mgf1sha1"
	MGF1SHA256   = NamespaceXENC11 + "mgf1sha256"

	TypeElement = NamespaceXENC + "Element"
	TypeContent = NamespaceXENC + "Content"

	wssBase         = "http://docs.oasis-open.org/wss/2004/01/"
	valueSKI        = wssBase + "oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier"
	valueThumbSHA1  = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
	valueEncKeySHA1 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKeySHA1"
)

// Errors. ErrDecrypt is the one error of every failure that depends on the
// key or the ciphertext; callers must answer it, ErrMalformed and
// ErrUnsupported alike (one fault), and must not show its text.
var (
	// ErrDecrypt: the data did not decrypt to acceptable XML with the
	// configured keys, for whichever reason.
	ErrDecrypt = errors.New("xmlenc: decryption failed")
	// ErrMalformed: the EncryptedData or EncryptedKey structure is not
	// what XML Encryption 1.1 allows (before any cryptography).
	ErrMalformed = errors.New("xmlenc: malformed encrypted data")
)

// RSAKey is a configured key transport key: the private key and, to tell
// which key a message names when there are several, its certificate.
type RSAKey struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate // optional

	thumb, ski []byte
}

// Keys are the keys a Decrypter may use: all of them come from the
// configuration.
type Keys struct {
	// RSA are the key transport keys. An EncryptedKey naming a
	// certificate (X509Data, SecurityTokenReference) uses the key of that
	// certificate; one naming none uses the first.
	RSA []RSAKey
	// Symmetric are key-wrap keys by ds:KeyName, for EncryptedKeys made
	// with kw-aes128/192/256.
	Symmetric map[string][]byte
}

// Options set what a Decrypter accepts.
type Options struct {
	// KeyCache remembers up to this many RSA-unwrapped keys, by the
	// SHA-256 of the EncryptedKey's algorithm, parameters, ciphertext and
	// the key that unwrapped it, for KeyCacheTTL: a client that sends the
	// same EncryptedKey with many messages costs one RSA private-key
	// operation, not one per message. Only successes are remembered: a
	// changed EncryptedKey (the material of an oracle attack) always
	// takes the full path. 0: no cache.
	KeyCache int
	// KeyCacheTTL bounds how long a cached key is used. Default 10m.
	KeyCacheTTL time.Duration
	// MaxKeys bounds the EncryptedKeys one Session unwraps (each an RSA
	// private-key operation, about a millisecond): a message carrying a
	// hundred of them costs no more than MaxKeys. Further ones fail like
	// a wrong key. Default 4.
	MaxKeys int
	// Limits bound each decrypted plaintext as xmlscan bounds a document
	// (zero fields are xmlscan's defaults).
	Limits xmlscan.Limits
}

// Decrypter decrypts EncryptedData with configured keys. It is immutable
// and safe for concurrent use.
type Decrypter struct {
	keys  Keys
	opts  Options
	cache keyCache
}

// New returns a Decrypter for keys. RSA keys must be at least 2048 bits;
// wrap keys 16, 24 or 32 bytes.
func New(keys Keys, opts Options) (*Decrypter, error) {
	d := &Decrypter{opts: opts}
	for i, k := range keys.RSA {
		if k.Key == nil {
			return nil, fmt.Errorf("xmlenc: RSA key %d is missing", i)
		}
		if k.Key.N.BitLen() < 2048 {
			return nil, fmt.Errorf("xmlenc: RSA key %d has %d bits, fewer than 2048", i, k.Key.N.BitLen())
		}
		if k.Cert != nil {
			pub, ok := k.Cert.PublicKey.(*rsa.PublicKey)
			if !ok || !pub.Equal(&k.Key.PublicKey) {
				return nil, fmt.Errorf("xmlenc: RSA key %d does not match its certificate", i)
			}
			t := sha1.Sum(k.Cert.Raw)
			k.thumb, k.ski = t[:], k.Cert.SubjectKeyId
		}
		k.Key.Precompute()
		d.keys.RSA = append(d.keys.RSA, k)
	}
	d.keys.Symmetric = map[string][]byte{}
	for name, k := range keys.Symmetric {
		switch len(k) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("xmlenc: wrap key %q is %d bytes, not 16, 24 or 32", name, len(k))
		}
		d.keys.Symmetric[name] = bytes.Clone(k)
	}
	if len(d.keys.RSA) == 0 && len(d.keys.Symmetric) == 0 {
		return nil, errors.New("xmlenc: no keys")
	}
	return d, nil
}

// Session decrypts the EncryptedData of one document: an EncryptedKey
// used by several EncryptedData is unwrapped once.
type Session struct {
	d *Decrypter
	// Resolve finds the element with a wsu:Id/Id, for a
	// SecurityTokenReference to an EncryptedKey; nil resolves nothing.
	resolve func(id string) *etree.Element
	keys    map[*etree.Element]*unwrapped
	// unwraps counts the EncryptedKeys unwrapped (see Options.MaxKeys).
	unwraps int
}

type unwrapped struct {
	key []byte
	ok  bool
	// ck is the key cache's key for it, committed only once content
	// decrypted under it (see Options.KeyCache); nil when not cached.
	ck *[32]byte
}

// NewSession starts the decryption of one document. resolve finds an
// element by its ID (wsu:Id, Id), for EncryptedData whose KeyInfo
// references an EncryptedKey elsewhere in the document.
func (d *Decrypter) NewSession(resolve func(id string) *etree.Element) *Session {
	return &Session{d: d, resolve: resolve, keys: map[*etree.Element]*unwrapped{}}
}

// Data is a parsed xenc:EncryptedData whose structure has been checked.
type Data struct {
	// Element is the xenc:EncryptedData.
	Element *etree.Element
	// ID is its Id attribute.
	ID string
	// Type is TypeElement or TypeContent.
	Type string
	// Method is the content encryption algorithm.
	Method string
	// CBC reports whether Method is a CBC mode, which Decrypt accepts only
	// with authenticated set.
	CBC bool

	cipherValue []byte
	keyInfo     *etree.Element
}

// ParseData checks the structure of an xenc:EncryptedData: one
// EncryptionMethod of a known content algorithm, at most one ds:KeyInfo,
// one CipherData with one CipherValue (never a CipherReference), Type
// Element or Content. Its errors wrap ErrMalformed and say nothing about
// keys or plaintext. Refused but known algorithms (3DES) are not an error
// here: Decrypt fails them the same way as a wrong key.
func ParseData(el *etree.Element) (*Data, error) {
	if el.Tag != "EncryptedData" || el.NamespaceURI() != NamespaceXENC {
		return nil, fmt.Errorf("%w: %s is not xenc:EncryptedData", ErrMalformed, el.Tag)
	}
	d := &Data{Element: el, ID: el.SelectAttrValue("Id", "")}
	d.Type = el.SelectAttrValue("Type", "")
	switch d.Type {
	case TypeElement, TypeContent:
	default:
		return nil, fmt.Errorf("%w: EncryptedData Type %q (want Element or Content)", ErrMalformed, d.Type)
	}
	var method, cipherData *etree.Element
	for _, k := range el.ChildElements() {
		switch {
		case k.NamespaceURI() == NamespaceXENC && k.Tag == "EncryptionMethod" && method == nil && cipherData == nil && d.keyInfo == nil:
			method = k
		case k.NamespaceURI() == NamespaceDSig && k.Tag == "KeyInfo" && d.keyInfo == nil && cipherData == nil:
			d.keyInfo = k
		case k.NamespaceURI() == NamespaceXENC && k.Tag == "CipherData" && cipherData == nil:
			cipherData = k
		case k.NamespaceURI() == NamespaceXENC && k.Tag == "EncryptionProperties" && cipherData != nil:
		default:
			return nil, fmt.Errorf("%w: unexpected {%s}%s in EncryptedData", ErrMalformed, k.NamespaceURI(), k.Tag)
		}
	}
	if method == nil || cipherData == nil {
		return nil, fmt.Errorf("%w: EncryptedData without EncryptionMethod or CipherData", ErrMalformed)
	}
	d.Method = method.SelectAttrValue("Algorithm", "")
	switch d.Method {
	case AES128GCM, AES192GCM, AES256GCM:
	case AES128CBC, AES192CBC, AES256CBC, TripleDESCBC:
		d.CBC = true
	default:
		return nil, fmt.Errorf("%w: content encryption algorithm %q", ErrMalformed, d.Method)
	}
	cv, err := cipherValue(cipherData)
	if err != nil {
		return nil, err
	}
	d.cipherValue = cv
	return d, nil
}

func cipherValue(cd *etree.Element) ([]byte, error) {
	kids := cd.ChildElements()
	if len(kids) != 1 || kids[0].NamespaceURI() != NamespaceXENC || kids[0].Tag != "CipherValue" {
		// CipherReference included: the gateway never fetches.
		return nil, fmt.Errorf("%w: CipherData must hold one CipherValue", ErrMalformed)
	}
	if len(kids[0].ChildElements()) != 0 {
		return nil, fmt.Errorf("%w: CipherValue holds elements", ErrMalformed)
	}
	v, err := xmlsig.DecodeBase64(kids[0].Text())
	if err != nil {
		return nil, fmt.Errorf("%w: CipherValue is not base64", ErrMalformed)
	}
	return v, nil
}

// contentKeyLen is the key length of a content algorithm; 0 for refused
// ones.
func contentKeyLen(method string) int {
	switch method {
	case AES128GCM, AES128CBC:
		return 16
	case AES192GCM, AES192CBC:
		return 24
	case AES256GCM, AES256CBC:
		return 32
	}
	return 0
}

// Decrypt decrypts d and returns the nodes of its plaintext, parsed in the
// namespace context of d.Element's position, without changing the tree.
// authenticated says that the caller verified a signature over the
// ciphertext (d.Element or an ancestor) before: CBC is refused without it.
// Every failure after ParseData's checks is ErrDecrypt, reached through
// the same steps (see the package comment).
func (s *Session) Decrypt(d *Data, authenticated bool) ([]etree.Token, error) {
	fail := false
	if d.CBC && !authenticated || contentKeyLen(d.Method) == 0 {
		fail = true
	}
	want := contentKeyLen(d.Method)
	if want == 0 {
		want = 32
	}
	u := s.contentKey(d.keyInfo, want)
	key := u.key
	if !u.ok || len(key) != want {
		fail = true
	}
	if fail {
		// Same steps with a key nobody knows: the ciphertext is never
		// looked at with the real key in a refused case.
		key = randomKey(want)
	}
	var plain []byte
	var err error
	if d.CBC {
		plain, err = openCBC(key, d.cipherValue)
	} else {
		plain, err = openGCM(key, d.cipherValue)
	}
	if err != nil {
		fail = true
	}
	nodes, err := s.parse(d.Element, plain, len(d.cipherValue), fail)
	if err != nil || fail {
		return nil, ErrDecrypt
	}
	if u.ck != nil {
		// Content authenticated under this key (a GCM tag, or a CBC
		// ciphertext a verified signature covers): whoever sent the
		// EncryptedKey knew the key, so remembering it tells nobody
		// anything. Remembering every key that merely unwrapped would
		// be an OAEP validity oracle: send a changed EncryptedKey twice
		// and time the second.
		s.d.cache.put(*u.ck, u.key, s.d.opts.KeyCache, s.d.opts.KeyCacheTTL)
	}
	if d.Type == TypeElement {
		n := 0
		for _, t := range nodes {
			switch t := t.(type) {
			case *etree.Element:
				n++
			case *etree.CharData:
				if !t.IsWhitespace() {
					return nil, ErrDecrypt
				}
			}
		}
		if n != 1 {
			return nil, ErrDecrypt
		}
	}
	return nodes, nil
}

// Replace decrypts d and puts the plaintext nodes in its place in the
// tree; it returns the nodes put there.
func (s *Session) Replace(d *Data, authenticated bool) ([]etree.Token, error) {
	nodes, err := s.Decrypt(d, authenticated)
	if err != nil {
		return nil, err
	}
	parent := d.Element.Parent()
	if parent == nil {
		return nil, fmt.Errorf("%w: EncryptedData without a parent", ErrMalformed)
	}
	at := d.Element.Index()
	parent.RemoveChildAt(at)
	for i, t := range nodes {
		parent.InsertChildAt(at+i, t)
	}
	return nodes, nil
}

func randomKey(n int) []byte {
	k := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		panic("xmlenc: crypto/rand: " + err.Error())
	}
	return k
}

// openGCM opens IV (12 bytes) || ciphertext || tag (16 bytes).
func openGCM(key, v []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	if len(v) < g.NonceSize()+g.Overhead() {
		return nil, errors.New("short")
	}
	return g.Open(nil, v[:g.NonceSize()], v[g.NonceSize():], nil)
}

// openCBC decrypts IV (16 bytes) || ciphertext and removes the XML
// Encryption padding (the last byte is the pad length, 1..16; the other
// pad bytes are arbitrary) in constant time: the pad length is checked
// without branching on it, and a bad one yields an error only after the
// plaintext is cut the same way.
func openCBC(key, v []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(v) < 2*aes.BlockSize || len(v)%aes.BlockSize != 0 {
		return nil, errors.New("bad length")
	}
	out := make([]byte, len(v)-aes.BlockSize)
	cipher.NewCBCDecrypter(b, v[:aes.BlockSize]).CryptBlocks(out, v[aes.BlockSize:])
	pad := int(out[len(out)-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	// A bad pad length cuts one block's worth, so that the length of what
	// is scanned next does not depend on it either.
	n := subtle.ConstantTimeSelect(good, len(out)-pad, len(out)-aes.BlockSize)
	if good != 1 {
		return out[:n], errors.New("bad padding")
	}
	return out[:n], nil
}

// parse scans and parses plain in the namespace context of at, in one
// pass (xmlscan.Parse). When fail is set (or plain is nil) it parses a
// filler of the ciphertext's length instead, so that a failed decryption
// costs what a successful one does.
func (s *Session) parse(at *etree.Element, plain []byte, cipherLen int, fail bool) ([]etree.Token, error) {
	open, close := wrapper(at)
	if fail || plain == nil {
		plain = filler(cipherLen)
	}
	doc := make([]byte, 0, len(open)+len(plain)+len(close))
	doc = append(doc, open...)
	doc = append(doc, plain...)
	doc = append(doc, close...)
	lim := s.d.opts.Limits.WithDefaults()
	// The plaintext sits where the EncryptedData was: the document's
	// depth limit holds for it there (the wrapper stands for the parent).
	depth := 0
	for p := at.Parent(); p != nil; p = p.Parent() {
		if p.Parent() != nil || p.Tag != "" {
			depth++
		}
	}
	if lim.MaxDepth -= depth - 1; lim.MaxDepth < 2 {
		lim.MaxDepth = 2
	}
	// One pass checks the firewall's limits and builds the tree
	// (xmlscan.Parse); its attribute values are normalized as the
	// signer's c14n and the service read them.
	d, err := xmlscan.Parse(doc, lim)
	if fail {
		return nil, ErrDecrypt
	}
	if err != nil {
		// A plaintext refused early (a DTD at its start) would cost less
		// than a failed decryption, which parses a filler of its length:
		// parse that filler too, so that the refusal costs at least as
		// much whichever step failed.
		f := filler(cipherLen)
		fd := make([]byte, 0, len(open)+len(f)+len(close))
		fd = append(append(append(fd, open...), f...), close...)
		xmlscan.Parse(fd, lim)
		return nil, err
	}
	root := d.Root()
	if root == nil {
		return nil, ErrDecrypt
	}
	nodes := make([]etree.Token, 0, len(root.Child))
	for _, t := range root.Child {
		switch e := t.(type) {
		case *etree.Element:
			// Nested encryption is not followed: one layer, decrypted
			// with the configured keys, is all a message gets.
			if hasEncrypted(e) {
				return nil, ErrDecrypt
			}
		case *etree.ProcInst, *etree.Directive:
			return nil, ErrDecrypt
		}
		nodes = append(nodes, t)
	}
	for _, t := range nodes {
		root.RemoveChild(t)
	}
	return nodes, nil
}

func hasEncrypted(e *etree.Element) bool {
	if e.NamespaceURI() == NamespaceXENC && (e.Tag == "EncryptedData" || e.Tag == "EncryptedKey") {
		return true
	}
	for _, k := range e.ChildElements() {
		if hasEncrypted(k) {
			return true
		}
	}
	return false
}

// filler is scannable text of n bytes.
func filler(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }

// wrapper returns the start and end tags of an element declaring every
// namespace in scope at el, so that the plaintext's prefixes mean what
// they mean where the EncryptedData stood.
func wrapper(el *etree.Element) (string, string) {
	seen := map[string]bool{}
	var b strings.Builder
	b.WriteString("<xmlenc-plaintext")
	for e := el.Parent(); e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			var prefix string
			switch {
			case a.Space == "" && a.Key == "xmlns":
				prefix = ""
			case a.Space == "xmlns":
				prefix = a.Key
			default:
				continue
			}
			if seen[prefix] {
				continue
			}
			seen[prefix] = true
			if prefix == "" {
				b.WriteString(` xmlns="`)
			} else {
				b.WriteString(" xmlns:" + prefix + `="`)
			}
			xmlEscape(&b, a.Value)
			b.WriteString(`"`)
		}
	}
	b.WriteString(">")
	return b.String(), "</xmlenc-plaintext>"
}

func xmlEscape(b *strings.Builder, s string) {
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '"':
			b.WriteString("&quot;")
		case '\t', '\n', '\r':
			// As character references: literal, attribute value
			// normalization would turn them into spaces, and the
			// namespace name would no longer be the one in scope.
			fmt.Fprintf(b, "&#%d;", r)
		default:
			b.WriteRune(r)
		}
	}
}

// contentKey finds and unwraps the content key of keyInfo; its ok is
// false when none could be (the caller then uses a random key).
func (s *Session) contentKey(keyInfo *etree.Element, want int) *unwrapped {
	ek := s.encryptedKey(keyInfo)
	if ek == nil {
		return &unwrapped{}
	}
	if u := s.keys[ek]; u != nil {
		return u
	}
	max := s.d.opts.MaxKeys
	if max <= 0 {
		max = 4
	}
	if s.unwraps++; s.unwraps > max {
		u := &unwrapped{}
		s.keys[ek] = u
		return u
	}
	key, ok, ck := s.d.unwrap(ek, want)
	u := &unwrapped{key: key, ok: ok, ck: ck}
	s.keys[ek] = u
	return u
}

// encryptedKey finds the EncryptedKey an EncryptedData's KeyInfo names:
// one inside it, or one in the document referenced by a wsse
// SecurityTokenReference/Reference or a ds:RetrievalMethod.
func (s *Session) encryptedKey(keyInfo *etree.Element) *etree.Element {
	if keyInfo == nil {
		return nil
	}
	kids := keyInfo.ChildElements()
	if len(kids) != 1 {
		return nil
	}
	k := kids[0]
	var uri string
	switch {
	case k.NamespaceURI() == NamespaceXENC && k.Tag == "EncryptedKey":
		return k
	case k.NamespaceURI() == NamespaceDSig && k.Tag == "RetrievalMethod":
		if k.SelectAttrValue("Type", "") != NamespaceXENC+"EncryptedKey" || len(k.ChildElements()) != 0 {
			return nil
		}
		uri = k.SelectAttrValue("URI", "")
	case k.NamespaceURI() == NamespaceWSSE && k.Tag == "SecurityTokenReference":
		rs := k.ChildElements()
		if len(rs) != 1 || rs[0].NamespaceURI() != NamespaceWSSE || rs[0].Tag != "Reference" {
			return nil
		}
		uri = rs[0].SelectAttrValue("URI", "")
	default:
		return nil
	}
	id, ok := strings.CutPrefix(uri, "#")
	if !ok || id == "" || s.resolve == nil {
		return nil
	}
	el := s.resolve(id)
	if el == nil || el.NamespaceURI() != NamespaceXENC || el.Tag != "EncryptedKey" {
		return nil
	}
	return el
}

// UnwrapKey unwraps an xenc:EncryptedKey's key with the configured keys,
// for uses outside EncryptedData (a SAML EncryptedAssertion's key is one).
// It returns ErrDecrypt however it fails.
func (d *Decrypter) UnwrapKey(ek *etree.Element, want int) ([]byte, error) {
	k, ok, _ := d.unwrap(ek, want)
	if !ok {
		return nil, ErrDecrypt
	}
	return k, nil
}

// unwrap decrypts an EncryptedKey. It does the work of an RSA decryption
// whenever an RSA key is configured and the EncryptedKey is not a key
// wrap, even when the algorithm is refused or no key matches, so that the
// cost of a refusal does not say why; only a key the cache holds (one
// that decrypted content before) saves it. ck is the cache key to commit
// the key under once content decrypts with it.
func (d *Decrypter) unwrap(ek *etree.Element, want int) (key []byte, ok bool, ck *[32]byte) {
	var method, keyInfo, cipherData *etree.Element
	for _, k := range ek.ChildElements() {
		switch {
		case k.NamespaceURI() == NamespaceXENC && k.Tag == "EncryptionMethod" && method == nil:
			method = k
		case k.NamespaceURI() == NamespaceDSig && k.Tag == "KeyInfo" && keyInfo == nil:
			keyInfo = k
		case k.NamespaceURI() == NamespaceXENC && k.Tag == "CipherData" && cipherData == nil:
			cipherData = k
		case k.NamespaceURI() == NamespaceXENC && (k.Tag == "ReferenceList" || k.Tag == "CarriedKeyName" || k.Tag == "EncryptionProperties"):
		default:
			return nil, false, nil
		}
	}
	if method == nil || cipherData == nil {
		return nil, false, nil
	}
	ct, err := cipherValue(cipherData)
	if err != nil {
		return nil, false, nil
	}
	alg := method.SelectAttrValue("Algorithm", "")
	switch alg {
	case KWAES128, KWAES192, KWAES256:
		kek := d.symmetric(keyInfo)
		if kek == nil || len(kek) != map[string]int{KWAES128: 16, KWAES192: 24, KWAES256: 32}[alg] {
			return nil, false, nil
		}
		k, err := Unwrap(kek, ct)
		return k, err == nil && len(k) == want, nil
	}
	if len(d.keys.RSA) == 0 {
		return nil, false, nil
	}
	opts, okAlg := oaepOptions(alg, method)
	rk, found := d.rsaKey(keyInfo)
	if !found {
		rk = &d.keys.RSA[0]
	}
	if opts == nil {
		opts = &rsa.OAEPOptions{Hash: crypto.SHA1}
	}
	if d.opts.KeyCache > 0 && okAlg && found {
		h := sha256.New()
		fmt.Fprintf(h, "%p\x00%s\x00%d\x00%d\x00%x\x00%d\x00", rk, alg, opts.Hash, opts.MGFHash, opts.Label, want)
		h.Write(ct)
		var sum [32]byte
		h.Sum(sum[:0])
		ck = &sum
		if k := d.cache.get(sum); k != nil {
			return k, true, nil
		}
	}
	// The RSA operation runs in every case, refused algorithm or unknown
	// key included; its result counts only when all else holds. Go's
	// OAEP decoding is constant time and has one error. But Go refuses a
	// ciphertext of the wrong length, or not below the modulus, before
	// its private-key operation: such a one (a key encrypted to a larger
	// modulus than ours is one, with a fair chance) is replaced by a
	// stand-in in range, so that it too is refused in the time of the
	// operation and not in a twentieth of it.
	in, inRange := ct, rsaInRange(rk.Key, ct)
	if !inRange {
		in = rsaStandIn(rk.Key)
	}
	k, err := rsaDecrypt(rk.Key, in, opts)
	if err != nil || !inRange || !okAlg || !found || len(k) != want {
		return nil, false, nil
	}
	return k, true, ck
}

// rsaDecrypt is the RSA-OAEP private-key operation; tests watch it.
var rsaDecrypt = func(k *rsa.PrivateKey, ct []byte, opts *rsa.OAEPOptions) ([]byte, error) {
	return k.Decrypt(nil, ct, opts)
}

// rsaInRange reports whether ct is a ciphertext k's private-key operation
// takes: as long as the modulus, and below it. The modulus is public, so
// the comparison need not be constant time.
func rsaInRange(k *rsa.PrivateKey, ct []byte) bool {
	return len(ct) == k.Size() && new(big.Int).SetBytes(ct).Cmp(k.N) < 0
}

// rsaStandIn is a ciphertext in k's range (a zero byte, then 0xff: below
// any modulus of its length), whose decryption fails like any other.
func rsaStandIn(k *rsa.PrivateKey) []byte {
	b := bytes.Repeat([]byte{0xff}, k.Size())
	b[0] = 0
	return b
}

// oaepOptions reads an RSA-OAEP EncryptionMethod: DigestMethod SHA-1 (the
// default) or SHA-256, MGF (xmlenc11#rsa-oaep only) MGF1 with SHA-1 (the
// default) or SHA-256, and OAEPparams as the label. ok is false for
// anything else, RSA-1.5 above all.
func oaepOptions(alg string, m *etree.Element) (*rsa.OAEPOptions, bool) {
	if alg != RSAOAEPMGF1P && alg != RSAOAEP {
		return nil, false
	}
	o := &rsa.OAEPOptions{Hash: crypto.SHA1, MGFHash: crypto.SHA1}
	seenDigest, seenMGF, seenParams := false, false, false
	for _, k := range m.ChildElements() {
		switch {
		case k.NamespaceURI() == NamespaceDSig && k.Tag == "DigestMethod" && !seenDigest:
			seenDigest = true
			switch k.SelectAttrValue("Algorithm", "") {
			case DigestSHA1:
				o.Hash = crypto.SHA1
			case DigestSHA256:
				o.Hash = crypto.SHA256
			default:
				return nil, false
			}
		case k.NamespaceURI() == NamespaceXENC11 && k.Tag == "MGF" && alg == RSAOAEP && !seenMGF:
			seenMGF = true
			switch k.SelectAttrValue("Algorithm", "") {
			case MGF1SHA1:
				o.MGFHash = crypto.SHA1
			case MGF1SHA256:
				o.MGFHash = crypto.SHA256
			default:
				return nil, false
			}
		case k.NamespaceURI() == NamespaceXENC && k.Tag == "OAEPparams" && !seenParams:
			seenParams = true
			l, err := xmlsig.DecodeBase64(k.Text())
			if err != nil {
				return nil, false
			}
			o.Label = l
		default:
			return nil, false
		}
	}
	return o, true
}

// rsaKey finds the configured key an EncryptedKey's KeyInfo names. A
// KeyInfo naming nothing it understands, or absent, is the first key with
// found true; one naming a certificate that is not configured is found
// false.
func (d *Decrypter) rsaKey(keyInfo *etree.Element) (*RSAKey, bool) {
	if keyInfo == nil {
		return &d.keys.RSA[0], true
	}
	var match func(k *RSAKey) bool
	for _, el := range descendants(keyInfo) {
		switch ns := el.NamespaceURI(); {
		case ns == NamespaceDSig && el.Tag == "X509Certificate":
			der, err := xmlsig.DecodeBase64(el.Text())
			if err != nil {
				return nil, false
			}
			match = func(k *RSAKey) bool { return k.Cert != nil && bytes.Equal(k.Cert.Raw, der) }
		case ns == NamespaceDSig && el.Tag == "X509SKI":
			v, err := xmlsig.DecodeBase64(el.Text())
			if err != nil {
				return nil, false
			}
			match = func(k *RSAKey) bool { return len(k.ski) > 0 && bytes.Equal(k.ski, v) }
		case ns == NamespaceWSSE && el.Tag == "KeyIdentifier":
			v, err := xmlsig.DecodeBase64(el.Text())
			if err != nil {
				return nil, false
			}
			switch el.SelectAttrValue("ValueType", "") {
			case valueSKI:
				match = func(k *RSAKey) bool { return len(k.ski) > 0 && bytes.Equal(k.ski, v) }
			case valueThumbSHA1:
				match = func(k *RSAKey) bool { return len(k.thumb) > 0 && bytes.Equal(k.thumb, v) }
			default:
				return nil, false
			}
		case ns == NamespaceDSig && el.Tag == "X509IssuerSerial":
			var serial *big.Int
			for _, c := range el.ChildElements() {
				if c.Tag == "X509SerialNumber" {
					serial, _ = new(big.Int).SetString(strings.TrimSpace(c.Text()), 10)
				}
			}
			if serial == nil {
				return nil, false
			}
			// The serial alone selects among our own few certificates;
			// the key must still decrypt, so a false match only fails.
			match = func(k *RSAKey) bool { return k.Cert != nil && k.Cert.SerialNumber.Cmp(serial) == 0 }
		}
		if match != nil {
			break
		}
	}
	if match == nil {
		return &d.keys.RSA[0], true
	}
	for i := range d.keys.RSA {
		if match(&d.keys.RSA[i]) {
			return &d.keys.RSA[i], true
		}
	}
	return nil, false
}

func (d *Decrypter) symmetric(keyInfo *etree.Element) []byte {
	if keyInfo == nil {
		return nil
	}
	for _, el := range keyInfo.ChildElements() {
		if el.NamespaceURI() == NamespaceDSig && el.Tag == "KeyName" {
			return d.keys.Symmetric[strings.TrimSpace(el.Text())]
		}
	}
	return nil
}

func descendants(el *etree.Element) []*etree.Element {
	var out []*etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		for _, k := range e.ChildElements() {
			out = append(out, k)
			walk(k)
		}
	}
	walk(el)
	return out
}

// Thumbprint returns the SHA-1 thumbprint of cert, as a WSS
// ThumbprintSHA1 KeyIdentifier carries it.
func Thumbprint(cert *x509.Certificate) []byte {
	t := sha1.Sum(cert.Raw)
	return t[:]
}

// keyCache is Options.KeyCache: unwrapped content keys by the SHA-256 of
// the EncryptedKey as the configured key reads it (that key's identity,
// the transport algorithm and its OAEP parameters, the wanted length, the
// ciphertext).
//
// Why it is neither an oracle nor a replay hole:
//
//   - Only what the attacker already knows is cached. An entry is written
//     only after content decrypted and authenticated under the key (a GCM
//     tag, or CBC under a signature verified over the ciphertext), so only
//     a sender who knew the content key can have made it. A cache hit
//     (faster: no RSA operation) tells whoever sends that EncryptedKey
//     again only that it once worked, which the one who captured it saw
//     on the wire. A changed EncryptedKey (one bit of an adaptive
//     Bleichenbacher or Manger attack) is never in the cache and always
//     takes the full path, RSA operation included; an EncryptedKey that
//     unwraps but whose content fails is never cached, so "unwraps" is
//     not told apart from "does not" by a second, faster answer.
//   - It does not widen what is accepted. With or without the cache, a
//     message is the same bytes decrypting to the same plaintext; the
//     cache only saves work. A replayed message is refused by the
//     policies' own replay defences (the Timestamp window, the nonce
//     store, the signature replay cache), which run on the plaintext
//     after decryption whether or not the key came from here. Knowing a
//     cached EncryptedKey does not let anyone make new content under it:
//     that needs the content key itself (GCM), or a new signature (CBC).
//   - It is per Decrypter (per route's policy), so a key cached for one
//     route's keys is never used for another's; the configured key's
//     identity is in the cache key, so one ciphertext under two keys is
//     two entries. Entries expire (KeyCacheTTL) and the map is dropped
//     when full: a client churning it costs only its own RSA operations.
type keyCache struct {
	mu sync.Mutex
	m  map[[32]byte]cachedKey
}

type cachedKey struct {
	key     []byte
	expires time.Time
}

func (c *keyCache) get(k [32]byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !time.Now().Before(e.expires) {
		return nil
	}
	return e.key
}

func (c *keyCache) put(k [32]byte, key []byte, max int, ttl time.Duration) {
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= max {
		c.m = make(map[[32]byte]cachedKey)
	}
	c.m[k] = cachedKey{key: key, expires: time.Now().Add(ttl)}
}
