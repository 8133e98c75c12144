package config

import "time"

// Config is the whole gateway configuration, decoded strictly from YAML.
// Zero values mean "use the default" unless a field says otherwise; defaults
// are filled in by Load (see defaults.go).
type Config struct {
	// Listeners accept client traffic. At least one is required.
	Listeners []Listener `yaml:"listeners"`
	// Admin is the admin listener (metrics, health). Default 127.0.0.1:9901.
	Admin Admin `yaml:"admin"`
	// TrustedProxies are the CIDRs of proxies in front of Gatehouse whose
	// X-Forwarded-For, Forwarded and X-Request-Id headers are believed.
	// Empty: none is trusted and the client IP is the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ClientIP chooses the header trusted proxies carry the client's
	// address in, and may list the trusted proxies itself (clientip.go).
	// Nil: X-Forwarded-For from TrustedProxies.
	ClientIP *ClientIP `yaml:"client_ip"`
	// AccessLog configures the per-request JSON log.
	AccessLog AccessLog `yaml:"access_log"`
	// Audit configures the audit log of security events (see
	// docs/admin.md). Default: kept in memory for the admin API only.
	Audit Audit `yaml:"audit"`
	// Tracing, when set, exports OpenTelemetry spans of every request
	// over OTLP (tracing.go). Nil: no tracing.
	Tracing *Tracing `yaml:"tracing"`
	// ShutdownTimeout bounds the drain on SIGTERM. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// Store is where shared state lives (rate limits, quotas, replay
	// caches, revocations). Default: the file store.
	Store Store `yaml:"store"`
	// AuthorizationServer, when set, is the embedded OAuth 2.0
	// authorization server (see authserver.go). Nil: none.
	AuthorizationServer *AuthorizationServer `yaml:"authorization_server"`
	// STS, when set, is the embedded WS-Trust security token service
	// issuing SAML 2.0 assertions (see sts.go). Nil: none.
	STS *STS `yaml:"sts"`
	// Routes are matched by host, path and method; order does not matter
	// (the most specific match wins; ambiguous routes fail the load).
	Routes []Route `yaml:"routes"`
	// Paths are the request path rules shared by all routes (paths.go).
	Paths Paths `yaml:"paths"`
	// ExtAuthz, when set, answers Envoy's external authorization
	// requests with the routes' decisions (docs/external-authorization.md).
	// Nil: off.
	ExtAuthz *ExtAuthz `yaml:"ext_authz"`
	// ForwardAuth, when set, answers the forward-auth subrequests of
	// nginx, Traefik, Caddy and HAProxy with the routes' decisions
	// (docs/external-authorization.md). Nil: off.
	ForwardAuth *ForwardAuth `yaml:"forward_auth"`

	// root is the parsed document, for Errorf; nil when not loaded.
	root *Node
}

// Listener is one address the gateway serves clients on.
type Listener struct {
	// Name identifies the listener in logs and metrics. Default "listener-N".
	Name string `yaml:"name"`
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// TLS, when set, makes this an HTTPS listener (HTTP/1.1 and h2).
	TLS *ServerTLS `yaml:"tls"`
	// H2C enables HTTP/2 over cleartext (prior knowledge) on a plain listener.
	H2C bool `yaml:"h2c"`
	// ReadHeaderTimeout bounds reading request headers (slowloris). Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. 0: none.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. 0: none (streaming friendly).
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes caps the request line plus headers. Default 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// BodyIdleTimeout bounds the pause between two reads of a request
	// body still arriving (nginx's client_body_timeout): a body that stops
	// moving for this long fails with 408, a large upload that keeps
	// moving is never cut. Default 60s.
	BodyIdleTimeout Duration `yaml:"body_idle_timeout"`
	// MaxConnections bounds the connections open at once on the
	// listener; more are closed as soon as they are accepted. Default
	// 10000; -1: no bound.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP bounds the connections open at once from one
	// peer address; trusted proxies are exempt. Default 1024; -1: no
	// bound.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
}

// ServerTLS is a listener's TLS settings.
type ServerTLS struct {
	// CertFile and KeyFile are PEM files. Required.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is "1.2" (default) or "1.3". TLS 1.3 is always preferred.
	MinVersion string `yaml:"min_version"`
	// ClientAuth is one of none (default), request, require,
	// verify_if_given, require_and_verify. The verifying modes need ClientCAFile.
	ClientAuth string `yaml:"client_auth"`
	// ClientCAFile holds the PEM CA certificates client certificates are
	// verified against.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Admin is the admin listener: metrics, health, the admin API and the
// web console.
type Admin struct {
	// Address is host:port. Default 127.0.0.1:9901. "off" disables it.
	// An address other than a loopback one needs Token or TLS with
	// ClientCAFile: the load fails otherwise.
	Address string `yaml:"address"`
	// Token, when set, is required as "Authorization: Bearer TOKEN" on the
	// admin API (also on loopback). Nil: none.
	Token *Secret `yaml:"token"`
	// TLS, when set, serves the admin listener over HTTPS; with
	// ClientCAFile, a client certificate verified against it is required
	// (client_auth is then require_and_verify) and authorizes the admin
	// API like the token.
	TLS *ServerTLS `yaml:"tls"`
	// DecisionHistory is how many recent requests' decisions are kept in
	// memory for `gatehouse explain` and the admin API. Default 10000.
	// Nothing is kept when the admin listener is off.
	DecisionHistory int `yaml:"decision_history"`
}

// Audit is the audit log: one JSON line per security event.
type Audit struct {
	// Output is "stdout", "stderr", a file path, or "off" (the default:
	// events are kept in memory for the admin API only).
	Output string `yaml:"output"`
	// Stdout also copies every event to stdout when Output is a file.
	Stdout bool `yaml:"stdout"`
	// MaxSize rotates the file when it would grow beyond this. Default
	// 100MiB.
	MaxSize ByteSize `yaml:"max_size"`
	// MaxFiles is how many rotated files are kept (PATH.1 ... PATH.N).
	// Default 5.
	MaxFiles int `yaml:"max_files"`
}

// AccessLog configures the access log.
type AccessLog struct {
	// Disabled turns the access log off.
	Disabled bool `yaml:"disabled"`
	// Output is "stdout" (default), "stderr" or a file path.
	Output string `yaml:"output"`
}

// Route sends matching requests through its policies to its upstream.
type Route struct {
	// Name identifies the route in logs, metrics and errors. Required, unique.
	Name string `yaml:"name"`
	// Match says which requests this route takes.
	Match Match `yaml:"match"`
	// Upstream is where allowed requests go. Required.
	Upstream Upstream `yaml:"upstream"`
	// SOAP marks a SOAP route ("1.1" or "1.2"): denials are SOAP Faults of
	// that version. Empty: a REST route, denials are problem+json.
	SOAP string `yaml:"soap"`
	// SOAPFaultStatus, on a SOAP 1.1 route, is the HTTP status of every
	// Fault the route answers with: 500, as WS-I Basic Profile 1.1 R1126
	// requires, for toolkits that read a Fault only from a 500 and ignore
	// the body of a 401. The Fault itself (faultcode, faultstring,
	// detail) and the headers (WWW-Authenticate, Retry-After) are
	// unchanged. Absent or 0: the denial's own status (401, 403, 429, ...).
	SOAPFaultStatus int `yaml:"soap_fault_status"`
	// Policies run in order; each entry is a one-key mapping from the
	// policy's type to its settings, e.g. `- ipfilter: {allow: [10.0.0.0/8]}`.
	Policies []PolicySpec `yaml:"policies"`
	// MethodOverride lets a POST name another method in
	// X-HTTP-Method-Override (see paths.go); false, the default, strips
	// the override fields.
	MethodOverride bool `yaml:"method_override"`
}

// Match selects requests. Exactly one of Path and PathPrefix is required.
type Match struct {
	// Hosts are exact host names or "*.example.com" wildcards (one label or
	// more). Empty: any host. Ports in the Host header are ignored.
	Hosts []string `yaml:"hosts"`
	// Path is an exact path, or a template whose segments may be
	// parameters: /product/{id}.
	Path string `yaml:"path"`
	// PathPrefix matches the path and everything below it on a segment
	// boundary: /api matches /api and /api/x, not /apix.
	PathPrefix string `yaml:"path_prefix"`
	// Methods limits the route to these methods, upper case (methods are
	// case-sensitive). Empty: the standard methods GET HEAD POST PUT
	// PATCH DELETE OPTIONS. ["*"]: any method.
	Methods []string `yaml:"methods"`
}

// Upstream is the backend a route proxies to.
type Upstream struct {
	// URL is http:// or https://, with an optional base path that request
	// paths are appended to. Required.
	URL string `yaml:"url"`
	// PreserveHost sends the client's Host header instead of the upstream's.
	PreserveHost bool `yaml:"preserve_host"`
	// H2C speaks HTTP/2 with prior knowledge to an http:// upstream.
	H2C bool `yaml:"h2c"`
	// TLS configures https:// upstreams.
	TLS *UpstreamTLS `yaml:"tls"`
	// ConnectTimeout bounds dialing (and the TLS handshake). Default 5s.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// ResponseHeaderTimeout bounds waiting for the response headers after the
	// request is sent. Default 60s.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// Timeout bounds the whole exchange with the upstream, body included.
	// 0: none.
	Timeout Duration `yaml:"timeout"`
	// IdleConnTimeout closes idle pooled connections. Default 90s.
	IdleConnTimeout Duration `yaml:"idle_conn_timeout"`
	// MaxIdleConnsPerHost sizes the keep-alive pool. Default 256.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// WebSocket lets a WebSocket upgrade (GET, HTTP/1.1, no body) through
	// to this upstream, after the route's whole policy chain. Default
	// false: the Upgrade is removed and the request goes on as a plain one.
	WebSocket bool `yaml:"websocket"`
	// RequestTrailers forwards the client's request trailers that were
	// announced in its Trailer field and may be trailers (RFC 9110
	// §6.5.1). Default false: request trailers are dropped.
	RequestTrailers bool `yaml:"request_trailers"`
}

// UpstreamTLS is the TLS client side of an https:// upstream.
type UpstreamTLS struct {
	// CAFile holds PEM CA certificates to verify the upstream against.
	// Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mTLS to the
	// upstream. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the upstream's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables verification. For tests only; logged loudly.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Store selects the shared-state backend.
type Store struct {
	// Type is "memory" (one process, lost on restart), "file" (the
	// default: one node, survives restarts) or "redis" (several instances).
	Type string `yaml:"type"`
	// Path is the file store's database, relative to the config file's
	// directory. Default "gatehouse-state.db".
	Path string `yaml:"path"`
	// Redis configures the redis store; required when Type is "redis".
	Redis *Redis `yaml:"redis"`
}

// Redis is a Redis server, a Redis Cluster, or a master found through
// Redis Sentinel, holding shared state.
type Redis struct {
	// Addresses are host:port of the server, or of cluster nodes (more
	// than one address means Redis Cluster). Required unless Sentinel is
	// set, and then not allowed.
	Addresses []string `yaml:"addresses"`
	// Sentinel finds the master through Redis Sentinel and follows it
	// across failovers.
	Sentinel *RedisSentinel `yaml:"sentinel"`
	// Username and Password authenticate to the data nodes (ACL or
	// requirepass).
	Username string  `yaml:"username"`
	Password *Secret `yaml:"password"`
	// DB selects the database (not with a cluster). Default 0.
	DB int `yaml:"db"`
	// TLS connects with TLS (to the sentinels too); CAFile, CertFile and
	// KeyFile as for upstreams.
	TLS *UpstreamTLS `yaml:"tls"`
	// KeyPrefix is put before every key, so that several gateways can
	// share one Redis. Default "gatehouse:".
	KeyPrefix string `yaml:"key_prefix"`
	// DialTimeout, ReadTimeout and WriteTimeout bound each operation's
	// steps. Defaults 2s, 500ms, 500ms: a limiter must not hang requests.
	DialTimeout  Duration `yaml:"dial_timeout"`
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	// PoolSize is the connection pool size. Default 10 per CPU.
	PoolSize int `yaml:"pool_size"`
}

// RedisSentinel names the sentinels and the master they watch.
type RedisSentinel struct {
	// MasterName is the name the sentinels monitor the master under.
	// Required.
	MasterName string `yaml:"master_name"`
	// Addresses are host:port of sentinels. At least one.
	Addresses []string `yaml:"addresses"`
	// Username and Password authenticate to the sentinels, apart from the
	// data nodes' credentials.
	Username string  `yaml:"username"`
	Password *Secret `yaml:"password"`
}

// PolicySpec is one entry of a route's policies: the policy type and its
// raw settings, decoded strictly later by that policy's factory.
type PolicySpec struct {
	// Type is the policy's registered name (the mapping's only key).
	Type string
	// Config is the raw settings node, with its place in the file.
	Config *Node
}

// Default values, used by applyDefaults and documented in docs/config.md.
const (
	DefaultAdminAddress          = "127.0.0.1:9901"
	DefaultDecisionHistory       = 10000
	DefaultAuditMaxSize          = 100 << 20
	DefaultAuditMaxFiles         = 5
	DefaultShutdownTimeout       = 30 * time.Second
	DefaultReadHeaderTimeout     = 10 * time.Second
	DefaultIdleTimeout           = 120 * time.Second
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultBodyIdleTimeout       = 60 * time.Second
	DefaultMaxConnections        = 10000
	DefaultMaxConnectionsPerIP   = 1024
	DefaultConnectTimeout        = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConnsPerHost   = 256
)
