package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/authserver"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
)

// cmdKeysRotate handles `gatehouse keys rotate --config FILE`: it opens the
// config's state store and makes the authorization server's next signing
// key active (the previous one stays published until its tokens expire).
// Every gateway on that store picks the new key up at its next key refresh
// (10s). The file store is locked by a running gateway: then send that
// gateway SIGUSR1, which rotates the same way.
func cmdKeysRotate(args []string, stdout, stderr io.Writer) int {
	path, code := configFlag("keys rotate", args, stderr)
	if code != 0 {
		return code
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.AuthorizationServer == nil {
		fmt.Fprintf(stderr, "%s: no authorization_server section: nothing to rotate\n", path)
		return 1
	}
	if cfg.Store.Type == "memory" {
		fmt.Fprintln(stderr, "gatehouse keys rotate: the memory store lives inside the gateway; send the gateway SIGUSR1 instead (kill -USR1 PID)")
		return 1
	}
	st, err := store.Open(cfg.Store, filepath.Dir(path), time.Now)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse keys rotate: opening the store: %v\n(a running gateway holds the file store's lock: send it SIGUSR1 to rotate, kill -USR1 PID)\n", err)
		return 1
	}
	defer st.Close()
	srv, err := authserver.New(*cfg.AuthorizationServer, authserver.Deps{
		Store: st, Config: cfg, BaseDir: filepath.Dir(path), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer srv.Close()
	before := srv.ActiveKeyID()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Rotate(ctx); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "signing key rotated: %s -> %s (the old key stays in the JWKS until its tokens expire)\n", before, srv.ActiveKeyID())
	return 0
}
