// Package gatewaytest runs a real gateway on 127.0.0.1 for the tests of
// the packages it serves (policies that must be seen through the whole
// request path): load a config from YAML, build it, start it, and stop it
// when the test ends.
package gatewaytest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// Gateway is a started gateway. URL is the base URL of its listener named
// "main".
type Gateway struct {
	*gateway.Gateway
	URL  string
	stop sync.Once
}

// Start loads src as the file gatehouse.yaml in opt.BaseDir (a new
// temporary directory when empty), builds the gateway with opt (a Logger
// that discards when nil), starts it and stops it at the test's cleanup.
// A config or start error fails the test.
func Start(t testing.TB, src string, opt gateway.Options) *Gateway {
	t.Helper()
	if opt.BaseDir == "" {
		opt.BaseDir = t.TempDir()
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := config.LoadBytes(filepath.Join(opt.BaseDir, "gatehouse.yaml"), []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		g.Close()
		t.Fatal(err)
	}
	gt := &Gateway{Gateway: g, URL: "http://" + g.Addr("main").String()}
	t.Cleanup(gt.Stop)
	return gt
}

// Stop drains the gateway (5 s at most) and closes it; later calls do
// nothing.
func (g *Gateway) Stop() {
	g.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
		g.Close()
	})
}
