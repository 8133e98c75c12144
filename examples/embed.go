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

// ProductsOpenAPI is products.openapi.yaml, the OpenAPI 3.1 document of the
// demo's products REST API, which the demo's openapi policy validates
// requests against. `gatehouse demo` writes it to DEMO_DIR.
//
//go:embed products.openapi.yaml
var ProductsOpenAPI []byte
