package sts

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/google/go-cmp/cmp"
)

// TestRequestMetrics sends each operation over HTTP, answered and
// refused, and checks gatehouse_sts_requests_total by operation and
// outcome.
func TestRequestMetrics(t *testing.T) {
	f := newFixture(t, "")
	m := telemetry.NewMetrics()
	f.srv.metrics = m
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	post := func(msg string) string {
		t.Helper()
		resp, err := http.Post(ts.URL, "application/soap+xml; charset=utf-8", strings.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	const pw = "pässword & <more>"
	tok, a := f.assertionOf(t, post(f.rst(true, "alice", pw, actIssue, issueBody("urn:gatehouse:products", ""))))
	post(f.rst(true, "alice", "wrong", actIssue, issueBody("urn:gatehouse:products", "")))
	post(f.rst(true, "alice", pw, actIssue, issueBody("urn:nobody", "")))
	post(f.rst(false, "", "", actValidate, targetBody(RequestValidate, "ValidateTarget", tok)))
	post(f.rst(false, "", "", actValidate, targetBody(RequestValidate, "ValidateTarget", strings.Replace(tok, ">alice<", ">bob<", 1))))
	f.clock.add(time.Second)
	post(f.rst(true, "alice", pw, actRenew, targetBody(RequestRenew, "RenewTarget", tok)))
	cancel := targetBody(RequestCancel, "CancelTarget", `<wsse:SecurityTokenReference><wsse:KeyIdentifier ValueType="`+saml2.ValueTypeSAMLID+`">`+a.ID+`</wsse:KeyIdentifier></wsse:SecurityTokenReference>`)
	post(f.rst(true, "bob", "bobpw", actCancel, cancel))
	post(f.rst(true, "alice", pw, actCancel, cancel))
	post("<not-soap/>")
	post(strings.Repeat("x", MaxRequestBytes+1))

	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range fams {
		if fam.GetName() != "gatehouse_sts_requests_total" {
			continue
		}
		for _, s := range fam.GetMetric() {
			if v := s.GetCounter().GetValue(); v > 0 {
				got[s.GetLabel()[0].GetValue()+" "+s.GetLabel()[1].GetValue()] = v
			}
		}
	}
	want := map[string]float64{
		"issue success": 1, "issue FailedAuthentication": 1, "issue InvalidScope": 1,
		"validate success": 1, "validate invalid": 1,
		"renew success":               1,
		"cancel FailedAuthentication": 1, "cancel success": 1,
		"unknown InvalidRequest": 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gatehouse_sts_requests_total (-want +got):\n%s", diff)
	}
}
