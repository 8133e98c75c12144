package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"
)

// FuzzLoadBytes: LoadBytes never panics; a refused config is an Errors of
// problems that each name the file and, when they have a line, a line
// inside the document; an accepted config decodes again from the same bytes
// to the same effective config, and can be shown redacted.
func FuzzLoadBytes(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("routes:\n  - name: r\n    match: {path: /r}\n    upstream: {url: \"http://127.0.0.1:1\"}\n"))
	f.Add([]byte("listeners: [{address: \":${PORT:-8080}\"}]\nroutes: []\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("routes:\n  - name: r\n    match: {path_prefix: /}\n    upstream: {url: \"http://x\", timeout: 1h2m}\n    policies:\n      - size_limit: {body: 1KiB}\n"))
	if b, err := os.ReadFile("../../examples/demo.yaml"); err == nil {
		f.Add(b)
	}
	lookup := func(k string) (string, bool) {
		if k == "PORT" || k == "PLAIN_PORT" {
			return "8081", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		stop := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("LoadBytes hung on %q", data)) })
		c, err := LoadBytes("fuzz.yaml", data, lookup)
		stop.Stop()
		if err != nil {
			if c != nil {
				t.Fatal("a config returned with an error")
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %v, want a non-empty Errors", err, err)
			}
			lines := 1
			for _, b := range data {
				if b == '\n' || b == '\r' { // YAML breaks lines on CR too
					lines++
				}
			}
			for _, e := range es {
				if e.File != "fuzz.yaml" {
					t.Errorf("problem without the file name: %q", e.Error())
				}
				if e.Line < 0 || e.Line > lines {
					t.Errorf("problem at line %d of a %d-line document: %q", e.Line, lines, e.Error())
				}
				if e.Msg == "" {
					t.Errorf("problem without a message at %s:%d %s", e.File, e.Line, e.Path)
				}
			}
			return
		}
		again, err := LoadBytes("fuzz.yaml", data, lookup)
		if err != nil {
			t.Fatalf("accepted once, refused the second time: %v", err)
		}
		r1, err := c.Redacted()
		if err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		r2, err := again.Redacted()
		if err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("the same bytes decoded to two configs:\n%v\n%v", r1, r2)
		}
		// Errorf on any field path of an accepted config must not panic.
		_ = c.Errorf("routes[0].upstream.url", "x")
		_ = c.Errorf("no.such[7].path", "x")
	})
}
