package forwardauth_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/doortest"
	"github.com/gatehouse/gatehouse/internal/peertest"
)

// NginxConf is the nginx auth_request setup docs/external-authorization.md
// shows, with the addresses and temporary paths filled in.
const nginxConf = `
daemon off;
master_process off;
worker_processes 1;
pid {DIR}/nginx.pid;
error_log {DIR}/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path {DIR}/body;
    proxy_temp_path {DIR}/proxy;
    fastcgi_temp_path {DIR}/fastcgi;
    uwsgi_temp_path {DIR}/uwsgi;
    scgi_temp_path {DIR}/scgi;

    # The original's body length for Gatehouse: 0 when it has none, empty
    # (unknown) when chunked.
    map "$http_content_length:$http_transfer_encoding" $gatehouse_body_length {
        ":"     0;
        default $http_content_length;
    }

    # Kept-alive connections to Gatehouse and the upstream: without them
    # nginx opens one per request and per subrequest.
    upstream gatehouse_forward_auth {
        server {FORWARD_AUTH};
        keepalive 32;
    }
    upstream backend {
        server {UPSTREAM};
        keepalive 32;
    }

    server {
        listen {LISTEN};

        location / {
            auth_request /_gatehouse;
            auth_request_set $gh_subject  $upstream_http_x_auth_subject;
            auth_request_set $gh_scopes   $upstream_http_x_auth_scopes;
            auth_request_set $gh_identity $upstream_http_x_gatehouse_identity;
            auth_request_set $gh_id       $upstream_http_x_request_id;
            # Set from the answer, or removed when it has none: a client
            # never supplies them.
            proxy_set_header X-Auth-Subject       $gh_subject;
            proxy_set_header X-Auth-Scopes        $gh_scopes;
            proxy_set_header X-Gatehouse-Identity $gh_identity;
            proxy_set_header X-User               "";
            proxy_set_header X-Request-Id         $gh_id;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location = /_gatehouse {
            internal;
            proxy_pass http://gatehouse_forward_auth/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Content-Length $gatehouse_body_length;
        }
    }
}
`

// caddyfile is the Caddy forward_auth setup of the docs.
const caddyfile = `
{
	admin off
	auto_https off
}
http://{LISTEN} {
	# Fields only Gatehouse may set: a client's own are removed first
	# (Caddy 2.6 sets a field the answer lacks to its placeholder's text
	# instead of removing it).
	request_header -X-User
	forward_auth {FORWARD_AUTH_HOST} {
		uri /auth
		copy_headers X-Auth-Subject X-Auth-Scopes X-Gatehouse-Identity X-Request-Id
	}
	reverse_proxy {UPSTREAM_HOST}
}
`

// peer runs a peer program until the test ends, and waits until addr
// accepts connections.
func peer(t testing.TB, addr string, env []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s: %s", name, addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// peerCases drives a peer in front of the forward-auth endpoint with real
// requests: the identity arrives upstream from the answer, never from the
// client, and refusals keep their status.
//
// declaresLength: the peer tells the original's body length
// (X-Forwarded-Content-Length), so a body-reading route can allow a
// request without a body; otherwise it is refused as one whose body the
// peer kept.
func peerCases(t *testing.T, env *doortest.Env, base string, declaresLength bool) {
	client := &http.Client{Timeout: 60 * time.Second}
	do := func(method, target, body string, h map[string]string) (*http.Response, string) {
		t.Helper()
		r, err := http.NewRequest(method, base+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	reader := map[string]string{"Authorization": "Bearer " + env.Reader, "X-Auth-Subject": "admin", "X-User": "root"}

	resp, body := do("GET", "/product/p-1", "", reader)
	if resp.StatusCode != 200 {
		t.Fatalf("allowed: %d %s", resp.StatusCode, body)
	}
	seen := env.Upstream.Seen(resp.Header.Get("X-Echo-Request-Id"))
	if seen == nil {
		t.Fatalf("the upstream did not get the gateway's request id: %q", resp.Header.Get("X-Echo-Request-Id"))
	}
	if seen.Get("X-Auth-Subject") != "reader" || seen.Get("X-Auth-Scopes") != "products:read" || seen.Get("X-Gatehouse-Identity") == "" || seen.Get("X-User") != "" {
		t.Errorf("upstream identity: subject %q scopes %q token %t X-User %q", seen.Get("X-Auth-Subject"), seen.Get("X-Auth-Scopes"),
			seen.Get("X-Gatehouse-Identity") != "", seen.Get("X-User"))
	}

	resp, body = do("GET", "/product/p-1", "", map[string]string{"X-Auth-Subject": "admin"})
	if resp.StatusCode != 401 {
		t.Errorf("no token: %d %s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
	}
	if resp, body := do("POST", "/product", `{}`, map[string]string{"Authorization": "Bearer " + env.Reader, "Content-Type": "application/json"}); resp.StatusCode != 403 {
		t.Errorf("insufficient scope: %d %s", resp.StatusCode, body)
	}
	want := 200
	if !declaresLength {
		want = 403
	}
	if resp, body := do("GET", "/orders", "", map[string]string{"Content-Type": "application/json"}); resp.StatusCode != want {
		t.Errorf("body route without a body: %d %s, want %d", resp.StatusCode, body, want)
	}
	// The peer does not forward bodies: a route that reads them refuses.
	if resp, body := do("POST", "/orders", `{"a":1}`, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 403 {
		t.Errorf("body route with a body kept by the peer: %d %s", resp.StatusCode, body)
	}
}

// TestNginxAuthRequest puts Debian's nginx (auth_request) in front of the
// forward-auth endpoint.
func TestNginxAuthRequest(t *testing.T) {
	bin := peertest.Debian(t, "nginx", "nginx")
	env, fwd := start(t, "127.0.0.1/32")
	listen := freePort(t)
	startNginx(t, bin, listen, env.Upstream.URL, fwd)
	peerCases(t, env, "http://"+listen, true)
}

// startNginx runs nginx with nginxConf on listen.
func startNginx(t testing.TB, bin, listen, upstream, fwd string) {
	dir := t.TempDir()
	conf := strings.NewReplacer("{DIR}", dir, "{LISTEN}", listen, "{UPSTREAM}", strings.TrimPrefix(upstream, "http://"),
		"{FORWARD_AUTH}", strings.TrimPrefix(fwd, "http://")).Replace(nginxConf)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	peer(t, listen, nil, bin, "-c", file, "-p", dir, "-e", filepath.Join(dir, "error.log"))
}

// TestCaddyForwardAuth puts Debian's Caddy (forward_auth) in front of the
// forward-auth endpoint.
func TestCaddyForwardAuth(t *testing.T) {
	bin := peertest.Debian(t, "caddy", "caddy")
	env, fwd := start(t, "127.0.0.1/32")
	dir := t.TempDir()
	listen := freePort(t)
	conf := strings.NewReplacer("{LISTEN}", listen, "{UPSTREAM_HOST}", strings.TrimPrefix(env.Upstream.URL, "http://"),
		"{FORWARD_AUTH_HOST}", strings.TrimPrefix(fwd, "http://")).Replace(caddyfile)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	peer(t, listen, []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}, bin, "run", "--config", file, "--adapter", "caddyfile")
	peerCases(t, env, "http://"+listen, false)
}
