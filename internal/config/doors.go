package config

// The doors other proxies ask the gateway's decisions through: Envoy's
// external authorization (ext_authz) and forward-auth. They decide with
// the routes of this config, through the same dispatch as the listeners
// (docs/external-authorization.md).

// ExtAuthz serves Envoy's external authorization protocol.
type ExtAuthz struct {
	// GRPCAddress is host:port of the gRPC service
	// envoy.service.auth.v3.Authorization (Envoy's grpc_service). Empty:
	// not served. At least one of GRPCAddress and HTTPAddress is required.
	GRPCAddress string `yaml:"grpc_address"`
	// HTTPAddress is host:port of the HTTP flavour (Envoy's
	// http_service): the original request's method, path and fields
	// arrive as a request, an allowed one is answered 200. Empty: not
	// served.
	HTTPAddress string `yaml:"http_address"`
	// HTTPPathPrefix is the http_service's path_prefix, taken off the
	// path before routing. Empty: none.
	HTTPPathPrefix string `yaml:"http_path_prefix"`
	// WithRequestBody says Envoy's ext_authz filter has
	// with_request_body, so it forwards every request body there is and
	// a request described without one had none. False: a request whose
	// own fields do not show it bodiless (Content-Length: 0, or HTTP/1
	// without Content-Length and Transfer-Encoding) is taken to have a
	// body Envoy kept, and a route whose policies read the body denies it
	// (403 body_unavailable).
	WithRequestBody bool `yaml:"with_request_body"`
	// TLS, when set, serves both over TLS; with client_ca_file, Envoy
	// must present a certificate it verifies (mTLS).
	TLS *ServerTLS `yaml:"tls"`
	// MaxRequestBytes bounds a CheckRequest (and an http_service
	// request's body), the forwarded request body included; keep it above
	// Envoy's with_request_body.max_request_bytes. Default 8MiB.
	MaxRequestBytes ByteSize `yaml:"max_request_bytes"`
}

// ForwardAuth serves forward-auth subrequests: the original method, URI
// and host come in X-Forwarded-Method, X-Forwarded-Uri (or
// X-Original-URI) and X-Forwarded-Host, believed only from the peers of
// trusted_proxies, which it requires.
type ForwardAuth struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// TLS, when set, serves it over TLS (and mTLS with client_ca_file).
	TLS *ServerTLS `yaml:"tls"`
	// MaxBodyBytes bounds a forwarded request body (Traefik's
	// forwardBody). Default 8MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
}

// DefaultDoorBodyBytes is the default of ext_authz.max_request_bytes and
// forward_auth.max_body_bytes.
const DefaultDoorBodyBytes = 8 << 20

func doorDefaults(c *Config) {
	tlsDefaults := func(t *ServerTLS) {
		if t != nil {
			setDefault(&t.MinVersion, "1.2")
			setDefault(&t.ClientAuth, "none")
			if t.ClientCAFile != "" && t.ClientAuth == "none" {
				t.ClientAuth = "require_and_verify"
			}
		}
	}
	if e := c.ExtAuthz; e != nil {
		setDefault(&e.MaxRequestBytes, ByteSize(DefaultDoorBodyBytes))
		tlsDefaults(e.TLS)
	}
	if f := c.ForwardAuth; f != nil {
		setDefault(&f.MaxBodyBytes, ByteSize(DefaultDoorBodyBytes))
		tlsDefaults(f.TLS)
	}
}

func (c *Config) validateDoors(v *validator) {
	if e := c.ExtAuthz; e != nil {
		if e.GRPCAddress == "" && e.HTTPAddress == "" {
			v.add("ext_authz", "set grpc_address, http_address or both")
		}
		for _, a := range [...]struct{ field, addr string }{{"ext_authz.grpc_address", e.GRPCAddress}, {"ext_authz.http_address", e.HTTPAddress}} {
			if a.addr != "" {
				if err := checkHostPort(a.addr); err != nil {
					v.add(a.field, "%v", err)
				}
			}
		}
		if e.HTTPPathPrefix != "" && (e.HTTPPathPrefix[0] != '/' || e.HTTPPathPrefix[len(e.HTTPPathPrefix)-1] == '/') {
			v.add("ext_authz.http_path_prefix", "must start with / and not end with one, got %q", e.HTTPPathPrefix)
		}
		if e.MaxRequestBytes < 0 {
			v.add("ext_authz.max_request_bytes", "must be positive")
		}
		validateDoorTLS(v, "ext_authz.tls", e.TLS)
	}
	if f := c.ForwardAuth; f != nil {
		if f.Address == "" {
			v.add("forward_auth.address", "required field is missing")
		} else if err := checkHostPort(f.Address); err != nil {
			v.add("forward_auth.address", "%v", err)
		}
		if len(c.TrustedPrefixes()) == 0 {
			v.add("forward_auth", "needs trusted_proxies (or client_ip.trusted_proxies): the X-Forwarded-Method, -Uri and -Host fields are believed only from those peers")
		}
		if f.MaxBodyBytes < 0 {
			v.add("forward_auth.max_body_bytes", "must be positive")
		}
		validateDoorTLS(v, "forward_auth.tls", f.TLS)
	}
}

func validateDoorTLS(v *validator, p string, t *ServerTLS) {
	if t == nil {
		return
	}
	if t.CertFile == "" {
		v.add(p+".cert_file", "required field is missing")
	}
	if t.KeyFile == "" {
		v.add(p+".key_file", "required field is missing")
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		v.add(p+".min_version", "invalid TLS version %q (want \"1.2\" or \"1.3\")", t.MinVersion)
	}
	switch {
	case !clientAuthModes[t.ClientAuth]:
		v.add(p+".client_auth", "invalid client_auth %q (want none, request, require, verify_if_given or require_and_verify)", t.ClientAuth)
	case (t.ClientAuth == "verify_if_given" || t.ClientAuth == "require_and_verify") && t.ClientCAFile == "":
		v.add(p+".client_ca_file", "required when client_auth is %s", t.ClientAuth)
	}
}
