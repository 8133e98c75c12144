package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a non-negative length of time written with units in YAML:
// "250ms", "5s", "1m30s", "2h" (the syntax of time.ParseDuration). A bare
// number other than 0 is refused, because "timeout: 5" is ambiguous. The
// zero Duration means "not set" in the schema, where a default applies.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText formats d like String, so JSON and YAML output read back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ParseDuration parses s as a Duration: time.ParseDuration syntax, not
// negative.
func ParseDuration(s string) (Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("config: %w", err)
	}
	return d, nil
}

func parseDuration(s string) (Duration, error) {
	td, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("invalid duration %q: use a unit, e.g. 5s", s)
		}
		return 0, fmt.Errorf("invalid duration %q (want e.g. 250ms, 5s, 1m30s)", s)
	}
	if td < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return Duration(td), nil
}

// UnmarshalYAML decodes a duration scalar. Load and Node.Decode give errors
// positions; this is for use with yaml.v3 directly.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.decodeNode(n); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func (d *Duration) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration like 5s, got a %s", kindName(n))
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
	default:
		return fmt.Errorf("expected a duration like 5s, got %s", describe(n))
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ByteSize is a number of bytes, written in YAML as a plain integer (bytes)
// or an integer with a unit: B, binary KiB MiB GiB TiB (powers of 1024) or
// SI KB MB GB TB (powers of 1000), e.g. "512B", "64KiB", "10MB". One space
// between number and unit is allowed. Units are case-sensitive ("kb" is
// refused: it is unclear whether it means bits); fractions and negative
// sizes are refused. The zero ByteSize means "not set" in the schema.
type ByteSize int64

// Bytes returns the size in bytes.
func (b ByteSize) Bytes() int64 { return int64(b) }

// String formats b with the largest unit that divides it exactly, binary
// before SI: 65536 is "64KiB", 1000000 is "1MB", 1023 is "1023B".
func (b ByteSize) String() string {
	if b == 0 {
		return "0B"
	}
	for _, u := range byteUnitsDesc {
		if int64(b)%u.mult == 0 && u.mult > 1 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText formats b like String, so JSON and YAML output read back.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

type byteUnit struct {
	name string
	mult int64
}

// byteUnitsDesc is ordered for String: larger first, binary before SI at a
// tie-break-free order (no power of 1024 is a power of 1000).
var byteUnitsDesc = []byteUnit{
	{"TiB", 1 << 40}, {"TB", 1e12},
	{"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6},
	{"KiB", 1 << 10}, {"KB", 1e3},
	{"B", 1},
}

// ParseByteSize parses s as a ByteSize, e.g. "64KiB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	b, err := parseByteSize(s)
	if err != nil {
		return 0, fmt.Errorf("config: %w", err)
	}
	return b, nil
}

func parseByteSize(s string) (ByteSize, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, unit := s[:i], strings.TrimPrefix(s[i:], " ")
	if num == "" {
		if strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("invalid size %q: must not be negative", s)
		}
		return 0, fmt.Errorf("invalid size %q (want e.g. 512B, 64KiB, 10MB)", s)
	}
	mult := int64(1)
	if unit != "" {
		mult = 0
		for _, u := range byteUnitsDesc {
			if u.name == unit {
				mult = u.mult
			}
		}
		if mult == 0 {
			if strings.HasPrefix(unit, ".") {
				return 0, fmt.Errorf("invalid size %q: use a whole number of a smaller unit, e.g. 1536KiB", s)
			}
			return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML decodes a size scalar. Load and Node.Decode give errors
// positions; this is for use with yaml.v3 directly.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if err := b.decodeNode(n); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func (b *ByteSize) decodeNode(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size like 64KiB, got a %s", kindName(n))
	}
	switch n.ShortTag() {
	case "!!int":
		// A plain integer is bytes; decimal only, so 0x10 is not a size.
		v, err := parseByteSize(strings.ReplaceAll(n.Value, "_", ""))
		if err != nil {
			return err
		}
		*b = v
		return nil
	case "!!str", "!!float":
		v, err := parseByteSize(n.Value)
		if err != nil {
			return err
		}
		*b = v
		return nil
	}
	return fmt.Errorf("expected a size like 64KiB, got %s", describe(n))
}

// redacted is what every printed form of a Secret shows.
const redacted = "[redacted]"

// Secret is a sensitive value (a key, a password, a client secret). In
// YAML it is one of:
//
//	secret: {env: NAME}        # the environment variable NAME, read at load
//	secret: {file: PATH}       # the file's content, one trailing newline
//	                           # trimmed; a relative PATH is relative to the
//	                           # config file's directory
//	secret: "inline value"     # discouraged outside tests
//
// A variable that is unset or empty, or a file that is missing, unreadable,
// empty or larger than 1MiB, is a load error at that line.
//
// Every printed form (fmt verbs, JSON, YAML, text, slog) is "[redacted]";
// only Value returns the secret. The zero Secret is "not set" and Value
// returns "".
type Secret struct {
	// The value sits behind a pointer to a string: fmt prints the
	// unexported fields of a struct holding a Secret without calling
	// Secret's methods, and there a *string shows as an address where a
	// string (or a pointer to a struct) would show its content.
	v      *string
	source string
}

func newSecret(value, source string) Secret { return Secret{&value, source} }

// maxSecretFile bounds what a {file: PATH} secret reads, so a mistake like
// {file: /dev/zero} fails instead of exhausting memory.
const maxSecretFile = 1 << 20

// NewSecret returns a Secret holding value, as if written inline. For
// tests and for values that come from elsewhere than a config file.
func NewSecret(value string) Secret {
	if value == "" {
		return Secret{}
	}
	return newSecret(value, "inline")
}

// Value returns the secret itself; "" when not set.
func (s Secret) Value() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// Source says where the secret came from without revealing it, for logs:
// "env:NAME", "file:PATH", "inline", or "" when not set.
func (s Secret) Source() string { return s.source }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns a redacted Go form, for %#v.
func (s Secret) GoString() string { return "config.Secret(" + redacted + ")" }

// Format prints "[redacted]" for every verb, so no fmt verb (%d, %x, %+v
// on a struct holding a Secret) can reach the unexported value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, redacted)
}

// LogValue makes slog print "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns "[redacted]" as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalYAML returns "[redacted]", so a dumped config does not leak.
func (s Secret) MarshalYAML() (any, error) { return redacted, nil }

// UnmarshalYAML decodes a secret with yaml.v3 directly, reading variables
// from the process environment and relative files from the working
// directory. Load and Node.Decode use the lookup function and the config
// file's directory instead.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	v, err := decodeSecret(n, os.LookupEnv, ".")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	*s = v
	return nil
}

// secret decodes a Secret for the walker, with the document's environment
// and directory.
func (dc *decoder) secret(n, at *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.MappingNode {
		before := len(dc.errs)
		pairs := mappingPairs(n, &dc.errs, dc.d.file, path)
		if len(dc.errs) > before {
			return
		}
		if len(pairs) == 1 {
			// Place errors at the inner value, where the name or path is.
			p := pairs[0]
			at, path = posFor(p.k, p.v), keyPath(path, p.k.Value)
			if p.k.Value != "env" && p.k.Value != "file" {
				at = p.k
			}
		}
	}
	s, err := decodeSecret(n, dc.d.lookupEnv, dc.d.dir)
	if err != nil {
		dc.errorf(at, path, "%v", err)
		return
	}
	v.Set(reflect.ValueOf(s))
}

const secretForms = "a secret is a string, {env: NAME} or {file: PATH}"

func decodeSecret(n *yaml.Node, lookupEnv func(string) (string, bool), dir string) (Secret, error) {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return Secret{}, nil
		case "!!str", "!!int", "!!float":
			if n.Value == "" {
				return Secret{}, nil
			}
			return newSecret(n.Value, "inline"), nil
		}
	case yaml.MappingNode:
		pairs := mappingPairs(n, nil, "", "")
		if len(pairs) != 1 {
			return Secret{}, errors.New(secretForms + fmt.Sprintf("; got a mapping with %d keys", len(pairs)))
		}
		k, v := pairs[0].k, resolveAlias(pairs[0].v)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || v.Value == "" {
			return Secret{}, fmt.Errorf("%s: expected a non-empty string, got %s", k.Value, describe(v))
		}
		switch k.Value {
		case "env":
			val, ok := lookupEnv(v.Value)
			switch {
			case !ok:
				return Secret{}, fmt.Errorf("environment variable %s is not set", v.Value)
			case val == "":
				return Secret{}, fmt.Errorf("environment variable %s is empty", v.Value)
			}
			return newSecret(val, "env:"+v.Value), nil
		case "file":
			p := v.Value
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			val, err := readSecretFile(p)
			if err != nil {
				return Secret{}, err
			}
			return newSecret(val, "file:"+v.Value), nil
		}
		return Secret{}, fmt.Errorf("unknown field %q (%s)", k.Value, secretForms)
	}
	return Secret{}, fmt.Errorf("%s; got %s", secretForms, describe(n))
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than 1MiB", path)
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}
