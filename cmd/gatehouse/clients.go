package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/gatehouse/gatehouse/internal/authserver"
	"github.com/gatehouse/gatehouse/internal/config"
)

const clientsUsage = `usage:
  gatehouse clients list --config FILE   list the authorization server's registered clients
  gatehouse clients hash                 read a secret from stdin, print its argon2id secret_hash
                                         (for secrets people choose)
  gatehouse clients new-secret           print a new random secret and its sha256 secret_hash
`

// cmdClients handles `gatehouse clients list|hash|new-secret`.
func cmdClients(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, clientsUsage)
		return 2
	}
	switch args[0] {
	case "list":
		return cmdClientsList(args[1:], stdout, stderr)
	case "hash", "new-secret":
		// Neither takes arguments: one it does not know (a mistyped
		// flag) must not be ignored while it acts.
		if len(args) > 1 {
			fmt.Fprintf(stderr, "gatehouse clients %s: unexpected argument %q\n%s", args[0], args[1], clientsUsage)
			return 2
		}
	}
	switch args[0] {
	case "hash":
		return cmdClientsHash(os.Stdin, stdout, stderr)
	case "new-secret":
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		secret := base64.RawURLEncoding.EncodeToString(b)
		sum := sha256.Sum256([]byte(secret))
		fmt.Fprintf(stdout, "secret:      %s\nsecret_hash: sha256:%s\n", secret, hex.EncodeToString(sum[:]))
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, clientsUsage)
		return 0
	}
	fmt.Fprintf(stderr, "gatehouse clients: unknown command %q\n%s", args[0], clientsUsage)
	return 2
}

func cmdClientsList(args []string, stdout, stderr io.Writer) int {
	path, code := configFlag("clients list", args, stderr)
	if code != 0 {
		return code
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.AuthorizationServer == nil {
		fmt.Fprintf(stderr, "%s: no authorization_server section\n", path)
		return 1
	}
	list, err := authserver.Clients(*cfg.AuthorizationServer, cfg, filepath.Dir(path))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tAUTH_METHODS\tSCOPES\tAUDIENCE\tGRANTS\tLIFETIME\t")
	for _, c := range list {
		id := c.ID
		if c.Demo {
			id += " (DEMO ONLY)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", id, strings.Join(c.AuthMethods, ","), strings.Join(c.Scopes, " "),
			strings.Join(c.Audience, ","), strings.Join(c.GrantTypes, ","), c.Lifetime)
	}
	tw.Flush()
	return 0
}

func cmdClientsHash(in io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, err)
		return 1
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		fmt.Fprintln(stderr, "gatehouse clients hash: give the secret on stdin")
		return 2
	}
	h, err := authserver.HashSecret(secret)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}
