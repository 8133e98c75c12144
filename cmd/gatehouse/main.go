// Command gatehouse is the Gatehouse API security gateway.
//
//	gatehouse serve --config FILE   run the gateway
//	gatehouse check --config FILE   validate a config and exit
//	gatehouse demo                  run the gateway with demo upstreams
//	gatehouse apikey create         make an API key (--store: into the state store)
//	gatehouse apikey delete         delete an API key from the state store
//	gatehouse keys generate         make a signing key (identity tokens)
//	gatehouse keys jwks             print a signing key's public JWK Set
//	gatehouse keys rotate           rotate the authorization server's key
//	gatehouse keys refresh          fetch the trusted issuers' JWKS now
//	gatehouse token                 get an access token (client_credentials)
//	gatehouse clients               list clients, hash client secrets
//	gatehouse users add             add a user to the login page's users file
//	gatehouse explain REQUEST_ID    why a request was allowed or denied
//	gatehouse test --config FILE CASES.yaml  dry-run request cases (CI)
//	gatehouse config schema         print the config's JSON Schema
//	gatehouse healthcheck           probe a running gateway's /healthz
//	gatehouse completion SHELL      print a shell completion script
//	gatehouse version               print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"
	// Time zone names in expr policies (now.getHours("Europe/Berlin")) must
	// work on hosts without zone data, such as distroless images.
	_ "time/tzdata"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/gctune"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/store"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 success,
// 1 a config or runtime error, 2 a usage error. Help (-h, --help or
// "help" on any command) is answered here, before the command is run, so
// that no command acts when it is asked for help: it goes to stdout and
// exits 0.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	if words, ok := helpRequest(args); ok {
		return printHelp(words, stdout, stderr)
	}
	return dispatch(args, stdout, stderr)
}

// dispatch runs the command args name.
func dispatch(args []string, stdout, stderr io.Writer) int {
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(args, stdout, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "demo":
		return cmdDemo(args, stdout, stderr)
	case "apikey":
		return cmdAPIKey(args, stdout, stderr)
	case "keys":
		return cmdKeys(args, stdout, stderr)
	case "token":
		return cmdToken(args, stdout, stderr)
	case "clients":
		return cmdClients(args, stdout, stderr)
	case "users":
		return cmdUsers(args, usersStdin, stdout, stderr)
	case "explain":
		return cmdExplain(args, stdout, stderr)
	case "test":
		return cmdTest(args, stdout, stderr)
	case "config":
		return cmdConfig(args, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(args, stdout, stderr)
	case "completion":
		return cmdCompletion(args, stdout, stderr)
	case "version", "--version":
		if len(args) > 0 {
			fmt.Fprintln(stderr, "usage: gatehouse version")
			return 2
		}
		readVersion().print(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", cmd, usage())
	return 2
}

// heapFloor is the least heap goal a serving process keeps (gctune): a
// plain proxy's live heap is a few MiB, and at GOGC=100 it would collect
// several times a second, each collection a pause that the requests of
// that moment wait behind. 32 MiB makes that twice a second at 18,000
// requests a second on the plain proxy instead of 17 times, and never in
// 5 s at 2,000, for some 30 MiB more resident memory; a
// process whose live heap is over 16 MiB (a route with the WAF) runs at
// GOGC=100 as before. GOGC in the environment turns the tuner off.
const heapFloor = 32 << 20

// tuneGC starts gctune for a serving command and returns its stop.
func tuneGC() func() { return gctune.Start(heapFloor) }

func configFlag(name string, args []string, stderr io.Writer) (string, int) {
	fs := newFlagSet(name, stderr)
	path := fs.String("config", "", "the YAML config `file`")
	if err := fs.Parse(args); err != nil {
		return "", 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usage: gatehouse %s --config FILE\n", name)
		return "", 2
	}
	return *path, 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	path, code := configFlag("check", args, stderr)
	if code != 0 {
		return code
	}
	cfg, err := config.LoadForCheck(path)
	if err != nil {
		// The config does not load; its policies' settings, decoded only
		// when they are built, may hold more problems: report them in the
		// same run rather than one fix later.
		if cfg != nil {
			err = config.MergeErrors(err, checkPolicies(cfg)...)
		}
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Building catches what decoding cannot: unreadable certificates,
	// ambiguous routes, bad policy settings. Nothing is opened: the
	// store settings are checked, but a memory store stands in, so
	// that check neither creates the state file nor fails while a
	// running gateway holds it.
	g, err := gateway.New(cfg, gateway.Options{
		Registry: builtin.Registry(),
		Store:    store.NewMemory(nil),
		Logger:   slog.New(slog.DiscardHandler),
		BaseDir:  filepath.Dir(path),
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	g.Close()
	// What loads but cannot do what it says: warnings, exit 0.
	fmt.Fprint(stderr, formatWarnings(principalWarnings(cfg)))
	fmt.Fprintf(stdout, "%s: ok (%d listeners, %d routes)\n", path, len(cfg.Listeners), len(cfg.Routes))
	return 0
}

// checkPolicies builds every policy of a config that did not load, from
// what decoded, and returns the problems their factories find in their
// settings. Entries that did not decode (no type) are skipped: Load has
// reported them.
func checkPolicies(cfg *config.Config) []error {
	reg := builtin.Registry()
	mem := store.NewMemory(nil)
	defer mem.Close()
	var errs []error
	for _, r := range cfg.Routes {
		for _, spec := range r.Policies {
			if spec.Type == "" || spec.Config == nil {
				continue
			}
			env := &policy.Env{
				Route:  policy.Route{Name: r.Name},
				Logger: slog.New(slog.DiscardHandler),
				Now:    time.Now,
				Store:  mem,
			}
			p, err := reg.Build(spec, env)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if c, ok := p.(policy.Closer); ok {
				c.Close()
			}
		}
	}
	return errs
}

func cmdServe(args []string, _, stderr io.Writer) int {
	path, code := configFlag("serve", args, stderr)
	if code != 0 {
		return code
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	sigs, stopSignals := catchSignals()
	defer stopSignals()
	defer tuneGC()()
	// The collector is relaxed while the config is loaded and built
	// (gctune.Loading): a 10,000-route config otherwise spends a fifth
	// of its load collecting a heap that is nearly all in use.
	loaded := gctune.Loading()
	// A large config's load touches tens of thousands of fresh pages, a
	// fault each; they are faulted in ahead, in huge pages where the
	// system allows (gctune.Prefault). Only at the start: a reload runs
	// beside a serving heap that already holds pages.
	if fi, err := os.Stat(path); err == nil {
		endLoading, endPrefault := loaded, gctune.PrefaultLoad(fi.Size())
		loaded = func() { endLoading(); endPrefault() }
	}
	cfg, err := config.Load(path)
	if err != nil {
		loaded()
		fmt.Fprintln(stderr, err)
		return 1
	}
	g, err := gateway.New(cfg, gateway.Options{Registry: builtin.Registry(), Logger: log, BaseDir: filepath.Dir(path),
		Load: func() (*config.Config, error) { return config.Load(path) }})
	loaded()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := g.Start(); err != nil {
		fmt.Fprintln(stderr, err)
		g.Close()
		return 1
	}
	stopDoors, err := startDoors(g, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		g.Close()
		return 1
	}
	shutdownTimeout := cfg.ShutdownTimeout.Std()
	// What the load left (a 10,000-route file's YAML tree and parse: some
	// 170 MiB resident) is garbage now that the gateway serves its own
	// released copy of the config. Its pages go back to the system now,
	// in the background while the listeners serve: left to the runtime
	// they stay resident for minutes on an idle gateway, which collects
	// and scavenges only as it allocates. (cfg is not used past this
	// point, so it holds nothing for the collector.)
	go debug.FreeOSMemory()
	reload := func(why string) {
		log.Info("reloading config", "file", path, "trigger", why)
		defer gctune.Loading()()
		cfg, err := config.Load(path)
		if err != nil {
			log.Error("config reload failed; keeping the current config", "err", err)
			return
		}
		_ = g.Reload(cfg) // logs its own failure
		// The parse's garbage and the replaced config's go back now.
		go debug.FreeOSMemory()
	}
	stopWatch, err := watchFile(path, 250*time.Millisecond, func() { reload("file change") }, log)
	if err != nil {
		log.Warn("not watching the config file; reload with SIGHUP", "err", err)
	} else {
		defer stopWatch()
	}
	return waitAndStop(g, sigs, shutdownTimeout, reload, log, stopDoors)
}

// catchSignals starts catching the signals waitAndStop acts on. A command
// calls it before it builds the gateway: a SIGHUP or SIGUSR2 that arrives
// while the gateway starts (keys being fetched, say) is then queued for
// waitAndStop instead of killing the process, which is what Go does with
// an uncaught SIGHUP or SIGUSR2. stop ends the catching.
func catchSignals() (sigs chan os.Signal, stop func()) {
	sigs = make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)
	return sigs, func() { signal.Stop(sigs) }
}

// waitAndStop serves until SIGTERM or SIGINT (or a listener failure), calling
// reload on SIGHUP, then drains for at most timeout.
// before run first, in order, within the drain's deadline.
func waitAndStop(g *gateway.Gateway, sigs <-chan os.Signal, timeout time.Duration, reload func(string), log *slog.Logger, before ...func(context.Context)) int {
	code := 0
loop:
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				if reload != nil {
					reload("SIGHUP")
				}
				continue
			}
			if s == syscall.SIGUSR2 {
				// `gatehouse keys refresh` without the admin API:
				// fetch every trusted issuer's JWKS now.
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
					defer cancel()
					for _, r := range g.RefreshKeySets(ctx) {
						if r.Error != "" {
							log.Error("key set refresh failed; keeping its last good keys", "source", r.Source, "err", r.Error)
						} else {
							log.Info("key set refreshed", "source", r.Source, "keys", r.Keys)
						}
					}
				}()
				continue
			}
			if s == syscall.SIGUSR1 {
				// `gatehouse keys rotate` cannot open a store this
				// process holds locked; the signal rotates from here.
				if err := g.RotateKeys(context.Background()); err != nil {
					log.Error("signing key rotation failed", "err", err)
				}
				continue
			}
			log.Info("shutting down", "signal", s.String(), "drain_timeout", timeout.String())
			break loop
		case err := <-g.Err():
			log.Error("shutting down after a listener failed", "err", err)
			code = 1
			break loop
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, f := range before {
		f(ctx)
	}
	if err := g.Shutdown(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			log.Warn("drain deadline passed; remaining connections closed")
		} else {
			log.Error("shutdown", "err", err)
		}
		code = 1
	}
	log.Info("stopped")
	return code
}
