// Command mintsoap makes what the load script's WS-Security target needs:
// a CA and a client certificate (RSA 2048) written into -dir, and one SOAP
// 1.1 GetProduct message signed by xmlsec1 (Debian's, a peer we did not
// write): a BinarySecurityToken of the certificate, a Timestamp valid for
// an hour, and an RSA-SHA256 signature over Body and Timestamp with
// exclusive c14n, the X.509 token profile as WSS4J sends it. The message
// (3.4 KB, a third of it the certificate) is written to -dir/signed.xml.
package main

import (
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/demo"
)

func main() {
	dir := flag.String("dir", "", "`directory` for ca.pem, client.pem, client-key.pem and signed.xml (required)")
	flag.Parse()
	if *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "mintsoap:", err)
		os.Exit(1)
	}
}

const (
	nsWSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	x509v3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
	b64enc = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
	excC14 = "http://www.w3.org/2001/10/xml-exc-c14n#"
)

func run(dir string) error {
	now := time.Now().UTC().Truncate(time.Second)
	pki, err := demo.WritePKI(dir, now, 24*time.Hour)
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(pki.CertFile)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(certPEM)
	ref := func(id string) string {
		return `<ds:Reference URI="#` + id + `"><ds:Transforms><ds:Transform Algorithm="` + excC14 + `"/></ds:Transforms>` +
			`<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference>`
	}
	// A template: xmlsec1 fills in the digests and the signature value.
	tmpl := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsu="` + nsWSU + `"><soap:Header>` +
		`<wsse:Security xmlns:wsse="` + nsWSSE + `">` +
		`<wsse:BinarySecurityToken EncodingType="` + b64enc + `" ValueType="` + x509v3 + `" wsu:Id="X509-1">` +
		base64.StdEncoding.EncodeToString(block.Bytes) + `</wsse:BinarySecurityToken>` +
		`<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>` + now.Format(time.RFC3339) + `</wsu:Created><wsu:Expires>` +
		now.Add(time.Hour).Format(time.RFC3339) + `</wsu:Expires></wsu:Timestamp>` +
		`<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>` +
		`<ds:CanonicalizationMethod Algorithm="` + excC14 + `"/>` +
		`<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>` +
		ref("TS-1") + ref("Body-1") + `</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>` +
		`<ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI="#X509-1" ValueType="` + x509v3 + `"/>` +
		`</wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature></wsse:Security></soap:Header>` +
		`<soap:Body wsu:Id="Body-1"><GetProduct xmlns="urn:gatehouse:demo:products"><id>p-1001</id></GetProduct>` +
		`</soap:Body></soap:Envelope>`
	tmplFile := filepath.Join(dir, "template.xml")
	if err := os.WriteFile(tmplFile, []byte(tmpl), 0o644); err != nil {
		return err
	}
	out, err := exec.Command("xmlsec1", "--sign", "--privkey-pem", pki.KeyFile,
		"--id-attr:Id", "Body", "--id-attr:Id", "Timestamp", tmplFile).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return fmt.Errorf("xmlsec1: %v\n%s", err, ee.Stderr)
		}
		return fmt.Errorf("xmlsec1 (apt-get install xmlsec1): %w", err)
	}
	if strings.Contains(string(out), "<ds:SignatureValue></ds:SignatureValue>") {
		return fmt.Errorf("xmlsec1 did not sign the template")
	}
	return os.WriteFile(filepath.Join(dir, "signed.xml"), out, 0o644)
}
