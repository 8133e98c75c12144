package saml

import (
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// TestSignatureWrapping applies the XSW1-XSW8 permutations (SAMLRaider's
// XSWHelpers, crewjam/saml's TestXswPermutation*) to a real assertion the
// STS signed for bob, in a real message: each injects an evil assertion
// for "admin" where the policy looks, and keeps the genuine signed one
// somewhere else, so that a verifier that checks one element and acts on
// another lets admin in. Every permutation must be refused, and never
// with admin as the principal.
func TestSignatureWrapping(t *testing.T) {
	f := newFixture(t)
	p := f.policy(t, basicPolicy)
	tok := f.issue(t, "bob", "bobpw", "urn:gatehouse:products")

	// parts returns a fresh message tree: the Security header, the signed
	// assertion in it, and an evil copy (NameID admin) without signature.
	parts := func() (*etree.Document, *etree.Element, *etree.Element, *etree.Element) {
		doc := etree.NewDocument()
		if err := doc.ReadFromString(f.message(tok, "GetProduct")); err != nil {
			t.Fatal(err)
		}
		sec := doc.FindElement("//Security")
		orig := sec.SelectElement("Assertion")
		evil := orig.Copy()
		evil.RemoveChild(evil.SelectElement("Signature"))
		evil.FindElement("Subject/NameID").SetText("admin")
		return doc, sec, orig, evil
	}
	for _, tc := range []struct {
		name  string
		build func() *etree.Document
	}{
		{"XSW1 signed assertion moved to another header, evil in its place", func() *etree.Document {
			doc, sec, orig, evil := parts()
			sec.RemoveChild(orig)
			sec.AddChild(evil)
			sec.Parent().CreateElement("x:Wrapper").CreateAttr("xmlns:x", "urn:x")
			sec.Parent().SelectElement("Wrapper").AddChild(orig)
			return doc
		}},
		{"XSW2 evil first, signed one after it", func() *etree.Document {
			doc, sec, orig, evil := parts()
			sec.InsertChildAt(orig.Index(), evil)
			return doc
		}},
		{"XSW3 evil with the same ID before the signed one, outside", func() *etree.Document {
			doc, sec, orig, evil := parts()
			sec.RemoveChild(orig)
			sec.AddChild(evil)
			body := doc.FindElement("//Body")
			body.Parent().InsertChildAt(body.Index(), orig)
			return doc
		}},
		{"XSW4 signed assertion inside the evil one", func() *etree.Document {
			doc, sec, orig, evil := parts()
			sec.RemoveChild(orig)
			evil.AddChild(orig)
			sec.AddChild(evil)
			return doc
		}},
		{"XSW5 signature moved onto the evil assertion, original elsewhere", func() *etree.Document {
			doc, sec, orig, evil := parts()
			sig := orig.SelectElement("Signature")
			orig.RemoveChild(sig)
			evil.InsertChildAt(1, sig)
			sec.RemoveChild(orig)
			sec.AddChild(evil)
			doc.FindElement("//Header").AddChild(orig)
			return doc
		}},
		{"XSW6 original inside the moved signature", func() *etree.Document {
			doc, sec, orig, evil := parts()
			sig := orig.SelectElement("Signature")
			orig.RemoveChild(sig)
			evil.InsertChildAt(1, sig)
			obj := sig.CreateElement("ds:Object")
			obj.AddChild(orig)
			sec.RemoveChild(orig)
			sec.AddChild(evil)
			return doc
		}},
		{"XSW7 original in an Advice of the evil one", func() *etree.Document {
			doc, sec, orig, evil := parts()
			sec.RemoveChild(orig)
			adv := evil.CreateElement("saml2:Advice")
			adv.AddChild(orig)
			sec.AddChild(evil)
			return doc
		}},
		{"XSW8 original in an Object of a signature copied into the evil one", func() *etree.Document {
			doc, sec, orig, evil := parts()
			sig := orig.SelectElement("Signature").Copy()
			obj := sig.CreateElement("ds:Object")
			sec.RemoveChild(orig)
			obj.AddChild(orig)
			evil.InsertChildAt(1, sig)
			sec.AddChild(evil)
			return doc
		}},
		{"evil with a different ID and the signature copied", func() *etree.Document {
			doc, sec, orig, evil := parts()
			evil.SelectAttr("ID").Value = "_evil"
			evil.InsertChildAt(1, orig.SelectElement("Signature").Copy())
			sec.RemoveChild(orig)
			sec.AddChild(evil)
			doc.FindElement("//Body").AddChild(orig)
			return doc
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.build().WriteToString()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s, ">admin<") {
				t.Fatal("the permutation lost the evil assertion")
			}
			ex, err := apply(t, p, s, true)
			if err == nil {
				t.Fatalf("accepted as %+v, want refused:\n%s", ex.Principal, s)
			}
			if ex.Principal != nil {
				t.Fatalf("refused but the principal was set to %q", ex.Principal.Subject)
			}
		})
	}
	// The untouched message is accepted: the refusals above are the
	// permutations' doing.
	if _, err := apply(t, p, f.message(tok, "GetProduct"), true); err != nil {
		t.Fatalf("the genuine message: %v", err)
	}
}
