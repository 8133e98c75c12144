package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/store"
)

// testCases is the file `gatehouse test` reads.
type testCases struct {
	Cases []testCase `yaml:"cases"`
}

// testCase is one request and the decision expected for it.
type testCase struct {
	Name    string            `yaml:"name"`
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Host    string            `yaml:"host"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	// ClientIP is the client's address. Default 127.0.0.1.
	ClientIP string `yaml:"client_ip"`
	// Expect is allow or deny (also: error, no_route).
	Expect string `yaml:"expect"`
	// Code, when set, is the expected denial code.
	Code string `yaml:"code"`
	// Status, when set, is the expected status.
	Status int `yaml:"status"`
}

// cmdTest evaluates request cases against a config without upstreams
// (the dry-run for users' CI): exit 0 when every case decides as
// expected, 1 on a mismatch or a config error, 2 on usage errors.
func cmdTest(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", stderr)
	path := fs.String("config", "", "the YAML config `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: gatehouse test --config FILE CASES.yaml")
		return 2
	}
	casesFile := fs.Arg(0)
	data, err := os.ReadFile(casesFile)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse test:", err)
		return 1
	}
	node, err := config.ParseNode(casesFile, data, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var tc testCases
	if err := node.Decode(&tc); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if len(tc.Cases) == 0 {
		fmt.Fprintln(stderr, node.Errorf("cases", "no cases"))
		return 1
	}
	for i, c := range tc.Cases {
		switch c.Expect {
		case "allow", "deny", "error", "no_route", "authserver", "sts":
		default:
			fmt.Fprintln(stderr, node.Errorf(fmt.Sprintf("cases[%d].expect", i), "must be allow, deny, error, no_route, authserver or sts, got %q", c.Expect))
			return 1
		}
		if c.Path == "" || c.Path[0] != '/' {
			fmt.Fprintln(stderr, node.Errorf(fmt.Sprintf("cases[%d].path", i), "a path starting with / is required"))
			return 1
		}
	}

	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	discard := slog.New(slog.DiscardHandler)
	g, err := gateway.New(cfg, gateway.Options{
		Registry: builtin.Registry(), Store: store.NewMemory(nil), Logger: discard, AccessLog: discard,
		Audit: audit.Discard(), BaseDir: filepath.Dir(*path),
	})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer g.Close()

	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tCASE\tREQUEST\tROUTE\tGOT\tWANT\tREASON")
	failed := 0
	for _, c := range tc.Cases {
		r, err := caseRequest(c)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse test:", c.Name+":", err)
			return 1
		}
		d := g.Evaluate(r)
		got := d.Decision
		if d.Code != "" {
			got += " " + d.Code
		}
		got += fmt.Sprintf(" (%d)", d.Status)
		want := c.Expect
		if c.Code != "" {
			want += " " + c.Code
		}
		if c.Status != 0 {
			want += fmt.Sprintf(" (%d)", c.Status)
		}
		ok := d.Decision == c.Expect && (c.Code == "" || c.Code == d.Code) && (c.Status == 0 || c.Status == d.Status)
		result := "ok"
		if !ok {
			result, failed = "FAIL", failed+1
		}
		reason := d.Detail
		if d.Policy != "" {
			reason = d.Policy + ": " + reason
		}
		if d.Cause != "" {
			reason += " [" + d.Cause + "]"
		}
		route := d.Route
		if route == "" {
			route = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t%s\t%s\n", result, c.Name, r.Method, r.URL.RequestURI(), route, got, want, reason)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\n%d cases, %d passed, %d failed\n", len(tc.Cases), len(tc.Cases)-failed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func caseRequest(c testCase) (*http.Request, error) {
	// The request is written as a client would send it and read back by
	// net/http's own parser, as the server reads it: the method as
	// written (methods are case-sensitive), the request-target uncleaned,
	// Host and Content-Length as header fields. A request built in code
	// (http.NewRequest) differs from a served one in all of these, and the
	// dry run must decide on what serve would see.
	method := cmp.Or(c.Method, http.MethodGet)
	host := cmp.Or(c.Host, "localhost")
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, c.Path, host)
	names := slices.Sorted(maps.Keys(c.Headers))
	hasLength := false
	for _, k := range names {
		v := c.Headers[k]
		if strings.ContainsAny(k, "\r\n:") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("header %q: a name or value with a line break or colon", k)
		}
		hasLength = hasLength || strings.EqualFold(k, "Content-Length")
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if c.Body != "" && !hasLength {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(c.Body))
	}
	b.WriteString("\r\n")
	b.WriteString(c.Body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil {
		return nil, err
	}
	ip := c.ClientIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	if strings.Contains(ip, ":") {
		r.RemoteAddr = "[" + ip + "]:40000"
	} else {
		r.RemoteAddr = ip + ":40000"
	}
	return r, nil
}
