package gateway

import "net/http"

// maxReadFrameSize is the largest HTTP/2 frame the listeners accept: RFC
// 9113's initial SETTINGS_MAX_FRAME_SIZE (16 KiB), which the gateway
// advertises instead of Go's default of 1 MiB. Go's server reads a whole
// frame into a per-connection buffer before handling it, so the default
// let every client connection hold a megabyte by sending one large frame;
// at 16 KiB a request body costs a few more frames and nothing else. It
// also makes a client that ignores the setting get the FRAME_SIZE_ERROR
// it must (h2spec http2/4.2/3, internal/h2spectest).
const maxReadFrameSize = 16 << 10

// http2Config is the HTTP/2 server configuration of every listener that
// speaks HTTP/2 (TLS with ALPN h2, or h2c).
func http2Config() *http.HTTP2Config {
	return &http.HTTP2Config{MaxReadFrameSize: maxReadFrameSize}
}
