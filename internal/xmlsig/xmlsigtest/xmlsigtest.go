// Package xmlsigtest holds helpers for tests of XML signatures: a signer
// producing WS-Security style detached signatures (for tests that need
// many variants; the independent peers, xmlsec1, node-soap and xml-crypto,
// prove interoperability), RSA and ECDSA certificates made in the test, and
// the xmlsec1 tool, installed with apt-get when missing.
package xmlsigtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/peertest"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// Xmlsec1 returns the path of Debian's xmlsec1, installing the package
// with apt-get (once per test binary) when it is missing. When it cannot be
// had the peer is unavailable (peertest.Unavailable: a loud skip, a
// failure under CI=true).
func Xmlsec1(t testing.TB) string {
	t.Helper()
	return peertest.Debian(t, "xmlsec1", "xmlsec1")
}

// PythonPeers returns Debian's python3 (/usr/bin/python3, not a pyenv or
// venv interpreter: the Debian packages live in its dist-packages) with
// python3-zeep and python3-xmlsec importable, installing the packages
// with apt-get (once per test binary) when they are missing. It skips t,
// with the reason, when they cannot be installed, except under CI=true,
// where a peer that cannot be installed fails the test.
func PythonPeers(t testing.TB) string {
	t.Helper()
	const py = "/usr/bin/python3"
	importable := func() bool { return exec.Command(py, "-c", "import zeep, xmlsec").Run() == nil }
	if importable() {
		return py
	}
	peertest.DebianPackages(t, "python3-zeep", "python3-xmlsec")
	if !importable() {
		peertest.Unavailable(t, "python3-zeep and python3-xmlsec are installed but %s cannot import them", py)
	}
	return py
}

var (
	keyMu   sync.Mutex
	rsaKeys []*rsa.PrivateKey
)

// RSAKey returns the i-th RSA 2048 key of this test binary, generating it
// on first use: key generation is slow, and tests need only a few.
func RSAKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	for len(rsaKeys) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rsaKeys = append(rsaKeys, k)
	}
	return rsaKeys[i]
}

// ECKey returns a fresh P-256 key.
func ECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Cert is a certificate and its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA returns a self-signed CA named cn with RSA key 0, valid for a day
// around now.
func NewCA(t testing.TB, cn string) *Cert {
	t.Helper()
	return NewCAWithKey(t, cn, RSAKey(t, 0))
}

// NewCAWithKey is NewCA with the given key (an ECDSA key is much faster
// to make, which matters where RSA key generation is slow, as in fuzzing).
func NewCAWithKey(t testing.TB, cn string, key crypto.Signer) *Cert {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Gatehouse Test"}},
		NotBefore:             time.Now().Add(-24 * time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          []byte{1, 2, 3, 4},
	}
	return issue(t, tmpl, tmpl, key, key)
}

// Issue issues a certificate for subject with key, signed by ca. Unless
// edit changes them, it is valid for a day around now with key usage
// digital signature and a subject key identifier. edit may be nil.
func (ca *Cert) Issue(t testing.TB, subject pkix.Name, key crypto.Signer, edit func(*x509.Certificate)) *Cert {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ski := sha1.Sum(pubDER)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    time.Now().Add(-24 * time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		SubjectKeyId: ski[:],
	}
	if edit != nil {
		edit(tmpl)
	}
	return issue(t, tmpl, ca.Cert, key, ca.Key)
}

func issue(t testing.TB, tmpl, parent *x509.Certificate, key, parentKey crypto.Signer) *Cert {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{Cert: c, Key: key}
}

// CertPEM returns the certificate as PEM.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM returns the private key as PKCS#8 PEM.
func (c *Cert) KeyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Signer makes detached signatures the way WS-Security stacks do.
type Signer struct {
	// Key signs: an *rsa.PrivateKey (RSA-SHA256, or RSA-SHA1 when SHA1)
	// or an *ecdsa.PrivateKey (ECDSA-SHA256).
	Key crypto.Signer
	// SHA1 selects SHA-1 digests and RSA-SHA1.
	SHA1 bool
	// Enveloped puts the enveloped-signature transform before exclusive
	// c14n in every reference, for a signature placed inside what it
	// signs.
	Enveloped bool
}

// Sign appends to parent a ds:Signature with one Reference (exclusive c14n)
// per id, each the element of the document with that ID, and keyInfo (if
// not nil) as the content of its ds:KeyInfo. It returns the Signature.
func (s Signer) Sign(t testing.TB, parent *etree.Element, ids []string, keyInfo *etree.Element) *etree.Element {
	t.Helper()
	root := parent
	for root.Parent() != nil {
		root = root.Parent()
	}
	idx, err := xmlsig.NewIDIndex(root)
	if err != nil {
		t.Fatal(err)
	}
	digestAlg, method := xmlsig.AlgSHA256, xmlsig.AlgRSASHA256
	if s.SHA1 {
		digestAlg, method = xmlsig.AlgSHA1, xmlsig.AlgRSASHA1
	}
	if _, ok := s.Key.(*ecdsa.PrivateKey); ok {
		method = xmlsig.AlgECDSASHA256
	}
	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", xmlsig.NamespaceDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", xmlsig.AlgExcC14N)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", method)
	for _, id := range ids {
		el := idx.Lookup(id)
		if el == nil {
			t.Fatalf("xmlsigtest: no element with ID %q", id)
		}
		c, err := xmlsig.Canonicalize(el, "")
		if err != nil {
			t.Fatal(err)
		}
		var sum []byte
		if s.SHA1 {
			d := sha1.Sum(c)
			sum = d[:]
		} else {
			d := sha256.Sum256(c)
			sum = d[:]
		}
		ref := si.CreateElement("ds:Reference")
		ref.CreateAttr("URI", "#"+id)
		trs := ref.CreateElement("ds:Transforms")
		if s.Enveloped {
			trs.CreateElement("ds:Transform").CreateAttr("Algorithm", xmlsig.AlgEnveloped)
		}
		trs.CreateElement("ds:Transform").CreateAttr("Algorithm", xmlsig.AlgExcC14N)
		ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", digestAlg)
		ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(sum))
	}
	sv := sig.CreateElement("ds:SignatureValue")
	if keyInfo != nil {
		sig.CreateElement("ds:KeyInfo").AddChild(keyInfo)
	}
	parent.AddChild(sig)
	c, err := xmlsig.Canonicalize(si, "")
	if err != nil {
		t.Fatal(err)
	}
	sv.SetText(base64.StdEncoding.EncodeToString(s.signBytes(t, c)))
	return sig
}

func (s Signer) signBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	switch k := s.Key.(type) {
	case *rsa.PrivateKey:
		h, sum := crypto.SHA256, sha256.Sum256(data)
		digest := sum[:]
		if s.SHA1 {
			d := sha1.Sum(data)
			h, digest = crypto.SHA1, d[:]
		}
		v, err := rsa.SignPKCS1v15(rand.Reader, k, h, digest)
		if err != nil {
			t.Fatal(err)
		}
		return v
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256(data)
		r, sv, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		sv.FillBytes(out[32:])
		return out
	}
	t.Fatalf("xmlsigtest: unsupported key %T", s.Key)
	return nil
}

// Run runs name with args and returns its stdout, failing t with stderr.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return stdout.Bytes()
}
