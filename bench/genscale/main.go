// Command genscale writes the configs of bench/scale.sh: a Gatehouse config
// of n routes (and the nginx and HAProxy ones with as many), or a keys_file
// of n API keys with a Gatehouse config using it.
//
//	go run ./bench/genscale -routes 10000 -listen 127.0.0.1:18801 -upstream http://127.0.0.1:18802 -dir /tmp/x
//	go run ./bench/genscale -keys 1000000 -listen 127.0.0.1:18801 -upstream http://127.0.0.1:18802 -dir /tmp/x
//
// Routes: writes routes.yaml, nginx-routes.conf (a server block's
// locations) and haproxy-routes.map; route i matches /r<i>/ and the last one also /product, so
// that a load test can reach it. Keys: writes keys.yaml (key i is
// gh_scale-<i>, so the load test sends gh_scale-0) and keys-gateway.yaml.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	routes := flag.Int("routes", 0, "number of routes")
	keys := flag.Int("keys", 0, "number of API keys")
	listen := flag.String("listen", "127.0.0.1:18801", "the gateway's listener")
	upstream := flag.String("upstream", "http://127.0.0.1:18802", "the upstream URL")
	dir := flag.String("dir", ".", "where to write")
	flag.Parse()
	switch {
	case *routes > 0:
		writeRoutes(*dir, *routes, *listen, *upstream)
	case *keys > 0:
		writeKeys(*dir, *keys, *listen, *upstream)
	default:
		fmt.Fprintln(os.Stderr, "usage: genscale -routes N | -keys N [-listen A] [-upstream U] [-dir D]")
		os.Exit(2)
	}
}

const header = `store: {type: memory}
listeners: [{name: bench, address: "%s"}]
admin: {address: "off"}
access_log: {disabled: true}
routes:
`

func create(dir, name string) (*os.File, *bufio.Writer) {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return f, bufio.NewWriterSize(f, 1<<20)
}

func done(f *os.File, w *bufio.Writer) {
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f.Close()
}

func writeRoutes(dir string, n int, listen, upstream string) {
	// Each file: its header, then one entry per route (path, index).
	files := []struct {
		name, header string
		entry        func(w *bufio.Writer, path string, i int)
	}{
		{"routes.yaml", fmt.Sprintf(header, listen), func(w *bufio.Writer, path string, i int) {
			fmt.Fprintf(w, `  - name: route-%d
    match: {path_prefix: %s, methods: [GET, POST]}
    upstream: {url: "%s"}
    policies:
      - ipfilter: {allow: [127.0.0.0/8, 10.0.0.0/8]}
      - size_limit: {body: 1MiB, headers: 16KiB}
      - headers: {request: {set: {X-Route: "r%d"}}}
`, i, path, upstream, i)
		}},
		{"nginx-routes.conf", "", func(w *bufio.Writer, path string, i int) {
			fmt.Fprintf(w, "location %s { allow 127.0.0.0/8; allow 10.0.0.0/8; deny all; client_max_body_size 1m; proxy_set_header X-Route r%d; proxy_pass http://demo; proxy_http_version 1.1; proxy_set_header Connection \"\"; }\n", path, i)
		}},
		// HAProxy's way with many routes: one map from path prefix to
		// the route's X-Route value, looked up in a prefix tree
		// (map_beg).
		{"haproxy-routes.map", "", func(w *bufio.Writer, path string, i int) {
			fmt.Fprintf(w, "%s r%d\n", path, i)
		}},
	}
	for _, file := range files {
		f, w := create(dir, file.name)
		w.WriteString(file.header)
		for i := 0; i < n; i++ {
			path := fmt.Sprintf("/r%d/", i)
			if i == n-1 {
				path = "/product"
			}
			file.entry(w, path, i)
		}
		done(f, w)
	}
}

func writeKeys(dir string, n int, listen, upstream string) {
	f, w := create(dir, "keys.yaml")
	fmt.Fprintf(w, "# %d generated consumers\nkeys:\n", n)
	tiers := []string{"gold", "silver", "bronze"}
	for i := 0; i < n; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("gh_scale-%d", i)))
		fmt.Fprintf(w, "  - consumer: app-%d\n    hash: \"sha256:%s\"\n    scopes: [products:read, orders:%s]\n    tier: %s\n",
			i, base64.RawURLEncoding.EncodeToString(sum[:]), tiers[i%3], tiers[i%3])
	}
	done(f, w)
	f, w = create(dir, "keys-gateway.yaml")
	fmt.Fprintf(w, header, listen)
	fmt.Fprintf(w, `  - name: products
    match: {path_prefix: /product}
    upstream: {url: "%s"}
    policies:
      - authenticate: {with: [{apikey: {keys_file: keys.yaml}}]}
`, upstream)
	done(f, w)
}
