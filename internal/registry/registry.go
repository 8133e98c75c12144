// Package registry is the one shape of Gatehouse's unit registries (policy
// types, authenticator types): an explicit, ordered list of named
// factories, built once and read-only afterwards.
package registry

import (
	"fmt"
	"slices"
)

// Unit is a named factory.
type Unit[F any] struct {
	// Name is the key used in config, e.g. "ipfilter".
	Name string
	// New builds one instance.
	New F
}

// Registry maps names to units.
type Registry[F any] struct {
	kind  string
	units map[string]F
	names []string
}

// New returns a registry of units; kind ("policy type", "authenticator")
// names them in errors. An empty or duplicate name is a programming error
// and panics.
func New[F any](kind string, units ...Unit[F]) *Registry[F] {
	r := &Registry[F]{kind: kind, units: make(map[string]F, len(units))}
	for _, u := range units {
		if u.Name == "" {
			panic("registry: " + kind + " with an empty name")
		}
		if _, dup := r.units[u.Name]; dup {
			panic("registry: duplicate " + kind + " " + u.Name)
		}
		r.units[u.Name] = u.New
		r.names = append(r.names, u.Name)
	}
	return r
}

// Lookup returns the factory registered as name, or an error listing the
// known names.
func (r *Registry[F]) Lookup(name string) (F, error) {
	f, ok := r.units[name]
	if !ok {
		var zero F
		return zero, fmt.Errorf("unknown %s %q (known: %v)", r.kind, name, r.names)
	}
	return f, nil
}

// Names returns the registered names in registration order.
func (r *Registry[F]) Names() []string { return slices.Clone(r.names) }
