package demo

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newRESTServer(t *testing.T, s *Store) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(RESTHandler(s))
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, url, contentType string, body io.Reader, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// checkProblem checks that r is an RFC 9457 problem for status.
func checkProblem(t *testing.T, r response, status int, detailContains string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if got := r.header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", got)
	}
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	if p["type"] != "about:blank" || p["title"] != http.StatusText(status) || p["status"] != float64(status) {
		t.Errorf("problem = %v, want type about:blank, title %q, status %d", p, http.StatusText(status), status)
	}
	if d, _ := p["detail"].(string); !strings.Contains(d, detailContains) {
		t.Errorf("problem detail = %q, want it to contain %q", d, detailContains)
	}
}

func TestRESTRead(t *testing.T) {
	srv := newRESTServer(t, NewStore())
	seeded := NewStore().List()

	t.Run("list", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/product", "", nil)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /product = %d %q, want 200 application/json", r.status, r.header.Get("Content-Type"))
		}
		var got []Product
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seeded, got); diff != "" {
			t.Errorf("GET /product (-want +got):\n%s", diff)
		}
	})
	t.Run("list is a JSON array with the documented keys", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/product", "", nil)
		var got []map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"id": "p-1001", "name": "Espresso Machine", "price": 249.9, "currency": "EUR"}
		if len(got) == 0 || !cmp.Equal(got[0], want) {
			t.Errorf("first product = %v, want %v", got, want)
		}
	})
	t.Run("get found", func(t *testing.T) {
		r := do(t, "GET", srv.URL+"/product/p-1002", "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("status = %d, want 200; body %s", r.status, r.body)
		}
		var got Product
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if got != seeded[1] {
			t.Errorf("GET /product/p-1002 = %+v, want %+v", got, seeded[1])
		}
	})
	t.Run("get missing", func(t *testing.T) {
		checkProblem(t, do(t, "GET", srv.URL+"/product/p-42", "", nil), http.StatusNotFound, "product not found")
	})
	t.Run("head", func(t *testing.T) {
		r := do(t, "HEAD", srv.URL+"/product/p-1001", "", nil)
		if r.status != http.StatusOK || len(r.body) != 0 {
			t.Errorf("HEAD = %d with %d body bytes, want 200 and none", r.status, len(r.body))
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		checkProblem(t, do(t, "GET", srv.URL+"/products", "", nil), http.StatusNotFound, "")
	})
}

func TestRESTMethodNotAllowed(t *testing.T) {
	srv := newRESTServer(t, NewStore())
	tests := []struct {
		method, path, wantAllow string
	}{
		{"DELETE", "/product", "GET, HEAD, POST"},
		{"PUT", "/product", "GET, HEAD, POST"},
		{"PATCH", "/product", "GET, HEAD, POST"},
		{"POST", "/product/p-1001", "GET, HEAD"},
		{"DELETE", "/product/p-1001", "GET, HEAD"},
		{"PUT", "/product/p-1001", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(t, tt.method, srv.URL+tt.path, "application/json", strings.NewReader(`{}`))
			checkProblem(t, r, http.StatusMethodNotAllowed, "")
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestRESTCreate(t *testing.T) {
	s := NewStore()
	srv := newRESTServer(t, s)

	r := do(t, "POST", srv.URL+"/product", "application/json", strings.NewReader(`{"name":"Tamper","price":19.5}`))
	if r.status != http.StatusCreated {
		t.Fatalf("POST /product = %d, want 201; body %s", r.status, r.body)
	}
	var got Product
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	want := Product{ID: "p-1004", Name: "Tamper", Price: 19.5, Currency: "EUR"}
	if got != want {
		t.Errorf("created = %+v, want %+v", got, want)
	}
	if loc := r.header.Get("Location"); loc != "/product/p-1004" {
		t.Errorf("Location = %q, want /product/p-1004", loc)
	}

	// The Location resolves to the product, and it is listed.
	r = do(t, "GET", srv.URL+r.header.Get("Location"), "", nil)
	var fetched Product
	if err := json.Unmarshal(r.body, &fetched); err != nil || fetched != want {
		t.Errorf("GET Location = %s (%v), want %+v", r.body, err, want)
	}
	if l := s.List(); l[len(l)-1] != want {
		t.Errorf("last listed product = %+v, want %+v", l[len(l)-1], want)
	}

	r = do(t, "POST", srv.URL+"/product", "application/json; charset=UTF-8",
		strings.NewReader(`{"currency":"JPY","price":1200,"name":"Kyusu"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("POST with charset and a currency = %d, want 201; body %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if want := (Product{ID: "p-1005", Name: "Kyusu", Price: 1200, Currency: "JPY"}); got != want {
		t.Errorf("created = %+v, want %+v", got, want)
	}
}

// unsized hides the length of a body so the client sends it chunked and
// the server cannot refuse it by its Content-Length.
type unsized struct{ io.Reader }

func TestRESTCreateInvalid(t *testing.T) {
	big := `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `","price":1}`
	tests := []struct {
		name        string
		contentType string
		body        io.Reader
		wantStatus  int
		wantDetail  string
	}{
		{"unknown field", "application/json", strings.NewReader(`{"name":"a","price":1,"color":"red"}`), 400, `unknown field "color"`},
		{"client-chosen id", "application/json", strings.NewReader(`{"id":"p-1","name":"a","price":1}`), 400, `unknown field "id"`},
		{"key in another case", "application/json", strings.NewReader(`{"NAME":"a","price":1}`), 400, `unknown field "NAME"`},
		{"duplicate key", "application/json", strings.NewReader(`{"name":"a","name":"b","price":1}`), 400, `duplicate field "name"`},
		{"trailing object", "application/json", strings.NewReader(`{"name":"a","price":1}{}`), 400, "after the JSON object"},
		{"trailing garbage", "application/json", strings.NewReader(`{"name":"a","price":1} x`), 400, ""},
		{"missing name", "application/json", strings.NewReader(`{"price":1}`), 400, "name is required"},
		{"empty name", "application/json", strings.NewReader(`{"name":"","price":1}`), 400, "name is required"},
		{"null name", "application/json", strings.NewReader(`{"name":null,"price":1}`), 400, "name is required"},
		{"long name", "application/json", strings.NewReader(`{"name":"` + strings.Repeat("x", 201) + `","price":1}`), 400, "name must be at most 200"},
		{"missing price", "application/json", strings.NewReader(`{"name":"a"}`), 400, "price is required"},
		{"zero price", "application/json", strings.NewReader(`{"name":"a","price":0}`), 400, "price must be greater than 0"},
		{"negative price", "application/json", strings.NewReader(`{"name":"a","price":-3}`), 400, "price must be greater than 0"},
		{"price as a string", "application/json", strings.NewReader(`{"name":"a","price":"1"}`), 400, "price must be a JSON number"},
		{"lower-case currency", "application/json", strings.NewReader(`{"name":"a","price":1,"currency":"eur"}`), 400, "currency must be three upper-case"},
		{"array", "application/json", strings.NewReader(`[{"name":"a","price":1}]`), 400, "must be a JSON object"},
		{"malformed", "application/json", strings.NewReader(`{"name":"a",`), 400, "malformed JSON"},
		{"empty body", "application/json", strings.NewReader(``), 400, "malformed JSON"},
		{"text/plain", "text/plain", strings.NewReader(`{"name":"a","price":1}`), 415, "application/json"},
		{"no content type", "", strings.NewReader(`{"name":"a","price":1}`), 415, "application/json"},
		{"json with another charset", "application/json; charset=latin1", strings.NewReader(`{"name":"a","price":1}`), 415, "charset=utf-8"},
		{"form", "application/x-www-form-urlencoded", strings.NewReader(`name=a&price=1`), 415, "application/json"},
		{"too large, with a length", "application/json", strings.NewReader(big), 413, "larger than 65536"},
		{"too large, chunked", "application/json", unsized{strings.NewReader(big)}, 413, "larger than 65536"},
	}
	s := NewStore()
	srv := newRESTServer(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblem(t, do(t, "POST", srv.URL+"/product", tt.contentType, tt.body), tt.wantStatus, tt.wantDetail)
		})
	}
	if got := s.Len(); got != 3 {
		t.Errorf("after only invalid requests the store holds %d products, want 3", got)
	}
}

func TestRESTCreateStoreFull(t *testing.T) {
	srv := newRESTServer(t, NewBoundedStore(4))
	body := []byte(`{"name":"a","price":1}`)
	if r := do(t, "POST", srv.URL+"/product", "application/json", bytes.NewReader(body)); r.status != http.StatusCreated {
		t.Fatalf("first create = %d, want 201", r.status)
	}
	r := do(t, "POST", srv.URL+"/product", "application/json", bytes.NewReader(body))
	checkProblem(t, r, http.StatusInsufficientStorage, "at most 4 products")
	if loc := r.header.Get("Location"); loc != "" {
		t.Errorf("a refused create has Location %q", loc)
	}
}
