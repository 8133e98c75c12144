package policytest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
)

// holder holds the whole response and, at End, refuses it when the body
// holds "bad", as dlp's block mode does.
type holder struct{}

func (holder) FilterResponse(ex *policy.Exchange, next policy.ResponseWriter) policy.ResponseWriter {
	return &holding{ResponseWriter: next, ex: ex}
}

type holding struct {
	policy.ResponseWriter
	ex     *policy.Exchange
	status int
	body   []byte
}

func (h *holding) WriteHeader(status int) { h.status = status }
func (h *holding) Write(b []byte) (int, error) {
	h.body = append(h.body, b...)
	return len(b), nil
}
func (h *holding) Flush() {}
func (h *holding) End() {
	switch {
	case h.ex.GatewayResponse:
		h.ResponseWriter.WriteHeader(h.status)
		h.ResponseWriter.Write(h.body)
	case strings.Contains(string(h.body), "bad"):
		h.ResponseWriter.Refuse(policy.Deny(http.StatusBadGateway, "held_refused", ""))
	default:
		h.ResponseWriter.WriteHeader(h.status)
		h.ResponseWriter.Write(h.body)
	}
	h.ResponseWriter.End()
}

// marker sets a header on whatever passes, refusals included.
type marker struct{}

func (marker) FilterResponse(_ *policy.Exchange, next policy.ResponseWriter) policy.ResponseWriter {
	return &marking{next}
}

type marking struct{ policy.ResponseWriter }

func (m *marking) WriteHeader(status int) {
	m.Header().Set("X-Marked", "1")
	m.ResponseWriter.WriteHeader(status)
}

// Two holders in either order: a refusal by either reaches the client,
// rendered through the filters below it, the entity headers of the
// refused response removed.
func TestFiltersTwoHolders(t *testing.T) {
	for _, chain := range [][]policy.ResponseFilter{
		{marker{}, holder{}, holder{}},
		{holder{}, marker{}, holder{}},
		{holder{}, holder{}, marker{}},
	} {
		for _, body := range []string{"good", "bad"} {
			ex := Exchange(httptest.NewRequest("GET", "/", nil))
			rec := Respond(t, ex, chain, 200, http.Header{"Content-Type": {"text/plain"}, "Etag": {`"1"`}}, body[:2], body[2:])
			if body == "good" {
				if rec.Status != 200 || rec.Body.String() != "good" || rec.Refusal != nil || rec.HeaderMap.Get("Etag") == "" {
					t.Errorf("good: got %d %q %v", rec.Status, rec.Body.String(), rec.HeaderMap)
				}
			} else if rec.Status != 502 || rec.Refusal == nil || rec.Refusal.Code != "held_refused" || strings.Contains(rec.Body.String(), "bad") || rec.HeaderMap.Get("Etag") != "" {
				t.Errorf("bad: got %d %q %v", rec.Status, rec.Body.String(), rec.HeaderMap)
			}
			if rec.HeaderMap.Get("X-Marked") != "1" {
				t.Errorf("%s: the marker did not see the response: %v", body, rec.HeaderMap)
			}
		}
	}
}
