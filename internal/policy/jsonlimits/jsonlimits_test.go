package jsonlimits

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

const small = `
max_bytes: 200B
max_depth: 3
max_keys: 3
max_array: 3
max_string: 8
max_number: 5
max_tokens: 20
`

func TestApply(t *testing.T) {
	p, err := New(policytest.Node(t, small), policytest.Env())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ct, body string
		wantStatus     int // 0: allowed
		wantCode       string
		wantDetail     string
	}{
		{"ok", "application/json", `{"name":"Espresso","price":249.9,"tags":["a","b"]}`, 0, "", ""},
		{"ok +json", "application/merge-patch+json", `{"a":1}`, 0, "", ""},
		{"ok scalar", "application/json", ` 12 `, 0, "", ""},
		{"not json passes", "text/plain", `{"a":1,"a":2}`, 0, "", ""},
		{"no content type passes", "", `{{{`, 0, "", ""},
		{"empty body passes", "application/json", ``, 0, "", ""},
		{"too big", "application/json", `{"a":"` + strings.Repeat("x", 300) + `"}`, 413, CodeLimit, "max_bytes"},
		{"depth", "application/json", `{"a":{"b":{"c":{}}}}`, 400, CodeLimit, "body.a.b.c: exceeds max_depth"},
		{"keys", "application/json", `{"a":1,"b":2,"c":3,"d":4}`, 400, CodeLimit, "body: exceeds max_keys"},
		{"array", "application/json", `{"a":[1,2,3,4]}`, 400, CodeLimit, "body.a[3]: exceeds max_array"},
		{"string", "application/json", `{"a":"123456789"}`, 400, CodeLimit, "body.a: exceeds max_string"},
		{"key length", "application/json", `{"123456789":1}`, 400, CodeLimit, "exceeds max_string"},
		{"number", "application/json", `{"a":123456}`, 400, CodeLimit, "body.a: exceeds max_number"},
		{"tokens", "application/json", `[{"a":[1,2,3],"b":[1,2,3]},{"a":[1,2,3],"b":[1,2,3]}]`, 400, CodeLimit, "exceeds max_tokens"},
		{"duplicate", "application/json", `{"a":1,"b":{"c":1,"c":2}}`, 400, CodeDuplicate, "body.b.c: duplicate key"},
		{"duplicate escaped", "application/json", `{"a":1,"\u0061":2}`, 400, CodeDuplicate, "duplicate key"},
		{"same key in siblings is fine", "application/json", `[{"a":1},{"a":2}]`, 0, "", ""},
		{"malformed", "application/json", `{"a":1,}`, 400, CodeMalformed, "invalid JSON at byte 7"},
		{"trailing data", "application/json", `{"a":1} {"a":2}`, 400, CodeMalformed, "data after the top-level value"},
		{"invalid utf-8", "application/json", "{\"a\":\"\xff\"}", 400, CodeMalformed, "invalid UTF-8"},
		{"lone surrogate", "application/json", `{"a":"\ud800"}`, 400, CodeMalformed, "lone surrogate"},
		{"charset param", "application/json; charset=utf-8", `{"a":1,"a":1}`, 400, CodeDuplicate, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/product", strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			err := p.Apply(t.Context(), policytest.Exchange(r))
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("got %v, want allowed", err)
				}
				return
			}
			d, ok := policy.AsDenial(err)
			if !ok {
				t.Fatalf("got %v, want a denial", err)
			}
			if d.StatusCode() != tt.wantStatus || d.Code != tt.wantCode || !strings.Contains(d.Detail, tt.wantDetail) {
				t.Errorf("got %d %s %q, want %d %s containing %q", d.StatusCode(), d.Code, d.Detail, tt.wantStatus, tt.wantCode, tt.wantDetail)
			}
		})
	}
}

// The body stays readable for the upstream after the check.
func TestBodyForwarded(t *testing.T) {
	p, _ := New(policytest.Node(t, ""), policytest.Env())
	body := `{"name":"x","price":1}`
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	ex := policytest.Exchange(r)
	if err := p.Apply(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	got, _ := ex.Body(1 << 20)
	if string(got) != body || r.ContentLength != int64(len(body)) {
		t.Errorf("got %q (%d), want %q", got, r.ContentLength, body)
	}
	_ = http.MethodPost
}

// The detail never echoes a long key.
func TestDetailBounded(t *testing.T) {
	key := strings.Repeat("k", 500)
	err := Check([]byte(`{"`+key+`":1,"`+key+`":2}`), Limits{})
	d, _ := policy.AsDenial(err)
	if d == nil || strings.Contains(d.Detail, key[:40]) || len(d.Detail) > 100 {
		t.Errorf("got %v", err)
	}
}
