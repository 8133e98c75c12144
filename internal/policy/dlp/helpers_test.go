package dlp

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/policy/policytest"
)

// result is what a client would have received from a response passed
// through a dlp policy.
type result struct {
	status int // 0: the status was never sent
	header http.Header
	body   string
}

// through passes a response (status, header, body written in the given
// chunks) through a dlp policy built from yaml, the way the gateway drives
// it: Apply, FilterResponse, WriteHeader, Writes, End, Done.
func through(t testing.TB, yaml string, status int, header http.Header, chunks ...string) result {
	t.Helper()
	p, err := New(policytest.Node(t, yaml), policytest.Env())
	if err != nil {
		t.Fatal(err)
	}
	return throughPolicy(t, p.(*DLP), status, header, chunks...)
}

func throughPolicy(t testing.TB, d *DLP, status int, header http.Header, chunks ...string) result {
	t.Helper()
	ex := policytest.Exchange(httptest.NewRequest("GET", "/", nil))
	if err := d.Apply(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	if header == nil {
		header = http.Header{"Content-Type": {"application/json"}}
	}
	w, rec := policytest.Filters(t, ex, d)
	rec.HeaderMap = header
	w.WriteHeader(status)
	for _, c := range chunks {
		n, err := w.Write([]byte(c))
		if err != nil || n != len(c) {
			t.Fatalf("Write: got %d, %v; want %d, nil", n, err, len(c))
		}
	}
	w.End()
	ex.Done()
	if !rec.Ended {
		t.Error("End did not reach the client")
	}
	return result{status: rec.Status, header: rec.HeaderMap, body: rec.Body.String()}
}

// splits returns s cut into pieces at every step bytes.
func splits(s string, step int) []string {
	var out []string
	for len(s) > step {
		out = append(out, s[:step])
		s = s[step:]
	}
	return append(out, s)
}

func mustNewEnv(t testing.TB, yaml string, env *policy.Env) *DLP {
	t.Helper()
	if env == nil {
		env = policytest.Env()
	}
	p, err := New(policytest.Node(t, yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*DLP)
}

// startWriter applies d to a GET and sends a 200 JSON status through it:
// the writer returned is d's, passing bytes to the recorder.
func startWriter(t testing.TB, d *DLP) (*writer, *policytest.Recorder) {
	t.Helper()
	ex := policytest.Exchange(httptest.NewRequest("GET", "/", nil))
	if err := d.Apply(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	w, rec := policytest.Filters(t, ex, d)
	rec.HeaderMap.Set("Content-Type", "application/json")
	w.WriteHeader(200)
	return w.(*writer), rec
}
