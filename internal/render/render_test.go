package render

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/policy"
)

const reqID = "req-7f3a"

// render runs Denial against a recorder and returns the result.
func render(t *testing.T, method string, proto policy.Protocol, requestID string, d *policy.Denial) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	Denial(rec, httptest.NewRequest(method, "/x", nil), proto, requestID, d)
	return rec.Result()
}

func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkCommonHeaders asserts what every rendered response carries.
func checkCommonHeaders(t *testing.T, resp *http.Response, body []byte, wantType string) {
	t.Helper()
	if got := resp.Header.Get("Content-Type"); got != wantType {
		t.Errorf("Content-Type = %q, want %q", got, wantType)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if got, want := resp.Header.Get("Content-Length"), strconv.Itoa(len(body)); got != want {
		t.Errorf("Content-Length = %q, want %q", got, want)
	}
}

type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
}

func TestDenialREST(t *testing.T) {
	tests := []struct {
		name      string
		denial    *policy.Denial
		requestID string
		want      problem
		wantKeys  []string
	}{
		{
			name:      "forbidden with detail",
			denial:    policy.Deny(http.StatusForbidden, "ip_denied", "client address not allowed"),
			requestID: reqID,
			want:      problem{"about:blank", "Forbidden", 403, "client address not allowed", "ip_denied", reqID},
			wantKeys:  []string{"code", "detail", "request_id", "status", "title", "type"},
		},
		{
			name:      "zero status is 403, empty detail omitted",
			denial:    &policy.Denial{Code: "denied"},
			requestID: reqID,
			want:      problem{"about:blank", "Forbidden", 403, "", "denied", reqID},
			wantKeys:  []string{"code", "request_id", "status", "title", "type"},
		},
		{
			name:     "no request id",
			denial:   policy.Deny(http.StatusTooManyRequests, "rate_limited", ""),
			want:     problem{"about:blank", "Too Many Requests", 429, "", "rate_limited", ""},
			wantKeys: []string{"code", "status", "title", "type"},
		},
		{
			name:      "unknown status gets a generic title",
			denial:    policy.Deny(499, "odd", ""),
			requestID: reqID,
			want:      problem{"about:blank", "Client Error", 499, "", "odd", reqID},
			wantKeys:  []string{"code", "request_id", "status", "title", "type"},
		},
		{
			name:      "nil denial fails closed",
			denial:    nil,
			requestID: reqID,
			want:      problem{"about:blank", "Internal Server Error", 500, "", "internal_error", reqID},
			wantKeys:  []string{"code", "request_id", "status", "title", "type"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := render(t, http.MethodGet, policy.REST, tt.requestID, tt.denial)
			body := readBody(t, resp)
			if resp.StatusCode != tt.want.Status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want.Status)
			}
			checkCommonHeaders(t, resp, body, ContentTypeProblem)
			var got problem
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if got != tt.want {
				t.Errorf("body = %+v, want %+v", got, tt.want)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			if got, want := strings.Join(sorted(keys), ","), strings.Join(tt.wantKeys, ","); got != want {
				t.Errorf("keys = %s, want %s", got, want)
			}
		})
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

func TestDenialNeverShowsErr(t *testing.T) {
	d := policy.Deny(http.StatusUnauthorized, "invalid_token", "").
		WithErr(errors.New("jwt: signature by key kid-secret-42 invalid"))
	for _, proto := range []policy.Protocol{policy.REST, policy.SOAP11, policy.SOAP12} {
		t.Run(proto.String(), func(t *testing.T) {
			body := readBody(t, render(t, http.MethodGet, proto, reqID, d))
			if bytes.Contains(body, []byte("kid-secret-42")) {
				t.Errorf("body leaks the internal cause: %s", body)
			}
		})
	}
}

func TestDenialHeaders(t *testing.T) {
	shared := &policy.Denial{
		Status: http.StatusUnauthorized,
		Code:   "invalid_token",
		Header: http.Header{
			"Www-Authenticate": {`Bearer realm="api"`, `DPoP algs="ES256"`},
			"Retry-After":      {"30"},
			// A policy cannot override the renderer's own headers.
			"Content-Type":  {"text/html"},
			"Cache-Control": {"public, max-age=600"},
		},
	}
	for _, proto := range []policy.Protocol{policy.REST, policy.SOAP11, policy.SOAP12} {
		t.Run(proto.String(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Retry-After", "999")
			rec.Header().Set("Content-Encoding", "gzip")
			rec.Header().Set("X-Request-Id", reqID)
			Denial(rec, httptest.NewRequest(http.MethodGet, "/", nil), proto, reqID, shared)
			// A later writer appending must not reach into the shared Denial.
			rec.Header().Add("Www-Authenticate", "Basic")

			h := rec.Header()
			if got := h.Values("Www-Authenticate"); len(got) != 3 || got[0] != `Bearer realm="api"` || got[1] != `DPoP algs="ES256"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if got := h.Values("Retry-After"); len(got) != 1 || got[0] != "30" {
				t.Errorf("Retry-After = %q, want [30]", got)
			}
			if got := h.Get("Content-Type"); got != contentType(proto) {
				t.Errorf("Content-Type = %q, want %q", got, contentType(proto))
			}
			if got := h.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := h.Get("Content-Encoding"); got != "" {
				t.Errorf("Content-Encoding = %q, want none", got)
			}
			if got := h.Get("X-Request-Id"); got != reqID {
				t.Errorf("X-Request-Id = %q, want it kept", got)
			}
			if got := len(shared.Header["Www-Authenticate"]); got != 2 {
				t.Errorf("shared Denial header mutated: %d values", got)
			}
		})
	}
}

func TestDenialHEAD(t *testing.T) {
	for _, proto := range []policy.Protocol{policy.REST, policy.SOAP11, policy.SOAP12} {
		t.Run(proto.String(), func(t *testing.T) {
			d := policy.Deny(http.StatusForbidden, "ip_denied", "no")
			get := render(t, http.MethodGet, proto, reqID, d)
			getBody := readBody(t, get)
			head := render(t, http.MethodHead, proto, reqID, d)
			if b := readBody(t, head); len(b) != 0 {
				t.Errorf("HEAD body = %q, want none", b)
			}
			if head.StatusCode != http.StatusForbidden {
				t.Errorf("HEAD status = %d, want 403", head.StatusCode)
			}
			if got, want := head.Header.Get("Content-Length"), strconv.Itoa(len(getBody)); got != want {
				t.Errorf("HEAD Content-Length = %q, want GET's %q", got, want)
			}
			if got, want := head.Header.Get("Content-Type"), contentType(proto); got != want {
				t.Errorf("HEAD Content-Type = %q, want %q", got, want)
			}
		})
	}
}

func TestError(t *testing.T) {
	tests := []struct {
		status int
		code   string
		detail string
	}{
		{http.StatusNotFound, "no_route", ""},
		{http.StatusMethodNotAllowed, "method_not_allowed", ""},
		{http.StatusBadGateway, "upstream_unavailable", "upstream connection refused"},
		{http.StatusGatewayTimeout, "upstream_timeout", ""},
		{http.StatusInternalServerError, "internal_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Error(rec, httptest.NewRequest(http.MethodGet, "/", nil), policy.REST, reqID, tt.status, tt.code, tt.detail)
			resp := rec.Result()
			var got problem
			if err := json.Unmarshal(readBody(t, resp), &got); err != nil {
				t.Fatal(err)
			}
			want := problem{"about:blank", http.StatusText(tt.status), tt.status, tt.detail, tt.code, reqID}
			if resp.StatusCode != tt.status || got != want {
				t.Errorf("got %d %+v, want %d %+v", resp.StatusCode, got, tt.status, want)
			}
		})
	}
}

// xmlNode is a parsed element: its resolved name, the namespace bindings in
// scope, its text and its children.
type xmlNode struct {
	Name     xml.Name
	Attr     []xml.Attr
	scope    map[string]string
	Text     string
	Children []*xmlNode
}

// parseXML parses body into a tree, tracking prefix bindings so that QName
// values (faultcode, env:Value) can be resolved the way a SOAP stack does.
func parseXML(t *testing.T, body []byte) *xmlNode {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(body))
	root := &xmlNode{scope: map[string]string{"xml": "http://www.w3.org/XML/1998/namespace"}}
	stack := []*xmlNode{root}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML %s: %v", body, err)
		}
		top := stack[len(stack)-1]
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{Name: tok.Name, Attr: tok.Attr, scope: map[string]string{}}
			for k, v := range top.scope {
				n.scope[k] = v
			}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" {
					n.scope[a.Name.Local] = a.Value
				}
			}
			top.Children = append(top.Children, n)
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			top.Text += string(tok)
		}
	}
	if len(root.Children) != 1 {
		t.Fatalf("want one root element, got %d", len(root.Children))
	}
	return root.Children[0]
}

// find follows a path of {namespace, local} names from n.
func (n *xmlNode) find(t *testing.T, path ...xml.Name) *xmlNode {
	t.Helper()
	cur := n
	for _, p := range path {
		var next *xmlNode
		for _, c := range cur.Children {
			if c.Name == p {
				next = c
				break
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// qname resolves the node's text as a QName.
func (n *xmlNode) qname(t *testing.T) xml.Name {
	t.Helper()
	prefix, local, ok := strings.Cut(n.Text, ":")
	if !ok {
		t.Fatalf("%q is not a prefixed QName", n.Text)
	}
	ns, ok := n.scope[prefix]
	if !ok {
		t.Fatalf("prefix %q of %q is not bound", prefix, n.Text)
	}
	return xml.Name{Space: ns, Local: local}
}

func name(space, local string) xml.Name { return xml.Name{Space: space, Local: local} }

func TestDenialSOAP11(t *testing.T) {
	tests := []struct {
		name       string
		denial     *policy.Denial
		wantStatus int
		wantCode   xml.Name
		wantString string
	}{
		{"client", policy.Deny(http.StatusForbidden, "ip_denied", "client address not allowed"), 403,
			name(NamespaceSOAP11, "Client"), "client address not allowed"},
		{"server", policy.Deny(http.StatusServiceUnavailable, "store_unavailable", ""), 503,
			name(NamespaceSOAP11, "Server"), "Service Unavailable"},
		{"rate limit keeps 429", policy.Deny(http.StatusTooManyRequests, "rate_limited", ""), 429,
			name(NamespaceSOAP11, "Client"), "Too Many Requests"},
		{"wsse", policy.Deny(http.StatusUnauthorized, "wsse:FailedAuthentication", "The security token could not be authenticated or authorized"), 401,
			name(NamespaceWSSE, "FailedAuthentication"), "The security token could not be authenticated or authorized"},
		{"wsse with a bad local name is generic", policy.Deny(http.StatusUnauthorized, "wsse:bad name<", ""), 401,
			name(NamespaceSOAP11, "Client"), "Unauthorized"},
		{"version mismatch", policy.Deny(http.StatusBadRequest, CodeVersionMismatch, "wrong envelope"), 400,
			name(NamespaceSOAP11, "VersionMismatch"), "wrong envelope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := render(t, http.MethodPost, policy.SOAP11, reqID, tt.denial)
			body := readBody(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			checkCommonHeaders(t, resp, body, ContentTypeSOAP11)
			env := parseXML(t, body)
			if env.Name != name(NamespaceSOAP11, "Envelope") {
				t.Fatalf("root = %v", env.Name)
			}
			fault := env.find(t, name(NamespaceSOAP11, "Body"), name(NamespaceSOAP11, "Fault"))
			if fault == nil {
				t.Fatalf("no soap:Body/soap:Fault in %s", body)
			}
			// SOAP 1.1 fault children are unqualified.
			if got := fault.find(t, name("", "faultcode")).qname(t); got != tt.wantCode {
				t.Errorf("faultcode = %v, want %v", got, tt.wantCode)
			}
			if got := fault.find(t, name("", "faultstring")).Text; got != tt.wantString {
				t.Errorf("faultstring = %q, want %q", got, tt.wantString)
			}
			detail := fault.find(t, name("", "detail"))
			if detail == nil {
				t.Fatalf("no detail in %s", body)
			}
			if got := detail.find(t, name(NamespaceError, "code")); got == nil || got.Text != tt.denial.Code {
				t.Errorf("gh:code = %+v, want %q", got, tt.denial.Code)
			}
			if got := detail.find(t, name(NamespaceError, "requestId")); got == nil || got.Text != reqID {
				t.Errorf("gh:requestId = %+v, want %q", got, reqID)
			}
		})
	}
}

func TestDenialSOAP12(t *testing.T) {
	tests := []struct {
		name        string
		denial      *policy.Denial
		wantStatus  int
		wantValue   xml.Name
		wantSubcode xml.Name // zero: no subcode
		wantReason  string
	}{
		{"sender", policy.Deny(http.StatusForbidden, "ip_denied", "client address not allowed"), 403,
			name(NamespaceSOAP12, "Sender"), name(NamespaceError, "ip_denied"), "client address not allowed"},
		{"receiver", policy.Deny(http.StatusBadGateway, "upstream_unavailable", ""), 502,
			name(NamespaceSOAP12, "Receiver"), name(NamespaceError, "upstream_unavailable"), "Bad Gateway"},
		{"wsse", policy.Deny(http.StatusUnauthorized, "wsse:InvalidSecurityToken", ""), 401,
			name(NamespaceSOAP12, "Sender"), name(NamespaceWSSE, "InvalidSecurityToken"), "Unauthorized"},
		{"code that is no NCName has no subcode", policy.Deny(http.StatusForbidden, "9bad:code", ""), 403,
			name(NamespaceSOAP12, "Sender"), xml.Name{}, "Forbidden"},
		{"empty code has no subcode", &policy.Denial{Status: http.StatusTooManyRequests}, 429,
			name(NamespaceSOAP12, "Sender"), xml.Name{}, "Too Many Requests"},
		{"version mismatch", policy.Deny(http.StatusBadRequest, CodeVersionMismatch, ""), 400,
			name(NamespaceSOAP12, "VersionMismatch"), name(NamespaceError, CodeVersionMismatch), "Bad Request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := render(t, http.MethodPost, policy.SOAP12, reqID, tt.denial)
			body := readBody(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			checkCommonHeaders(t, resp, body, ContentTypeSOAP12)
			env := parseXML(t, body)
			if env.Name != name(NamespaceSOAP12, "Envelope") {
				t.Fatalf("root = %v", env.Name)
			}
			fault := env.find(t, name(NamespaceSOAP12, "Body"), name(NamespaceSOAP12, "Fault"))
			if fault == nil {
				t.Fatalf("no env:Body/env:Fault in %s", body)
			}
			code := fault.find(t, name(NamespaceSOAP12, "Code"))
			if got := code.find(t, name(NamespaceSOAP12, "Value")).qname(t); got != tt.wantValue {
				t.Errorf("Code/Value = %v, want %v", got, tt.wantValue)
			}
			sub := code.find(t, name(NamespaceSOAP12, "Subcode"), name(NamespaceSOAP12, "Value"))
			switch {
			case tt.wantSubcode == (xml.Name{}) && sub != nil:
				t.Errorf("Subcode = %q, want none", sub.Text)
			case tt.wantSubcode != (xml.Name{}) && sub == nil:
				t.Errorf("no Subcode, want %v", tt.wantSubcode)
			case sub != nil:
				if got := sub.qname(t); got != tt.wantSubcode {
					t.Errorf("Subcode = %v, want %v", got, tt.wantSubcode)
				}
			}
			text := fault.find(t, name(NamespaceSOAP12, "Reason"), name(NamespaceSOAP12, "Text"))
			if text == nil || text.Text != tt.wantReason {
				t.Fatalf("Reason/Text = %+v, want %q", text, tt.wantReason)
			}
			if len(text.Attr) != 1 || text.Attr[0].Name != name("http://www.w3.org/XML/1998/namespace", "lang") || text.Attr[0].Value != "en" {
				t.Errorf("Reason/Text attrs = %v, want xml:lang=en", text.Attr)
			}
			detail := fault.find(t, name(NamespaceSOAP12, "Detail"))
			if detail == nil {
				t.Fatalf("no Detail in %s", body)
			}
			if tt.denial.Code != "" {
				if got := detail.find(t, name(NamespaceError, "code")); got == nil || got.Text != tt.denial.Code {
					t.Errorf("gh:code = %+v, want %q", got, tt.denial.Code)
				}
			} else if got := detail.find(t, name(NamespaceError, "code")); got != nil {
				t.Errorf("gh:code = %q, want none", got.Text)
			}
			if got := detail.find(t, name(NamespaceError, "requestId")); got == nil || got.Text != reqID {
				t.Errorf("gh:requestId = %+v, want %q", got, reqID)
			}
		})
	}
}

// xmlVisible is what an XML reader sees of s after the renderer escaped it:
// runes XML cannot carry, and invalid UTF-8, become U+FFFD.
func xmlVisible(s string) string {
	var b strings.Builder
	for i, r := range s {
		if !xmlChar(r) || (r == '\uFFFD' && !strings.HasPrefix(s[i:], "\uFFFD")) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// jsonVisible is what a JSON reader sees of s after encoding/json's escaping.
func jsonVisible(t *testing.T, s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDenialHostileText(t *testing.T) {
	hostile := []string{
		`</faultstring><x>`,
		`</detail></soap:Fault><soap:Fault>`,
		`"}, "status": 200, "x": {"`,
		"\"\u2028\u2029",
		"ctl \x00\x01\x07\x1b\x7f end",
		"tab\tnl\ncr\r",
		"]]><!-- & ' \"",
		"bad utf8 \xff\xfe \xed\xa0\x80",
		"<script>alert(1)</script>",
		"\uFFFE \U0010FFFF",
	}
	for i, s := range hostile {
		d := policy.Deny(http.StatusBadRequest, "bad_request", s)
		rid := "rid-" + s
		t.Run(strconv.Itoa(i)+"/rest", func(t *testing.T) {
			body := readBody(t, render(t, http.MethodGet, policy.REST, rid, d))
			var got problem
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("invalid JSON %q: %v", body, err)
			}
			if want := jsonVisible(t, s); got.Detail != want || got.RequestID != jsonVisible(t, rid) {
				t.Errorf("detail = %q, request_id = %q; want %q", got.Detail, got.RequestID, want)
			}
			if got.Status != 400 {
				t.Errorf("status member = %d, want 400", got.Status)
			}
			if bytes.ContainsAny(body, "<>\u2028\u2029") {
				t.Errorf("body carries raw HTML or line-separator characters: %q", body)
			}
		})
		t.Run(strconv.Itoa(i)+"/soap11", func(t *testing.T) {
			body := readBody(t, render(t, http.MethodGet, policy.SOAP11, rid, d))
			env := parseXML(t, body)
			fault := env.find(t, name(NamespaceSOAP11, "Body"), name(NamespaceSOAP11, "Fault"))
			if got, want := fault.find(t, name("", "faultstring")).Text, xmlVisible(s); got != want {
				t.Errorf("faultstring = %q, want %q", got, want)
			}
			if got := fault.find(t, name("", "detail"), name(NamespaceError, "requestId")).Text; got != xmlVisible(rid) {
				t.Errorf("requestId = %q, want %q", got, xmlVisible(rid))
			}
			if n := len(fault.Children); n != 3 {
				t.Errorf("fault has %d children, want 3 (injection?)", n)
			}
		})
		t.Run(strconv.Itoa(i)+"/soap12", func(t *testing.T) {
			body := readBody(t, render(t, http.MethodGet, policy.SOAP12, rid, d))
			env := parseXML(t, body)
			fault := env.find(t, name(NamespaceSOAP12, "Body"), name(NamespaceSOAP12, "Fault"))
			if got, want := fault.find(t, name(NamespaceSOAP12, "Reason"), name(NamespaceSOAP12, "Text")).Text, xmlVisible(s); got != want {
				t.Errorf("Reason = %q, want %q", got, want)
			}
			if n := len(fault.Children); n != 3 {
				t.Errorf("fault has %d children, want 3 (injection?)", n)
			}
		})
	}
}

func TestIsNCName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"ip_denied", true},
		{"_x", true},
		{"FailedAuthentication", true},
		{"a.b-c_1", true},
		{"", false},
		{"1abc", false},
		{"-abc", false},
		{"a:b", false},
		{"a b", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := isNCName(tt.in); got != tt.want {
			t.Errorf("isNCName(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

var fuzzSeeds = []string{
	"", "plain", `"quoted"`, `back\slash`, "<>&", "\u2028\u2029", "\x00\x1f\x7f",
	"\b\f\n\r\t", "\xff", "\xed\xa0\x80", "\uFFFD", "\uFFFE", "日本語", "\U0001F600", "'apos'",
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString([]byte("x"), s); string(got[1:]) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got[1:], want)
		}
	})
}

func FuzzAppendXMLText(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		if err := xml.EscapeText(&want, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if got := appendXMLText([]byte("x"), s); string(got[1:]) != want.String() {
			t.Errorf("appendXMLText(%q) = %q, want %q", s, got[1:], want.String())
		}
	})
}

// discardWriter is a ResponseWriter whose cost is only its header map, so
// benchmarks measure the renderer.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func BenchmarkDenial(b *testing.B) {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	d := &policy.Denial{
		Status: http.StatusUnauthorized,
		Code:   "wsse:FailedAuthentication",
		Detail: "The security token could not be authenticated or authorized",
		Header: http.Header{"Www-Authenticate": {`Bearer realm="api", error="invalid_token"`}},
	}
	for _, proto := range []policy.Protocol{policy.REST, policy.SOAP11, policy.SOAP12} {
		b.Run(proto.String(), func(b *testing.B) {
			w := &discardWriter{h: make(http.Header, 8)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				Denial(w, r, proto, "01JDQ3K6Z8T1V2W3X4Y5Z6A7B8", d)
			}
		})
	}
}

func BenchmarkAppendJSONString(b *testing.B) {
	s := `request body exceeds 1048576 bytes <script> "quoted" and é`
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendJSONString(buf[:0], s)
	}
}
