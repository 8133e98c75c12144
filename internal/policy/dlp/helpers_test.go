package dlp

import (
	"bytes"
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
// it: Apply, HoldHeader, Writes, EndResponse, Done.
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
	var out bytes.Buffer
	ex.ResponseBody = &out
	if err := d.Apply(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	res := result{header: header}
	if header == nil {
		res.header = http.Header{"Content-Type": {"application/json"}}
	}
	if ex.HoldHeader == nil {
		t.Fatal("Apply set no HoldHeader")
	}
	ex.HoldHeader(status, res.header, func(code int) {
		if res.status != 0 {
			t.Error("send called twice")
		}
		res.status = code
	})
	for _, c := range chunks {
		if res.status == 0 && out.Len() > 0 {
			t.Error("body bytes passed on before the status")
		}
		n, err := ex.ResponseBody.Write([]byte(c))
		if err != nil || n != len(c) {
			t.Fatalf("Write: got %d, %v; want %d, nil", n, err, len(c))
		}
	}
	ex.EndResponse()
	ex.Done()
	res.body = out.String()
	return res
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

// startWriter applies d to a GET and sends a 200 JSON status: the
// Exchange's ResponseBody is then d's writer, passing bytes to out.
func startWriter(t testing.TB, d *DLP) (*policy.Exchange, *bytes.Buffer) {
	t.Helper()
	ex := policytest.Exchange(httptest.NewRequest("GET", "/", nil))
	out := new(bytes.Buffer)
	ex.ResponseBody = out
	if err := d.Apply(t.Context(), ex); err != nil {
		t.Fatal(err)
	}
	ex.HoldHeader(200, http.Header{"Content-Type": {"application/json"}}, func(int) {})
	return ex, out
}
