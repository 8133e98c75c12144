package demo

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAppHandler(t *testing.T) {
	s := NewStore()
	h := AppHandler(s)
	for _, tt := range []struct {
		name   string
		method string
		header map[string]string
		status int
		want   string
	}{
		{"user", "GET", map[string]string{AppUserHeader: "alice", AppSubjectHeader: "u-alice", AppNameHeader: "Alice <Example>"}, 200, "Hello alice, here are your products"},
		{"escaped", "GET", map[string]string{AppUserHeader: "alice", AppNameHeader: "Alice <Example>"}, 200, "Alice &lt;Example&gt;"},
		{"subject only", "GET", map[string]string{AppSubjectHeader: "bob"}, 200, "Hello bob, here are your products"},
		{"a product", "GET", map[string]string{AppSubjectHeader: "bob"}, 200, "<td>p-1001</td>"},
		{"nobody", "GET", nil, 401, "only through the gateway"},
		{"post", "POST", map[string]string{AppSubjectHeader: "bob"}, 405, "method not allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/app", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("%d %q, want %d with %q", w.Code, w.Body.String(), tt.status, tt.want)
			}
		})
	}
	r := httptest.NewRequest("GET", "/app/", nil)
	r.Header.Set(AppSubjectHeader, "bob")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if strings.Contains(w.Body.String(), "<script") {
		t.Error("the page has a script")
	}
	if w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
	}
}
