package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// PKI is the demo's throwaway certificate authority and the one client
// certificate it issued, written as PEM files into a directory: what a SOAP
// client needs to sign CreateProduct requests (WS-Security X.509 token
// profile) and what the gateway trusts to check them.
type PKI struct {
	// CAFile is the CA certificate the gateway trusts.
	CAFile string
	// CertFile and KeyFile are the client's certificate and its private
	// key (PKCS#8), for signing requests.
	CertFile, KeyFile string
	// Subject is the client certificate's subject, as the gateway reports
	// it in the principal.
	Subject string
	// EncCertFile and EncKeyFile are the gateway's encryption certificate
	// and key (PKCS#8): clients encrypt GetProductCost messages to the
	// certificate, the gateway decrypts them with the key.
	EncCertFile, EncKeyFile string
}

// ClientCN is the common name of the demo's signing client.
const ClientCN = "demo-catalog-client"

// WritePKI makes a CA and a client certificate valid from now for validity,
// and writes ca.pem, client.pem and client-key.pem (mode 0600) into dir.
// RSA 2048 keys, because every WS-Security stack signs with RSA-SHA256.
func WritePKI(dir string, now time.Time, validity time.Duration) (*PKI, error) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Gatehouse demo CA", Organization: []string{"Gatehouse demo"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("demo: CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: ClientCN, Organization: []string{"Gatehouse demo"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("demo: client certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	encKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	enc := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "Gatehouse demo gateway encryption", Organization: []string{"Gatehouse demo"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageKeyEncipherment,
	}
	encDER, err := x509.CreateCertificate(rand.Reader, enc, caCert, &encKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("demo: encryption certificate: %w", err)
	}
	encKeyDER, err := x509.MarshalPKCS8PrivateKey(encKey)
	if err != nil {
		return nil, err
	}
	p := &PKI{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "client.pem"),
		KeyFile:  filepath.Join(dir, "client-key.pem"),
		Subject:  "CN=" + ClientCN + ",O=Gatehouse demo",

		EncCertFile: filepath.Join(dir, "gateway-enc.pem"),
		EncKeyFile:  filepath.Join(dir, "gateway-enc-key.pem"),
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{p.CAFile, "CERTIFICATE", caDER, 0o644},
		{p.CertFile, "CERTIFICATE", leafDER, 0o644},
		{p.KeyFile, "PRIVATE KEY", keyDER, 0o600},
		{p.EncCertFile, "CERTIFICATE", encDER, 0o644},
		{p.EncKeyFile, "PRIVATE KEY", encKeyDER, 0o600},
	} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	return p, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
