// Package config loads the gateway's YAML configuration strictly: every
// problem (an unknown field, a wrong type, a bad value, a missing setting)
// fails the load with the file, the line, the column and the field path,
// and all problems are reported at once:
//
//	gatehouse.yaml:12:7: routes[0].upstream.tls.ca_fil: unknown field "ca_fil" (did you mean "ca_file"?)
//	gatehouse.yaml:31:15: routes[2].policies[1].ipfilter.allow[2]: invalid CIDR "10.0.0.300/8"
//
// Load and LoadBytes decode the schema in schema.go; the settings of each
// policy stay raw (a *Node) and are decoded later, just as strictly, by the
// policy's factory with Node.Decode, which reports through the same Error
// type with the full path. Config.Errorf and Node.Errorf let later stages
// (loading certificates, compiling routes, building policies) report
// problems at a place in the file too.
//
// # Format
//
// One YAML document (YAML 1.2 as read by go.yaml.in/yaml/v3); an empty file
// and a file with several documents are errors. Mapping keys must be the
// documented field names, exactly; each key at most once.
//
// Types are checked strictly. A boolean is true or false (not yes, on, 1).
// A string field takes a string, or a number as written (min_version: 1.2
// is "1.2"); it refuses true/false and, unquoted, the YAML 1.1 booleans
// y/n/yes/no/on/off in any of their spellings: quote them. An integer field
// takes an integer in range (decimal, or 0x, 0o, 0b, with _ separators),
// never "abc" or 1.5. Null (`key:` or `key: ~`) means "not set".
//
// Anchors, aliases and merge keys (<<: *defaults) are supported; a
// document whose aliases, expanded, add more than 100,000 nodes is refused
// (a "billion laughs" attack), as is an alias inside the node it names.
//
// # Environment variables
//
// In every scalar value (never in keys), ${NAME} is replaced with the
// environment variable NAME, and ${NAME:-default} with NAME or, when NAME is
// unset or empty, with default (taken literally up to the first "}"). An
// unset NAME without a default is an error at that line. "$$" is a literal
// "$"; a "$" followed by anything else is kept as is, so a regular
// expression like "^/api$" needs no escaping. Expansion happens before
// types are checked, so `port: ${PORT}` fills an integer; an unquoted value
// is then read as if its expansion had been written in the file, a quoted
// one stays a string. A value from the environment is taken as written
// where a string is expected (NAME=yes gives "yes").
//
// # Durations
//
// A Duration is written with units, as Go's time.ParseDuration reads them:
// 250ms, 5s, 1m30s, 2h. 0 needs no unit; other bare numbers are refused
// (use a unit, e.g. 5s); negative durations are refused.
//
// # Sizes
//
// A ByteSize is a whole number of bytes, plain (65536) or with a unit,
// optionally after one space: B; KiB, MiB, GiB, TiB (powers of 1024); KB,
// MB, GB, TB (powers of 1000). Units are case-sensitive; fractions and
// negative sizes are refused.
//
// # Secrets
//
// A Secret is written as {env: NAME}, {file: PATH} or, discouraged outside
// tests, an inline string. Variables and files are read at load time; an
// unset or empty variable, and a missing, unreadable, empty or over-1MiB
// file, are errors at that line. A relative PATH is relative to the config
// file's directory, and one trailing newline of the file is dropped. A
// Secret prints as "[redacted]" everywhere (fmt, JSON, YAML, slog); only
// Value returns it.
//
// # Policies
//
// Each entry of a route's policies is a mapping with exactly one key, the
// policy type, whose value holds its settings:
//
//	policies:
//	  - ipfilter: {allow: [10.0.0.0/8]}
//	  - size_limit:            # no settings: the policy's defaults
//
// The settings are decoded by the policy with the same rules.
package config
