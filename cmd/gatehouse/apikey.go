package main

import (
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse/internal/authn/apikey"
)

// cmdAPIKey handles `gatehouse apikey create --consumer NAME`.
func cmdAPIKey(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: gatehouse apikey create --consumer NAME")
		return 2
	}
	fs := newFlagSet("apikey create", stderr)
	consumer := fs.String("consumer", "", "the consumer `name` the key belongs to")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *consumer == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: gatehouse apikey create --consumer NAME")
		return 2
	}
	if err := apikey.WriteCreateOutput(stdout, *consumer); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
