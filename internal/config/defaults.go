package config

import "strconv"

// applyDefaults fills in every field the file left at its zero value and
// that has a default. A zero Duration or ByteSize means "not set", so
// `read_header_timeout: 0` also gets the default; settings whose zero means
// "none" (read_timeout, write_timeout, upstream timeout) have no default.
//
//	shutdown_timeout                       30s
//	listeners[N].name                      listener-N
//	listeners[N].read_header_timeout       10s
//	listeners[N].idle_timeout              120s
//	listeners[N].max_header_bytes          64KiB
//	listeners[N].tls.min_version           "1.2"
//	listeners[N].tls.client_auth           none
//	admin.address                          127.0.0.1:9901
//	admin.decision_history                 10000
//	access_log.output                      stdout
//	audit.output                           off
//	audit.max_size                         100MiB
//	audit.max_files                        5
//	tracing.exporter                       otlp-grpc (when tracing is set)
//	tracing.service_name                   gatehouse
//	tracing.sampling_ratio                 1
//	tracing.propagate_from                 trusted
//	tracing.queue_size                     2048
//	tracing.batch_size                     512
//	tracing.batch_timeout                  5s
//	tracing.export_timeout                 10s
//	routes[N].upstream.connect_timeout     5s
//	routes[N].upstream.response_header_timeout  60s
//	routes[N].upstream.idle_conn_timeout   90s
//	routes[N].upstream.max_idle_conns_per_host  256
func applyDefaults(c *Config) {
	setDefault(&c.ShutdownTimeout, Duration(DefaultShutdownTimeout))
	setDefault(&c.Admin.Address, DefaultAdminAddress)
	setDefault(&c.AccessLog.Output, "stdout")
	setDefault(&c.Admin.DecisionHistory, DefaultDecisionHistory)
	setDefault(&c.Audit.Output, "off")
	setDefault(&c.Audit.MaxSize, ByteSize(DefaultAuditMaxSize))
	setDefault(&c.Audit.MaxFiles, DefaultAuditMaxFiles)
	applyTracingDefaults(c.Tracing)
	if c.Admin.TLS != nil {
		setDefault(&c.Admin.TLS.MinVersion, "1.2")
		setDefault(&c.Admin.TLS.ClientAuth, "none")
		if c.Admin.TLS.ClientCAFile != "" {
			c.Admin.TLS.ClientAuth = "require_and_verify"
		}
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		setDefault(&l.Name, "listener-"+strconv.Itoa(i))
		setDefault(&l.ReadHeaderTimeout, Duration(DefaultReadHeaderTimeout))
		setDefault(&l.IdleTimeout, Duration(DefaultIdleTimeout))
		setDefault(&l.MaxHeaderBytes, ByteSize(DefaultMaxHeaderBytes))
		setDefault(&l.BodyIdleTimeout, Duration(DefaultBodyIdleTimeout))
		setDefault(&l.MaxConnections, DefaultMaxConnections)
		setDefault(&l.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
		if l.TLS != nil {
			setDefault(&l.TLS.MinVersion, "1.2")
			setDefault(&l.TLS.ClientAuth, "none")
		}
	}
	doorDefaults(c)
	for i := range c.Routes {
		u := &c.Routes[i].Upstream
		setDefault(&u.ConnectTimeout, Duration(DefaultConnectTimeout))
		setDefault(&u.ResponseHeaderTimeout, Duration(DefaultResponseHeaderTimeout))
		setDefault(&u.IdleConnTimeout, Duration(DefaultIdleConnTimeout))
		setDefault(&u.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
