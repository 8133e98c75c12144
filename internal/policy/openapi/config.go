package openapi

import (
	"cmp"
	"errors"
	"os"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
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

// decode decodes cfg strictly into a Config.
func decode(cfg *config.Node) (*Config, error) {
	var c Config
	if err := cfg.Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks c without reading the spec, reporting every independent
// problem at its place in cfg.
func (c *Config) validate(cfg *config.Node) error {
	var p config.Problems
	if c.Spec == "" {
		p.Errorf(cfg, "spec", "openapi: spec is required")
	}
	if b := strings.TrimSuffix(c.ServerBase, "/"); b != "" && !strings.HasPrefix(b, "/") {
		p.Errorf(cfg, "server_base", "openapi: server_base must start with /")
	}
	switch c.OnResponseMismatch {
	case "", "log", "block":
		if c.OnResponseMismatch != "" && !c.Validate.Response {
			p.Errorf(cfg, "on_response_mismatch", "openapi: needs validate.response: true")
		}
	default:
		p.Errorf(cfg, "on_response_mismatch", "openapi: on_response_mismatch %q is not log or block", c.OnResponseMismatch)
	}
	return p.Err()
}

// provision reads the spec of a validated c (relative to cfg's file),
// parses it and checks it against the OpenAPI schema: a broken one is a
// config error naming the spec's own line.
func (c *Config) provision(cfg *config.Node, env *policy.Env) (*OpenAPI, error) {
	data, err := os.ReadFile(cfg.ResolvePath(c.Spec))
	if err != nil {
		return nil, cfg.Errorf("spec", "openapi: reading the spec: %v", err)
	}
	doc, err := libopenapi.NewDocument(data)
	if err != nil {
		return nil, cfg.Errorf("spec", "openapi: %s: %v", c.Spec, err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, cfg.Errorf("spec", "openapi: %s: %v", c.Spec, errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		e := verrs[0]
		if len(e.SchemaValidationErrors) > 0 {
			f := e.SchemaValidationErrors[0]
			return nil, cfg.Errorf("spec", "openapi: %s:%d: %s: %s", c.Spec, f.Line, f.FieldPath, f.Reason)
		}
		return nil, cfg.Errorf("spec", "openapi: %s:%d: %s", c.Spec, e.SpecLine, e.Message)
	}
	return &OpenAPI{
		v:           v,
		request:     c.Validate.Request == nil || *c.Validate.Request,
		response:    c.Validate.Response,
		block:       c.OnResponseMismatch == "block",
		base:        strings.TrimSuffix(c.ServerBase, "/"),
		maxBody:     cmp.Or(int64(c.MaxBody), 1<<20),
		maxResponse: cmp.Or(int(c.MaxResponse), 256<<10),
		logger:      env.Log(),
		route:       env.RouteName(),
	}, nil
}
