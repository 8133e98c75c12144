package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/internal/keys"
)

var keysUsage = `usage:
  gatehouse keys generate [--alg ES256] --out FILE   write a new private signing key (PEM, mode 0600)
  gatehouse keys jwks --key FILE [--alg ALG] [--kid ID]
                                                     print the public JWK Set relying parties trust
  gatehouse keys rotate --config FILE                rotate the authorization server's signing key
  gatehouse keys refresh [--admin URL] [--token T]   make a running gateway fetch every trusted
                                                     issuer's JWKS now (a withdrawn key stops at once)
  gatehouse keys store-encryption --config FILE --name NAME --cert FILE --key FILE [--kek-env VAR]
                                                     put a wssecurity decryption key into the store
algorithms: ` + strings.Join(keys.Algorithms(), ", ") + "\n"

// cmdKeys handles `gatehouse keys generate` and `gatehouse keys jwks`.
func cmdKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	switch args[0] {
	case "generate":
		return cmdKeysGenerate(args[1:], stdout, stderr)
	case "jwks":
		return cmdKeysJWKS(args[1:], stdout, stderr)
	case "rotate":
		return cmdKeysRotate(args[1:], stdout, stderr)
	case "refresh":
		return cmdKeysRefresh(args[1:], stdout, stderr)
	case "store-encryption":
		return cmdKeysStoreEncryption(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return 0
	}
	fmt.Fprintf(stderr, "gatehouse keys: unknown command %q\n%s", args[0], keysUsage)
	return 2
}

func cmdKeysGenerate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keys generate", stderr)
	alg := fs.String("alg", "ES256", "the signing `algorithm`")
	out := fs.String("out", "", "the private key `file` to create")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	k, err := keys.Generate(*alg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := writeKeyFile(*out, k); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: new %s key, kid %s\nPublish its public JWK Set with: gatehouse keys jwks --key %s\n", *out, k.Algorithm(), k.KeyID(), *out)
	return 0
}

// writeKeyFile creates path with mode 0600 and writes k's PEM to it. An
// existing file is never overwritten: it may be the key upstreams trust.
func writeKeyFile(path string, k *keys.Key) error {
	data, err := k.MarshalPEM()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("keys: %s exists; refusing to overwrite it (remove it first, or choose another --out)", path)
	}
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("keys: writing %s: %w", path, err)
	}
	return nil
}

func cmdKeysJWKS(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keys jwks", stderr)
	path := fs.String("key", "", "the private key `file` (PEM or JWK)")
	alg := fs.String("alg", "", "the signing `algorithm` (default: the JWK's alg, else from the key)")
	kid := fs.String("kid", "", "the key `id` (default: the JWK's kid, else its RFC 7638 thumbprint)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	k, err := keys.Load(*path, *alg, *kid)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	set, err := keys.JWKS(k)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var b bytes.Buffer
	if err := json.Indent(&b, set, "", "  "); err != nil {
		fmt.Fprintln(stderr, "keys:", err)
		return 1
	}
	b.WriteByte('\n')
	if _, err := stdout.Write(b.Bytes()); err != nil {
		fmt.Fprintln(stderr, "keys:", err)
		return 1
	}
	return 0
}
