// Command mintjwt makes what the load script's jwt target needs: a fresh
// ES256 key, its public JWK Set written to the file named by -jwks, and
// one access token signed with it, printed on stdout. The token says what
// bench/jwt.yaml checks: issuer, audience, typ at+jwt and scope.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

func main() {
	jwksFile := flag.String("jwks", "", "`file` to write the public JWK Set to (required)")
	scope := flag.String("scope", "products:read", "the token's scope")
	flag.Parse()
	if *jwksFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*jwksFile, *scope); err != nil {
		fmt.Fprintln(os.Stderr, "mintjwt:", err)
		os.Exit(1)
	}
}

func run(jwksFile, scope string) error {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return err
	}
	if err := jwk.AssignKeyID(key); err != nil {
		return err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return err
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return err
	}
	if err := os.WriteFile(jwksFile, doc, 0o644); err != nil {
		return err
	}
	now := time.Now()
	tok, err := jwt.NewBuilder().
		Issuer("https://bench.gatehouse.invalid").
		Subject("bench-client").
		Audience([]string{"bench"}).
		IssuedAt(now).
		Expiration(now.Add(time.Hour)).
		JwtID(fmt.Sprint(now.UnixNano())).
		Claim("client_id", "bench-client").
		Claim("scope", scope).
		Build()
	if err != nil {
		return err
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, "at+jwt"); err != nil {
		return err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return err
	}
	fmt.Println(string(signed))
	return nil
}
