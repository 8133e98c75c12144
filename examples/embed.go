// Package examples embeds the example configs so that `gatehouse demo` runs
// from the binary alone.
package examples

import _ "embed"

// DemoConfig is demo.yaml. It reads its addresses from variables that
// `gatehouse demo` supplies: DEMO_LISTEN, DEMO_ADMIN_LISTEN,
// DEMO_REST_UPSTREAM and DEMO_SOAP_UPSTREAM.
//
//go:embed demo.yaml
var DemoConfig []byte
