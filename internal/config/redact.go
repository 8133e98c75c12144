package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted returns the effective config (defaults applied) as plain values
// (maps, slices, strings, numbers) for display: the admin API's GET
// /api/v1/config. Every Secret shows as "[redacted]". Policy settings are
// raw YAML, decoded by their units, so their secrets are not typed here:
// every value under a key that names a secret (see sensitiveKey) shows as
// "[redacted]", whether written inline, from ${ENV} or as {env: NAME}.
func (c *Config) Redacted() (map[string]any, error) {
	if c.root != nil && c.root.d != nil && c.root.d.released && c.root.d.sourceZ != nil {
		// A released config (Config.Released) no longer holds its
		// policies' settings: they are read again from its text. Should
		// that fail (an environment variable gone since), the settings
		// show as null.
		d := c.root.d
		if src, err := decompress(d.sourceZ); err == nil {
			if full, err := LoadBytes(d.file, src, d.lookupEnv); err == nil {
				return full.Redacted()
			}
		}
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// MarshalYAML writes the spec as it is written in a config file, a
// one-key mapping from the type to its settings, with the settings'
// secrets redacted (see Config.Redacted).
func (s PolicySpec) MarshalYAML() (any, error) {
	var v any
	if s.Config != nil && s.Config.y != nil {
		v = redactNode(s.Config.y, false, 0)
	}
	return map[string]any{s.Type: v}, nil
}

// sensitiveKey reports whether a settings key names a secret value.
func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"secret", "password", "passwd", "token", "private", "credential", "kek", "hmac", "api_key", "apikey", "hash"} {
		if strings.Contains(k, w) {
			// Settings that name where a secret is, not the secret.
			return !strings.HasSuffix(k, "_file") && !strings.HasSuffix(k, "_header") && k != "token_type" && k != "tokens"
		}
	}
	return false
}

// maxRedactDepth bounds the walk (aliases are already bounded at parse).
const maxRedactDepth = 64

func redactNode(n *yaml.Node, secret bool, depth int) any {
	n = resolveAlias(n)
	if n == nil || depth > maxRedactDepth {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if secret && n.ShortTag() != "!!null" {
			return redacted
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return n.Value
		}
		return v
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			out = append(out, redactNode(c, secret, depth+1))
		}
		return out
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" {
				if m, ok := redactNode(n.Content[i+1], secret, depth+1).(map[string]any); ok {
					for mk, mv := range m {
						if _, set := out[mk]; !set {
							out[mk] = mv
						}
					}
				}
				continue
			}
			out[k] = redactNode(n.Content[i+1], secret || sensitiveKey(k), depth+1)
		}
		return out
	}
	return nil
}
