// Package h2spectest holds the HTTP/2 conformance test of the gateway: the
// h2spec suites (generic, http2, hpack) run through h2spec's library
// against a real gateway's TLS listener. It has no code of its own; see
// h2spec_test.go and the "HTTP/2 conformance" section of docs/operations.md.
package h2spectest
