package openapi

import (
	"github.com/gatehouse/gatehouse/internal/config"
)

// Config is the openapi policy's settings.
//
//	openapi:
//	  spec: products.openapi.yaml   # relative to the config file
//	  server_base: /api             # stripped before matching the spec's paths
//	  validate: {request: true, response: false}
//	  on_response_mismatch: log     # or block (502 response_invalid)
//	  max_body: 1MiB
//	  max_response: 256KiB
type Config struct {
	// Spec is the OpenAPI 3.0 or 3.1 document (YAML or JSON). Required.
	Spec string `yaml:"spec"`
	// ServerBase is a path prefix the gateway's route has and the spec's
	// paths do not; a request outside it is an unknown operation.
	ServerBase string `yaml:"server_base"`
	// Validate says what is validated. Default: requests only.
	Validate struct {
		Request  *bool `yaml:"request"`
		Response bool  `yaml:"response"`
	} `yaml:"validate"`
	// OnResponseMismatch is what happens to a response the spec does not
	// allow: "log" (default: logged and passed) or "block" (502).
	OnResponseMismatch string `yaml:"on_response_mismatch"`
	// MaxBody caps the request body buffered for validation (413 beyond).
	// Default 1MiB.
	MaxBody config.ByteSize `yaml:"max_body"`
	// MaxResponse caps the JSON response body held back for validation;
	// larger responses pass unvalidated. Default 256KiB.
	MaxResponse config.ByteSize `yaml:"max_response"`
}
