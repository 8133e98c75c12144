package config

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"io"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Released returns a copy of c without the YAML trees a loaded config keeps
// for its policies' factories, for a gateway to hold once it has built from
// c: a loaded config then costs its decoded values and its text, not its
// parse. In the copy, the policy settings (PolicySpec.Config) are released
// Nodes, which decode as empty, so the copy must not be built from;
// Redacted reads them again from the config's text, kept deflated. The document tree kept
// for Errorf loses the routes (an error about a place inside them is
// reported at the `routes` key). c itself is not changed and may be built
// again.
//
// Ten thousand routes of three policies hold some 20 MB of nodes without
// this.
func (c *Config) Released() *Config {
	if c == nil {
		return nil
	}
	out := *c
	out.Routes = make([]Route, len(c.Routes))
	// Released policy lists hold only types, so the routes with the same
	// list share one (read-only, like the whole copy): ten thousand
	// routes name a handful of lists.
	lists := make(map[string][]PolicySpec)
	var key []byte
	for i, r := range c.Routes {
		if len(r.Policies) > 0 {
			key = key[:0]
			for _, s := range r.Policies {
				key = binary.AppendUvarint(key, uint64(len(s.Type)))
				key = append(key, s.Type...)
				key = append(key, boolByte(s.Config != nil))
			}
			ps, ok := lists[string(key)]
			if !ok {
				ps = make([]PolicySpec, len(r.Policies))
				for j, s := range r.Policies {
					ps[j] = PolicySpec{Type: s.Type}
					if s.Config != nil {
						ps[j].Config = releasedNode
					}
				}
				lists[string(key)] = ps
			}
			r.Policies = ps
		}
		out.Routes[i] = r
	}
	if c.root != nil {
		var d *doc
		if c.root.d != nil {
			d = newDoc(c.root.d.file, c.root.d.lookupEnv)
			d.dir = c.root.d.dir
			d.sourceZ = compress(c.root.d.source)
			d.released = true
		}
		out.root = &Node{y: withoutRoutes(c.root.y), key: c.root.key, path: c.root.path, d: d}
	}
	return &out
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// releasedNode stands for every policy's settings in a released config:
// Nodes are read-only, so one serves them all.
var releasedNode = &Node{released: true}

// compress returns s deflated: a config's text is repetitive (ten thousand
// routes of 330 bytes each deflate to about a tenth).
func compress(s []byte) []byte {
	if len(s) == 0 {
		return nil
	}
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(s)
	w.Close()
	return bytes.Clone(b.Bytes())
}

// decompress undoes compress.
func decompress(z []byte) ([]byte, error) {
	return io.ReadAll(flate.NewReader(bytes.NewReader(z)))
}

// withoutRoutes returns a copy of the document root y with the routes
// replaced by an empty list at the same place (the original tree is left
// as it is). After building, only listener and admin settings are still
// reported on; keeping every route's nodes for that would cost more than
// the routes themselves.
func withoutRoutes(y *yaml.Node) *yaml.Node {
	if y == nil || y.Kind != yaml.MappingNode {
		return y
	}
	root := *y
	root.Content = slices.Clone(y.Content)
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "routes" {
			r := root.Content[i+1]
			root.Content[i+1] = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: r.Line, Column: r.Column}
		}
	}
	return &root
}
