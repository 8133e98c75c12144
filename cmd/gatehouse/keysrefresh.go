package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// cmdKeysRefresh handles `gatehouse keys refresh`: it asks a running
// gateway's admin API (POST /api/v1/keys/refresh) to fetch every remote
// key set its jwt authenticators trust now, so that a key an issuer
// withdrew stops verifying tokens at once rather than at the next
// jwks_refresh. It exits 0 when every fetch succeeded, 1 otherwise.
func cmdKeysRefresh(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keys refresh", stderr)
	ac := adminFlags(fs)
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for the fetches")
	asJSON := fs.Bool("json", false, "print the admin API's answer as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: gatehouse keys refresh [--admin URL] [--token TOKEN] [--json]")
		return 2
	}
	status, body, code := ac.call("keys refresh", http.MethodPost, "/api/v1/keys/refresh", *timeout, stderr)
	if code != 0 {
		return code
	}
	var out struct {
		KeySets []admin.KeySetRefresh `json:"key_sets"`
		Detail  string                `json:"detail"`
	}
	switch status {
	case http.StatusOK, http.StatusBadGateway:
		if err := json.Unmarshal(body, &out); err != nil {
			fmt.Fprintln(stderr, "gatehouse keys refresh: unexpected answer:", err)
			return 1
		}
	default:
		fmt.Fprintf(stderr, "gatehouse keys refresh: the admin API answered %d %s\n", status, http.StatusText(status))
		return 1
	}
	if *asJSON {
		stdout.Write(body)
	} else if len(out.KeySets) == 0 {
		fmt.Fprintln(stdout, "no remote key set is in use: nothing to refresh")
	} else {
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tKEYS\tRESULT\t")
		for _, k := range out.KeySets {
			result := "refreshed"
			if k.Error != "" {
				result = "FAILED: " + k.Error + " (the last good keys stay)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t\n", k.Source, k.Keys, result)
		}
		tw.Flush()
	}
	if status != http.StatusOK {
		fmt.Fprintln(stderr, "gatehouse keys refresh:", out.Detail)
		return 1
	}
	return 0
}
