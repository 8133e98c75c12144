package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/internal/users"
)

// cmdUsers handles `gatehouse users add`.
func cmdUsers(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "gatehouse users: unknown command %q\n", args[0])
		}
		fmt.Fprint(stderr, "usage: gatehouse users add --file FILE [--name N] [--email E] USERNAME\n")
		return 2
	}
	fs := newFlagSet("users add", stderr)
	file := fs.String("file", "", "the users `file` (created, mode 0600, when absent)")
	name := fs.String("name", "", "the user's full `name` (name claim)")
	email := fs.String("email", "", "the user's `email` address (email claim)")
	verified := fs.Bool("email-verified", false, "the email address is verified (email_verified claim)")
	sub := fs.String("sub", "", "the stable subject `id` (default: the username)")
	groups := fs.String("groups", "", "comma-separated `groups` (groups claim)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *file == "" || fs.NArg() != 1 {
		fmt.Fprint(stderr, "usage: gatehouse users add --file FILE [--name N] [--email E] USERNAME\n(the password is read from stdin)\n")
		return 2
	}
	u := users.User{Username: fs.Arg(0), Subject: *sub, Name: *name, Email: *email, EmailVerified: *verified}
	for g := range strings.SplitSeq(*groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			u.Groups = append(u.Groups, g)
		}
	}
	if err := users.CheckUsername(u.Username); err != nil {
		fmt.Fprintf(stderr, "gatehouse users add: username: %v\n", err)
		return 2
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		fmt.Fprintln(stderr, "gatehouse users add: give a password of at least 8 characters on stdin")
		return 2
	}
	if u.PasswordHash, err = users.HashPassword(pw); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := users.Add(*file, u); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "user %s added to %s\n", u.Username, *file)
	return 0
}

// usersStdin is where `users add` reads the password (a test replaces it).
var usersStdin io.Reader = os.Stdin
