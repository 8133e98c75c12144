package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const tokenUsage = `usage: gatehouse token --issuer URL --client ID [--secret S] [--scope "A B"] [--audience AUD]
  gets an access token with client_credentials (client_secret_basic) from
  the embedded authorization server (or any OAuth 2.0 server whose token
  endpoint is ISSUER/oauth2/token) and prints it. The secret may come from
  the GATEHOUSE_CLIENT_SECRET environment variable instead of --secret,
  which keeps it out of the process list.
`

// cmdToken handles `gatehouse token`.
func cmdToken(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("token", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage) }
	issuer := fs.String("issuer", "http://127.0.0.1:8080", "the authorization server's issuer `URL`")
	id := fs.String("client", "", "the client `id`")
	secret := fs.String("secret", "", "the client `secret` (or GATEHOUSE_CLIENT_SECRET)")
	scope := fs.String("scope", "", "space-separated `scopes`; empty: all the client may have")
	audience := fs.String("audience", "", "the token's `audience`; empty: the client's default")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *secret == "" {
		*secret = os.Getenv("GATEHOUSE_CLIENT_SECRET")
	}
	if *id == "" || *secret == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, tokenUsage)
		return 2
	}
	cc := clientcredentials.Config{
		ClientID:     *id,
		ClientSecret: *secret,
		TokenURL:     strings.TrimSuffix(*issuer, "/") + "/oauth2/token",
		Scopes:       strings.Fields(*scope),
	}
	if *audience != "" {
		cc.EndpointParams = map[string][]string{"audience": {*audience}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 15 * time.Second})
	tok, err := cc.Token(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse token:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok.AccessToken)
	return 0
}
