package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/wsse"
	"github.com/gatehouse/gatehouse/internal/xmlenc"
)

// cmdKeysStoreEncryption puts an RSA decryption key (the key and its
// certificate) into the config's state store under a name, sealed with
// the key-encryption key read from an environment variable, for
// `wssecurity` policies whose encryption.keys name it ({store: NAME}).
// Every gateway on that store reads it at its next config load.
func cmdKeysStoreEncryption(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keys store-encryption", stderr)
	path := fs.String("config", "", "the YAML config `file` whose store receives the key")
	name := fs.String("name", "", "the key's `name` (encryption.keys: [{store: NAME}])")
	certFile := fs.String("cert", "", "the PEM certificate `file` clients encrypt to")
	keyFile := fs.String("key", "", "the PEM private key `file` (RSA, 2048 bits or more)")
	kekEnv := fs.String("kek-env", "GATEHOUSE_KEK", "the environment `variable` holding the key-encryption key (32 bytes, base64 or hex)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || *name == "" || *certFile == "" || *keyFile == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: gatehouse keys store-encryption --config FILE --name NAME --cert FILE --key FILE [--kek-env VAR]")
		return 2
	}
	kek, err := wsse.ParseKEK(os.Getenv(*kekEnv))
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse keys store-encryption: $%s: %v\n", *kekEnv, err)
		return 1
	}
	keyPEM, err := os.ReadFile(*keyFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rk, err := xmlenc.LoadRSAKey(*certFile, keyPEM)
	if err == nil {
		// New applies the checks a decrypter applies (2048 bits, the
		// key matching its certificate) before anything is stored.
		_, err = xmlenc.New(xmlenc.Keys{RSA: []xmlenc.RSAKey{rk}}, xmlenc.Options{})
	}
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse keys store-encryption: %v\n", err)
		return 1
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.Store.Type == "memory" {
		fmt.Fprintln(stderr, "gatehouse keys store-encryption: the memory store lives inside the gateway; use a file or Redis store")
		return 1
	}
	st, err := store.Open(cfg.Store, filepath.Dir(*path), time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse keys store-encryption: opening the store: %v\n", err)
		return 1
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := wsse.PutEncryptionKey(ctx, st, *name, kek, rk.Key, rk.Cert, time.Now()); err != nil {
		fmt.Fprintf(stderr, "gatehouse keys store-encryption: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "decryption key %q stored (certificate %s); gateways read it at their next config load\n", *name, rk.Cert.Subject)
	return 0
}
