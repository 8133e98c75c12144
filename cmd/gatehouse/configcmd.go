package main

import (
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse/internal/builtin"
	"github.com/gatehouse/gatehouse/internal/config"
)

// cmdConfig handles `gatehouse config schema`.
func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "schema" {
		fmt.Fprintln(stderr, "usage: gatehouse config schema")
		return 2
	}
	data, err := config.JSONSchema(builtin.PolicyConfigs())
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse config schema:", err)
		return 1
	}
	if _, err := stdout.Write(append(data, '\n')); err != nil {
		return 1
	}
	return 0
}
