package wssecurity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
	"github.com/gatehouse/gatehouse/internal/xmlscan"
)

// Forward modes of EncryptionConfig.Forward.
const (
	forwardDecrypted = "decrypted"
	forwardReencrypt = "reencrypt"
)

// Upstream key transports (EncryptionConfig.UpstreamKeyTransport).
var upstreamTransports = map[string]xmlenc.KeyOptions{
	// RSA-OAEP with SHA-1 digest and MGF1: what every WS-Security stack
	// reads (WSS4J's default, xmlsec1 1.2). SHA-1 in OAEP is not a
	// collision use: OAEP-SHA1 is sound.
	"rsa-oaep-mgf1p": {Method: xmlenc.RSAOAEPMGF1P, Digest: xmlenc.DigestSHA1},
	// XML Encryption 1.1 RSA-OAEP with SHA-256 digest and MGF1-SHA256.
	"rsa-oaep": {Method: xmlenc.RSAOAEP, Digest: xmlenc.DigestSHA256, MGF: xmlenc.MGF1SHA256},
}

// reencSettings is how the message is encrypted again for the upstream.
type reencSettings struct {
	pub       *rsa.PublicKey
	thumb     []byte
	transport xmlenc.KeyOptions
	maxBody   int64
}

// sealedParts are the parts of a message that arrived encrypted, to be
// encrypted again for the upstream: the Body's content (when any of it
// came encrypted: all of it goes encrypted, which never reveals more than
// the client protected), header blocks and Security header children by
// QName.
type sealedParts struct {
	body     bool
	headers  []qname
	security []qname
}

func (s *sealedParts) empty() bool {
	return !s.body && len(s.headers) == 0 && len(s.security) == 0
}

func addQName(list []qname, el *etree.Element) []qname {
	q := qname{el.NamespaceURI(), el.Tag}
	for _, x := range list {
		if x == q {
			return list
		}
	}
	return append(list, q)
}

// topUnder returns the child of anc that is el or holds el; nil when el is
// not under anc.
func topUnder(anc, el *etree.Element) *etree.Element {
	for e := el; e != nil; e = e.Parent() {
		if e.Parent() == anc {
			return e
		}
	}
	return nil
}

// pending is what Apply leaves for FinishRequest: the parts to encrypt,
// the body Apply forwarded and the tree it was written from.
type pending struct {
	parts sealedParts
	sent  []byte
	doc   *etree.Document
}

// FinishRequest encrypts again, for the upstream's certificate, the parts
// of the message that arrived encrypted, when encryption.forward is
// reencrypt: after the whole chain, so that the policies after this one
// (xmlguard, waf, dlp, an operation allow-list) saw the plaintext, and on
// the body as they left it. A fresh AES-256-GCM key a message is sent
// with RSA-OAEP in a Security header of its own (or in the kept one), as
// WSS 1.1 §9 describes and WSS4J and WCF read it.
func (p *Policy) FinishRequest(ctx context.Context, ex *policy.Exchange) error {
	v, _ := ex.Value(p).(*pending)
	if v == nil {
		return nil
	}
	ex.SetValue(p, nil)
	body, err := ex.Body(p.s.maxBodyBytes * 2)
	if err != nil {
		return err
	}
	var out []byte
	if len(body) > 0 && len(body) == len(v.sent) && &body[0] == &v.sent[0] && v.doc != nil {
		// No policy after this one changed the body: encrypt in the tree
		// it was written from, instead of scanning and parsing it again.
		out, err = p.s.enc.reenc.sealDoc(v.doc, &v.parts, p.s.keepHeader, p.s.actors)
	} else {
		out, err = p.s.enc.reenc.seal(body, &v.parts, p.s.keepHeader, p.s.actors)
	}
	if err != nil {
		return fmt.Errorf("wssecurity: encrypting for the upstream: %w", err)
	}
	ex.SetBody(out)
	return nil
}

// seal encrypts the parts of msg to the upstream and returns the message.
// msg is the gateway's own output, or what a later policy made of it.
func (r *reencSettings) seal(msg []byte, parts *sealedParts, keepHeader bool, actors map[string]bool) ([]byte, error) {
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{PreserveDuplicateAttrs: true, MaxDepth: maxDepth, CharsetReader: utf8Only}
	lim := xmlscan.DefaultLimits()
	lim.MaxBytes = 2 * r.maxBody
	if err := xmlscan.Scan(msg, lim); err != nil {
		return nil, err
	}
	if err := doc.ReadFromBytes(msg); err != nil {
		return nil, err
	}
	return r.sealDoc(doc, parts, keepHeader, actors)
}

// sealDoc is seal on the message's tree, which it changes.
func (r *reencSettings) sealDoc(doc *etree.Document, parts *sealedParts, keepHeader bool, actors map[string]bool) ([]byte, error) {
	env := doc.Root()
	if env == nil || env.Tag != "Envelope" {
		return nil, fmt.Errorf("no SOAP Envelope")
	}
	soapNS := env.NamespaceURI()
	var header, body *etree.Element
	for _, k := range env.ChildElements() {
		switch {
		case k.Tag == "Header" && k.NamespaceURI() == soapNS:
			header = k
		case k.Tag == "Body" && k.NamespaceURI() == soapNS:
			body = k
		}
	}
	if body == nil {
		return nil, fmt.Errorf("no SOAP Body")
	}
	key := xmlenc.NewKey(xmlenc.AES256GCM)
	ekID := "EK-" + randomID()
	ki := func() *etree.Element {
		k := etree.NewElement("ds:KeyInfo")
		k.CreateAttr("xmlns:ds", xmlenc.NamespaceDSig)
		str := k.CreateElement("wsse:SecurityTokenReference")
		str.CreateAttr("xmlns:wsse", NamespaceWSSE)
		str.CreateElement("wsse:Reference").CreateAttr("URI", "#"+ekID)
		return k
	}
	var refs []string
	seal := func(el *etree.Element, typ string) (*etree.Element, error) {
		id := "ED-" + randomID()
		ed, err := xmlenc.Seal(el, typ, xmlenc.AES256GCM, key, id, ki())
		if err != nil {
			return nil, err
		}
		refs = append(refs, id)
		return ed, nil
	}

	if parts.body && hasContent(body) {
		if _, err := seal(body, xmlenc.TypeContent); err != nil {
			return nil, err
		}
	}
	var sec *etree.Element
	if header != nil {
		for _, h := range header.ChildElements() {
			if h.Tag == "Security" && h.NamespaceURI() == NamespaceWSSE {
				if keepHeader && sec == nil && ours(h, soapNS, actors) {
					sec = h
				}
				continue
			}
			if !matches(parts.headers, h) {
				continue
			}
			// WSS 1.1 §9.3: an encrypted header block travels in an
			// EncryptedHeader carrying its SOAP attributes, so that
			// intermediaries still see mustUnderstand and the role.
			eh := etree.NewElement("wsse11:EncryptedHeader")
			eh.CreateAttr("xmlns:wsse11", NamespaceWSSE11)
			for _, a := range h.Attr {
				if a.Space != "" && a.NamespaceURI() == soapNS {
					switch a.Key {
					case "mustUnderstand", "actor", "role", "relay":
						eh.CreateAttr("xmlns:"+a.Space, soapNS)
						eh.CreateAttr(a.Space+":"+a.Key, a.Value)
					}
				}
			}
			ed, err := seal(h, xmlenc.TypeElement)
			if err != nil {
				return nil, err
			}
			at := ed.Index()
			header.RemoveChildAt(at)
			eh.AddChild(ed)
			header.InsertChildAt(at, eh)
		}
	}
	if sec != nil {
		for _, k := range sec.ChildElements() {
			if matches(parts.security, k) {
				if _, err := seal(k, xmlenc.TypeElement); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(refs) == 0 {
		// What arrived encrypted is gone (a later policy removed it):
		// there is nothing secret left to protect.
		return doc.WriteToBytes()
	}
	o := r.transport
	o.ID = ekID
	o.KeyInfo = thumbKeyInfo(r.thumb)
	ek, err := xmlenc.EncryptKey(r.pub, key, o)
	if err != nil {
		return nil, err
	}
	rl := ek.CreateElement("xenc:ReferenceList")
	for _, id := range refs {
		rl.CreateElement("xenc:DataReference").CreateAttr("URI", "#"+id)
	}
	if sec == nil {
		if header == nil {
			// In the envelope's namespace: its prefix, or the default
			// namespace it is in.
			header = etree.NewElement("Header")
			header.Space = env.Space
			env.InsertChildAt(body.Index(), header)
		}
		sec = etree.NewElement("wsse:Security")
		sec.CreateAttr("xmlns:wsse", NamespaceWSSE)
		prefix := env.Space
		if prefix == "" {
			prefix = "gwsoap"
			sec.CreateAttr("xmlns:gwsoap", soapNS)
		}
		sec.CreateAttr(prefix+":mustUnderstand", "1")
		header.InsertChildAt(0, sec)
	}
	// First in the header: the upstream decrypts before it verifies a
	// signature the client made over the plaintext (WSS 1.1 §9: header
	// order is processing order).
	sec.InsertChildAt(0, ek)
	return doc.WriteToBytes()
}

// ours reports whether a Security header is the one the gateway processed
// (no actor, the ultimate receiver, next, or a configured actor).
func ours(h *etree.Element, soapNS string, actors map[string]bool) bool {
	for _, a := range h.Attr {
		if a.Space != "" && a.NamespaceURI() == soapNS && (a.Key == "actor" || a.Key == "role") {
			switch a.Value {
			case actorNext11, roleNext12, roleUltimate:
				return true
			}
			return actors[a.Value]
		}
	}
	return true
}

func matches(list []qname, el *etree.Element) bool {
	for _, q := range list {
		if q.local == el.Tag && q.space == el.NamespaceURI() {
			return true
		}
	}
	return false
}

func hasContent(el *etree.Element) bool {
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.Element:
			return true
		case *etree.CharData:
			if !t.IsWhitespace() {
				return true
			}
		}
	}
	return false
}

// thumbKeyInfo names the upstream's certificate by its SHA-1 thumbprint
// (WSS 1.1 KeyIdentifier ThumbprintSHA1).
func thumbKeyInfo(thumb []byte) *etree.Element {
	ki := etree.NewElement("ds:KeyInfo")
	ki.CreateAttr("xmlns:ds", xmlenc.NamespaceDSig)
	str := ki.CreateElement("wsse:SecurityTokenReference")
	str.CreateAttr("xmlns:wsse", NamespaceWSSE)
	kid := str.CreateElement("wsse:KeyIdentifier")
	kid.CreateAttr("EncodingType", encBase64)
	kid.CreateAttr("ValueType", valueThumbSHA1)
	kid.SetText(base64.StdEncoding.EncodeToString(thumb))
	return ki
}

func randomID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("wssecurity: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}
