package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// cmdExplain asks the admin API why a request was decided as it was and
// prints it.
func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("explain", stderr)
	ac := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	// The request id may come before or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 || id == "" {
		fmt.Fprintln(stderr, "usage: gatehouse explain REQUEST_ID [--admin URL] [--token TOKEN] [--json]")
		return 2
	}
	status, body, code := ac.call("explain", http.MethodGet, "/api/v1/decisions/"+url.PathEscape(id), 10*time.Second, stderr)
	if code != 0 {
		return code
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotFound:
		fmt.Fprintf(stderr, "gatehouse explain: no decision is known for %s (older than the in-memory history and not in the audit log?)\n", id)
		return 1
	default:
		fmt.Fprintf(stderr, "gatehouse explain: the admin API answered %d %s\n", status, http.StatusText(status))
		return 1
	}
	if *asJSON {
		stdout.Write(body)
		return 0
	}
	var d admin.Decision
	if err := json.Unmarshal(body, &d); err != nil {
		fmt.Fprintln(stderr, "gatehouse explain: unexpected answer:", err)
		return 1
	}
	printDecision(stdout, d)
	return 0
}

// printDecision writes a decision for people.
func printDecision(w io.Writer, d admin.Decision) {
	fmt.Fprintf(w, "request   %s\n", d.RequestID)
	if !d.Time.IsZero() {
		fmt.Fprintf(w, "time      %s\n", d.Time.Format(time.RFC3339Nano))
	}
	if d.Method != "" {
		fmt.Fprintf(w, "request   %s %s%s\n", d.Method, d.Host, d.Path)
	}
	route := d.Route
	if route == "" {
		route = "(no route matched)"
	}
	fmt.Fprintf(w, "route     %s\n", route)
	if d.ClientIP != "" || d.Principal != "" {
		fmt.Fprintf(w, "client    %s", d.ClientIP)
		if d.Principal != "" {
			fmt.Fprintf(w, " principal %s", d.Principal)
		}
		fmt.Fprintln(w)
	}
	verdict := strings.ToUpper(d.Decision)
	if d.Status != 0 {
		verdict += fmt.Sprintf(" %d", d.Status)
	}
	if d.Code != "" {
		verdict += " " + d.Code
	}
	if d.Policy != "" {
		verdict += " by " + d.Policy
	}
	fmt.Fprintf(w, "decision  %s\n", verdict)
	if d.Detail != "" {
		fmt.Fprintf(w, "told      %s\n", d.Detail)
	}
	if d.Cause != "" {
		fmt.Fprintf(w, "cause     %s\n", d.Cause)
	}
	if len(d.Policies) > 0 {
		fmt.Fprintln(w, "\npolicies:")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for i, p := range d.Policies {
			fmt.Fprintf(tw, "  %d.\t%s\t%s\t%.3f ms\n", i+1, p.Policy, p.Verdict, p.DurationMS)
		}
		tw.Flush()
		fmt.Fprintf(w, "total     %.3f ms\n", d.DurationMS)
	}
	if d.Source == "audit_log" {
		fmt.Fprintln(w, "\n(from the audit log: the request is older than the in-memory history, so per-policy timings are not known)")
	}
	for _, e := range d.Events {
		fmt.Fprintf(w, "audit     %s %s %s %s\n", e.Time.Format(time.RFC3339), e.Kind, e.Code, e.Detail)
	}
}
