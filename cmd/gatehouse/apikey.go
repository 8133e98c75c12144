package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authn/apikey"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

const apikeyUsage = `usage: gatehouse apikey create --consumer NAME
       gatehouse apikey create --consumer NAME --store --config FILE [--scopes A,B] [--tier T] [--prefix P]
       gatehouse apikey delete --hash sha256:… --config FILE [--prefix P]`

// cmdAPIKey handles `gatehouse apikey create` and `gatehouse apikey delete`.
// With --store, create writes the new key's hash and consumer to the state
// store of the config's gateway (for authenticators with `store:`); delete
// removes one from it.
func cmdAPIKey(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" && args[0] != "delete" {
		fmt.Fprintln(stderr, apikeyUsage)
		return 2
	}
	fs := newFlagSet("apikey "+args[0], stderr)
	consumer := fs.String("consumer", "", "the consumer `name` the key belongs to")
	toStore := fs.Bool("store", false, "write the key to the state store of the gateway of --config")
	path := fs.String("config", "", "the gateway's YAML config `file` (for --store and delete)")
	prefix := fs.String("prefix", apikey.DefaultStorePrefix, "the store key `prefix` (the authenticator's store.prefix)")
	scopes := fs.String("scopes", "", "comma-separated `scopes` of the consumer (with --store)")
	tier := fs.String("tier", "", "the consumer's rate-limit `tier` (with --store)")
	hash := fs.String("hash", "", "the `hash` of the key to delete (sha256:…)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, apikeyUsage)
		return 2
	}
	if args[0] == "delete" {
		if *hash == "" || *path == "" {
			fmt.Fprintln(stderr, apikeyUsage)
			return 2
		}
		st, code := openStoreFor(*path, stderr)
		if code != 0 {
			return code
		}
		defer st.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := apikey.DeleteStoredKey(ctx, st, *prefix, *hash); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "deleted %s from the store (gateways that cached it accept it until their cache_ttl ends)\n", *hash)
		return 0
	}
	if *consumer == "" || !*toStore && (*path != "" || *scopes != "" || *tier != "") || *toStore && *path == "" {
		fmt.Fprintln(stderr, apikeyUsage)
		return 2
	}
	if !*toStore {
		if err := apikey.WriteCreateOutput(stdout, *consumer); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	key, h, err := apikey.GenerateKey()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	k := apikey.KeyConfig{Consumer: *consumer, Hash: h, Tier: *tier}
	if *scopes != "" {
		k.Scopes = strings.Split(*scopes, ",")
	}
	st, code := openStoreFor(*path, stderr)
	if code != 0 {
		return code
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := apikey.PutStoredKey(ctx, st, *prefix, k); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, `API key for consumer %s (shown only this once: the store keeps only its hash):

    %s

Written to the state store under prefix %q, hash %s.
`, *consumer, key, *prefix, h)
	return 0
}

// openStoreFor opens the state store the config at path names. The memory
// store lives inside a gateway and cannot be written from outside.
func openStoreFor(path string, stderr io.Writer) (store.Store, int) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	if cfg.Store.Type == "memory" {
		fmt.Fprintln(stderr, "gatehouse apikey: the memory store lives inside the gateway and cannot be written from here; use the redis (or file) store")
		return nil, 1
	}
	st, err := store.Open(cfg.Store, filepath.Dir(path), time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse apikey: opening the store: %v\n", err)
		return nil, 1
	}
	return st, 0
}
