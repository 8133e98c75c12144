package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// adminClient is what the commands that talk to a running gateway's admin
// API (explain, keys refresh) share: the --admin and --token flags, and one
// call with the token, a timeout and a bounded answer.
type adminClient struct {
	base, token *string
}

// adminFlags adds --admin and --token to fs.
func adminFlags(fs *flag.FlagSet) adminClient {
	return adminClient{
		base:  fs.String("admin", "http://127.0.0.1:9901", "the admin listener's `URL`"),
		token: fs.String("token", "", "the admin `token` (default: $GATEHOUSE_ADMIN_TOKEN)"),
	}
}

// call sends method path to the admin API and returns the status and at
// most 4 MiB of the answer. An error says why there is no answer; it is
// printed to stderr with the command's name, and the exit code to use
// returned (2: the URL is unusable, 1: the call failed). A 401 is reported
// there too, with how to give a token.
func (a adminClient) call(cmd, method, path string, timeout time.Duration, stderr io.Writer) (int, []byte, int) {
	token := *a.token
	if token == "" {
		token = os.Getenv("GATEHOUSE_ADMIN_TOKEN")
	}
	req, err := http.NewRequest(method, strings.TrimRight(*a.base, "/")+path, nil)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse %s: %v\n", cmd, err)
		return 0, nil, 2
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse %s: %v\n", cmd, err)
		return 0, nil, 1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse %s: %v\n", cmd, err)
		return 0, nil, 1
	}
	if resp.StatusCode == http.StatusUnauthorized {
		fmt.Fprintf(stderr, "gatehouse %s: the admin API needs a token (--token or $GATEHOUSE_ADMIN_TOKEN)\n", cmd)
		return 0, nil, 1
	}
	return resp.StatusCode, body, 0
}
