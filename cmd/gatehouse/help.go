package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// command is one subcommand, for help and shell completion.
type command struct {
	// path is the words that name it: "serve", "keys generate".
	path string
	// args is its synopsis after the path: "--config FILE".
	args string
	// summary says what it does, one or more lines.
	summary string
	// flags is true when the command parses a flag.FlagSet (made with
	// newFlagSet) before it does anything else: help then lists its flags,
	// found by running it with -h, which the flag package answers with
	// flag.ErrHelp before the command acts. A command without flags is
	// never run for its help.
	flags bool
	// words completes its positional arguments ("bash zsh fish").
	words []string
}

// commands is every subcommand. A group ("keys") is the common prefix of
// its subcommands' paths and has no entry of its own.
var commands = []command{
	{path: "serve", args: "--config FILE", flags: true,
		summary: "Run the gateway. Reloads the config on SIGHUP and when the file changes;\ndrains and stops on SIGTERM or SIGINT."},
	{path: "check", args: "--config FILE", flags: true,
		summary: "Validate a config: every problem is reported, each with file:line:column\nand field path; exit 1 on any error. Warns (exit 0) of what loads but\ncannot work (scopes before authenticate)."},
	{path: "demo", args: "[--listen ADDR] [--admin-listen ADDR]", flags: true,
		summary: "Run the gateway in front of built-in demo upstreams."},
	{path: "apikey create", args: "--consumer NAME", flags: true,
		summary: "Make an API key: print the key (give it to the consumer) and the\nconsumer entry with its hash (put it in the config)."},
	{path: "keys generate", args: "[--alg ES256] --out FILE", flags: true,
		summary: "Write a new private signing key (PEM, mode 0600); an existing file is\nnever overwritten."},
	{path: "keys jwks", args: "--key FILE [--alg ALG] [--kid ID]", flags: true,
		summary: "Print the public JWK Set upstreams and relying parties should trust."},
	{path: "keys rotate", args: "--config FILE", flags: true,
		summary: "Rotate the authorization server's signing key in the config's state\nstore (a running gateway holding the file store: kill -USR1 PID)."},
	{path: "keys refresh", args: "[--admin URL] [--token TOKEN] [--json]", flags: true,
		summary: "Make a running gateway fetch every trusted issuer's JWKS now\n(or: kill -USR2 PID)."},
	{path: "token", args: `--issuer URL --client ID [--secret S] [--scope "A B"]`, flags: true,
		summary: "Get an access token (client_credentials) and print it."},
	{path: "clients list", args: "--config FILE", flags: true,
		summary: "List the authorization server's registered clients."},
	{path: "clients hash",
		summary: "Read a secret from stdin and print its argon2id secret_hash\n(for secrets people choose)."},
	{path: "clients new-secret",
		summary: "Print a new random client secret and its sha256 secret_hash."},
	{path: "users add", args: "--file FILE [--name N] [--email E] USERNAME", flags: true,
		summary: "Read a password from stdin and add the user, with its argon2id hash,\nto the authorization server's users file (created when absent)."},
	{path: "explain", args: "REQUEST_ID [--admin URL] [--token TOKEN] [--json]", flags: true,
		summary: "Ask a running gateway's admin API why a request was allowed or denied."},
	{path: "test", args: "--config FILE CASES.yaml", flags: true,
		summary: "Dry-run request cases against a config, without upstreams (for CI);\nexit 1 when a case decides otherwise than expected."},
	{path: "config schema",
		summary: "Print the JSON Schema (draft 2020-12) of the config file, policies'\nsettings included, for editors (VS Code's YAML extension) and CI."},
	{path: "healthcheck", args: "[--url URL] [--timeout 3s]", flags: true,
		summary: "GET a running gateway's admin /healthz; exit 0 when it answers 200,\n1 otherwise (the container image's HEALTHCHECK)."},
	{path: "completion", args: "bash|zsh|fish", words: []string{"bash", "zsh", "fish"},
		summary: "Print a shell completion script. bash: source <(gatehouse completion bash);\nzsh: gatehouse completion zsh > \"${fpath[1]}/_gatehouse\";\nfish: gatehouse completion fish > ~/.config/fish/completions/gatehouse.fish"},
	{path: "version",
		summary: "Print the version, VCS revision, build time and Go version."},
	{path: "help", args: "[COMMAND]",
		summary: "Print help for gatehouse or one of its commands."},
}

// usage is the top-level help, made from commands.
func usage() string {
	var b strings.Builder
	b.WriteString("Gatehouse, an API security gateway for REST and SOAP.\n\nUsage:\n")
	for i := range commands {
		writeCommandLine(&b, &commands[i])
	}
	b.WriteString("\nRun 'gatehouse COMMAND --help' for a command's flags.\n")
	return b.String()
}

// writeCommandLine writes c's line of a command list: its synopsis and
// the first clause of its summary.
func writeCommandLine(w io.Writer, c *command) {
	line := "  gatehouse " + c.path
	if c.args != "" {
		line += " " + c.args
	}
	short := shortOf(c.summary)
	if len(line) > 44 {
		fmt.Fprintf(w, "%s\n%46s%s\n", line, "", short)
	} else {
		fmt.Fprintf(w, "%-46s%s\n", line, short)
	}
}

// shortOf is the summary's first clause, for the command list.
func shortOf(summary string) string {
	first, _, _ := strings.Cut(summary, "\n")
	if i := strings.IndexAny(first, ".;:"); i > 0 {
		first = first[:i]
	}
	return first
}

// isHelpFlag reports whether arg asks for help.
func isHelpFlag(arg string) bool {
	switch arg {
	case "-h", "-help", "--help":
		return true
	}
	return false
}

// lookupCommand finds the command or group that args name: the longest
// known path made of args' leading words. It returns the path's words
// and, for a command, its entry; for a group ("keys") the entry is nil
// and group is true. Nothing known: "" and false.
func lookupCommand(args []string) (path string, c *command, group bool) {
	for n := min(len(args), 2); n > 0; n-- {
		p := strings.Join(args[:n], " ")
		for i := range commands {
			if commands[i].path == p {
				return p, &commands[i], false
			}
		}
		for i := range commands {
			if strings.HasPrefix(commands[i].path, p+" ") {
				return p, nil, true
			}
		}
	}
	return "", nil, false
}

// helpRequest reports whether args (the words after "gatehouse") ask for
// help: -h, -help or --help anywhere before a "--", or the word "help"
// right after a command group's name ("gatehouse keys help"). It returns
// the words that name what help is wanted for.
func helpRequest(args []string) ([]string, bool) {
	if len(args) > 0 && args[0] == "help" {
		return args[1:], true
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		if isHelpFlag(a) {
			return slices.Delete(slices.Clone(args), i, i+1), true
		}
	}
	if len(args) == 2 && args[1] == "help" {
		if _, c, group := lookupCommand(args[:1]); group && c == nil {
			return args[:1], true
		}
	}
	return nil, false
}

// printHelp writes the help for the command or group named by the leading
// words of args to w and returns 0; for a name that is neither it writes
// the error and the top-level usage to stderr and returns 2.
func printHelp(args []string, w, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(w, usage())
		return 0
	}
	path, c, group := lookupCommand(args)
	switch {
	case group:
		fmt.Fprintf(w, "usage: gatehouse %s COMMAND\n\nCommands:\n", path)
		for i := range commands {
			if strings.HasPrefix(commands[i].path, path+" ") {
				writeCommandLine(w, &commands[i])
			}
		}
		fmt.Fprintf(w, "\nRun 'gatehouse %s COMMAND --help' for a command's flags.\n", path)
		return 0
	case c == nil:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", strings.Join(args, " "), usage())
		return 2
	}
	fmt.Fprintf(w, "usage: gatehouse %s", c.path)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.summary)
	if fs := c.flagSet(); fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			fs.SetOutput(w)
			fs.PrintDefaults()
		}
	}
	return 0
}

var (
	// captureMu serializes flagSet: captureFlagSet is global.
	captureMu sync.Mutex
	// captureFlagSet, when set, is given every FlagSet newFlagSet makes.
	captureFlagSet func(*flag.FlagSet)
)

// newFlagSet makes a command's FlagSet. Every command with flags uses it,
// so that help and completion can list the flags without a second copy of
// their definitions.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if captureFlagSet != nil {
		captureFlagSet(fs)
	}
	return fs
}

// flagSet returns the command's FlagSet with its flags defined, or nil
// when it has none. It runs the command with only -h, which it answers
// with flag.ErrHelp before doing anything (the table test over every
// command checks that no command acts when asked for help).
func (c *command) flagSet() *flag.FlagSet {
	if !c.flags {
		return nil
	}
	captureMu.Lock()
	defer captureMu.Unlock()
	var got *flag.FlagSet
	captureFlagSet = func(fs *flag.FlagSet) {
		if got == nil {
			got = fs
		}
	}
	defer func() { captureFlagSet = nil }()
	dispatch(append(strings.Fields(c.path), "-h"), io.Discard, io.Discard)
	return got
}
