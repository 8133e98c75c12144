package policy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBody(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		length   int64 // Content-Length; -1 unknown
		limit    int64
		wantCode string // "" when accepted
	}{
		{"fits", "hello", 5, 5, ""},
		{"declared too large", "hello", 5, 4, "body_too_large"},
		{"streamed too large", "hello", -1, 4, "body_too_large"},
		{"streamed fits", "hello", -1, 5, ""},
		{"empty", "", 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			r.ContentLength = tt.length
			ex := &Exchange{Request: r}
			got, err := ex.Body(tt.limit)
			if tt.wantCode != "" {
				d, ok := AsDenial(err)
				if !ok || d.Code != tt.wantCode || d.StatusCode() != http.StatusRequestEntityTooLarge {
					t.Fatalf("Body = %q, %v; want a 413 %s denial", got, err, tt.wantCode)
				}
				return
			}
			if err != nil || string(got) != tt.body {
				t.Fatalf("Body = %q, %v; want %q", got, err, tt.body)
			}
			// The upstream still gets the whole body, twice if it retries.
			for range 2 {
				rc, _ := r.GetBody()
				b, _ := io.ReadAll(rc)
				if string(b) != tt.body {
					t.Errorf("GetBody gives %q, want %q", b, tt.body)
				}
			}
			if b, _ := io.ReadAll(r.Body); string(b) != tt.body {
				t.Errorf("the forwarded body is %q, want %q", b, tt.body)
			}
		})
	}
}

func TestSetBody(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader("<Envelope>with a header</Envelope>"))
	r.Header.Set("Content-Length", "34")
	ex := &Exchange{Request: r}
	if _, err := ex.Body(1 << 10); err != nil {
		t.Fatal(err)
	}
	ex.SetBody([]byte("<Envelope/>"))
	if got, err := ex.Body(1 << 10); err != nil || string(got) != "<Envelope/>" {
		t.Errorf("Body after SetBody = %q, %v", got, err)
	}
	if _, err := ex.Body(5); err == nil {
		t.Error("a limit under the new body's size is not enforced")
	}
	if r.ContentLength != 11 || r.Header.Get("Content-Length") != "11" {
		t.Errorf("ContentLength %d, header %q; want 11", r.ContentLength, r.Header.Get("Content-Length"))
	}
	if b, _ := io.ReadAll(r.Body); string(b) != "<Envelope/>" {
		t.Errorf("the forwarded body is %q", b)
	}
	rc, _ := r.GetBody()
	if b, _ := io.ReadAll(rc); string(b) != "<Envelope/>" {
		t.Errorf("GetBody gives %q", b)
	}
}

type plainCheck struct{ n int }

func (c *plainCheck) CheckPlaintext(context.Context, *Exchange, []byte) error { return nil }

// TestPlaintextChecksReset: checks are kept in registration order and a
// pooled Exchange forgets them on Reset.
func TestPlaintextChecksReset(t *testing.T) {
	var ex Exchange
	a, b := &plainCheck{1}, &plainCheck{2}
	ex.AddPlaintextCheck(a)
	ex.AddPlaintextCheck(b)
	if got := ex.PlaintextChecks(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("PlaintextChecks = %v", got)
	}
	ex.Reset()
	if got := ex.PlaintextChecks(); len(got) != 0 {
		t.Fatalf("after Reset: %v", got)
	}
}
