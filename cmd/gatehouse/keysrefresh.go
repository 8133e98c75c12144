package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
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
	adminURL := fs.String("admin", "http://127.0.0.1:9901", "the admin listener's `URL`")
	token := fs.String("token", "", "the admin `token` (default: $GATEHOUSE_ADMIN_TOKEN)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for the fetches")
	asJSON := fs.Bool("json", false, "print the admin API's answer as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: gatehouse keys refresh [--admin URL] [--token TOKEN] [--json]")
		return 2
	}
	if *token == "" {
		*token = os.Getenv("GATEHOUSE_ADMIN_TOKEN")
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*adminURL, "/")+"/api/v1/keys/refresh", nil)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse keys refresh:", err)
		return 2
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := (&http.Client{Timeout: *timeout}).Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse keys refresh:", err)
		return 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse keys refresh:", err)
		return 1
	}
	var out struct {
		KeySets []admin.KeySetRefresh `json:"key_sets"`
		Detail  string                `json:"detail"`
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusBadGateway:
		if err := json.Unmarshal(body, &out); err != nil {
			fmt.Fprintln(stderr, "gatehouse keys refresh: unexpected answer:", err)
			return 1
		}
	case http.StatusUnauthorized:
		fmt.Fprintln(stderr, "gatehouse keys refresh: the admin API needs a token (--token or $GATEHOUSE_ADMIN_TOKEN)")
		return 1
	default:
		fmt.Fprintf(stderr, "gatehouse keys refresh: the admin API answered %s\n", resp.Status)
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
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "gatehouse keys refresh:", out.Detail)
		return 1
	}
	return 0
}
