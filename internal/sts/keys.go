package sts

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/saml2/lifecycle"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/wstrust"
)

// Store keys of the STS's state.
const (
	// signingKey holds the made signing key and its certificate.
	signingKey = "sts:signing"
	// PublishedKey holds the issuer name and signing certificate (public
	// only), for relying parties in the same gateway (wstrust.PublishedKey).
	PublishedKey  = wstrust.PublishedKey
	issuedPrefix  = "sts:issued:"
	renewedPrefix = "sts:renewed:"
	// CancelChannel carries the ID of every cancelled assertion to every
	// instance ("ID UNIXEXP"), for relying parties that keep a local view.
	CancelChannel = lifecycle.CancelChannel
)

// storedKey is the made signing key as kept in the store: the certificate
// in clear, the PKCS #8 private key sealed with AES-256-GCM under the
// key-encryption key with the clear fields as additional data.
type storedKey struct {
	Alg     string    `json:"alg"`
	Created time.Time `json:"created"`
	Cert    []byte    `json:"cert"`
	Nonce   []byte    `json:"nonce,omitempty"`
	Sealed  []byte    `json:"sealed,omitempty"`
	Plain   []byte    `json:"plain,omitempty"`
}

// Published is what the STS publishes in the store for relying parties
// (wstrust.Published).
type Published = wstrust.Published

// LoadPublished reads the published issuer and certificate; ErrNotFound
// from the store when no STS has started on it yet. Relying parties call
// wstrust.LoadPublished, which this forwards to.
func LoadPublished(ctx context.Context, st store.Store) (string, *x509.Certificate, error) {
	return wstrust.LoadPublished(ctx, st)
}

// IsCancelled reports whether the assertion id was cancelled at the STS
// sharing st (the lifecycle component's registry, internal/saml2/lifecycle).
func IsCancelled(ctx context.Context, st store.Store, id string) (bool, error) {
	return lifecycle.New(st).Cancelled(ctx, id)
}

// loadSigner returns the signer: the configured key file, or the key kept
// in the store, made (with a self-signed certificate) on first start.
// Several instances starting at once agree through SetNX.
func (srv *Server) loadSigner(ctx context.Context) (*saml2.Signer, error) {
	s := srv.s
	if s.keyFile != "" {
		return loadKeyFiles(s.keyFile, s.certFile)
	}
	for range 3 {
		raw, err := srv.st.Get(ctx, signingKey)
		if errors.Is(err, store.ErrNotFound) {
			sk, err := srv.makeKey()
			if err != nil {
				return nil, err
			}
			b, _ := json.Marshal(sk)
			ok, err := srv.st.SetNX(ctx, signingKey, b, 0)
			if err != nil {
				return nil, fmt.Errorf("sts: storing the signing key: %w", err)
			}
			if !ok {
				continue // another instance was first
			}
			raw = b
		} else if err != nil {
			return nil, fmt.Errorf("sts: reading the signing key: %w", err)
		}
		var sk storedKey
		if err := json.Unmarshal(raw, &sk); err != nil {
			return nil, fmt.Errorf("sts: the stored signing key is corrupt: %w", err)
		}
		if sk.Alg != s.alg {
			return nil, fmt.Errorf("sts: the stored signing key is %s but signature is %s: remove the store key %q to make a new one (relying parties must then trust the new certificate)", sk.Alg, s.alg, signingKey)
		}
		return srv.openKey(&sk)
	}
	return nil, errors.New("sts: could not agree on a signing key with other instances")
}

func (srv *Server) aad(sk *storedKey) []byte {
	return []byte("gatehouse-sts-key\x00" + sk.Alg + "\x00" + sk.Created.UTC().Format(time.RFC3339Nano))
}

func (srv *Server) makeKey() (*storedKey, error) {
	var key crypto.Signer
	var err error
	if srv.s.alg == algECDSA {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, fmt.Errorf("sts: making the signing key: %w", err)
	}
	now := srv.now().UTC()
	cert, err := selfSigned(key, srv.s.issuer, now)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	sk := &storedKey{Alg: srv.s.alg, Created: now, Cert: cert.Raw}
	if srv.s.kek == nil {
		sk.Plain = der
		return sk, nil
	}
	gcm, err := newGCM(srv.s.kek)
	if err != nil {
		return nil, err
	}
	sk.Nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(sk.Nonce); err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	sk.Sealed = gcm.Seal(nil, sk.Nonce, der, srv.aad(sk))
	return sk, nil
}

// ErrKeyDecrypt is the cause of a start failure on a stored key that the
// configured key-encryption key does not open.
var ErrKeyDecrypt = errors.New("sts: cannot decrypt the stored signing key (wrong key_encryption_key?)")

func (srv *Server) openKey(sk *storedKey) (*saml2.Signer, error) {
	var der []byte
	switch {
	case sk.Sealed != nil:
		if srv.s.kek == nil {
			return nil, fmt.Errorf("sts: the stored key is encrypted and no key_encryption_key is configured: %w", ErrKeyDecrypt)
		}
		gcm, err := newGCM(srv.s.kek)
		if err != nil {
			return nil, err
		}
		if der, err = gcm.Open(nil, sk.Nonce, sk.Sealed, srv.aad(sk)); err != nil {
			return nil, ErrKeyDecrypt
		}
	case srv.s.kek != nil:
		// A plaintext key where only sealed ones belong may have been
		// planted: refused rather than trusted.
		return nil, fmt.Errorf("sts: the stored key is in plain text but key_encryption_key is set; remove the store key %q", signingKey)
	default:
		der = sk.Plain
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("sts: stored key: %w", err)
	}
	cert, err := x509.ParseCertificate(sk.Cert)
	if err != nil {
		return nil, fmt.Errorf("sts: stored certificate: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("sts: the stored key cannot sign")
	}
	return saml2.NewSigner(signer, cert)
}

func newGCM(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	return cipher.NewGCM(block)
}

// selfSigned makes the certificate relying parties pin: ten years, since
// it is trusted by being pinned, not by a chain, and a rollover is a
// deliberate act (remove the store key).
func selfSigned(key crypto.Signer, issuer string, now time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	cn := issuer
	if len(cn) > 64 {
		cn = cn[:64]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Gatehouse STS"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("sts: making the certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// loadKeyFiles reads a PEM private key (PKCS #8, PKCS #1 or SEC 1) and its
// PEM certificate.
func loadKeyFiles(keyFile, certFile string) (*saml2.Signer, error) {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, fmt.Errorf("sts: %s holds no PEM key", keyFile)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("sts: %s: unexpected PEM block %q", keyFile, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("sts: %s: %w", keyFile, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("sts: %s is not a signing key", keyFile)
	}
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	cblk, _ := pem.Decode(cb)
	if cblk == nil || cblk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("sts: %s holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sts: %s: %w", certFile, err)
	}
	return saml2.NewSigner(signer, cert)
}
