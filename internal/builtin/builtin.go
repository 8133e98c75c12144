// Package builtin lists the policy types Gatehouse ships, in one explicit,
// ordered list: adding a policy type means adding a line here.
package builtin

import (
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/headers"
	"github.com/gatehouse/gatehouse/internal/policy/ipfilter"
	"github.com/gatehouse/gatehouse/internal/policy/sizelimit"
)

// Units returns the built-in policy units.
func Units() []policy.Unit {
	return []policy.Unit{
		ipfilter.Unit,
		sizelimit.Unit,
		headers.Unit,
	}
}

// Registry returns a registry of the built-in units.
func Registry() *policy.Registry { return policy.NewRegistry(Units()...) }
