package wsse

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

var errTest = errors.New("test: refused")

func timestamp(t *testing.T, inner string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<wsu:Timestamp xmlns:wsu="` + NamespaceWSU + `">` + inner + `</wsu:Timestamp>`); err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

func TestCheckTimestamp(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := Freshness{MaxAge: 5 * time.Minute, FutureSkew: 30 * time.Second, Refused: errTest}
	for _, tc := range []struct {
		name, inner, code string
	}{
		{"fresh", `<wsu:Created>2026-03-01T11:59:00Z</wsu:Created><wsu:Expires>2026-03-01T12:04:00Z</wsu:Expires>`, ""},
		{"offset spelling of UTC", `<wsu:Created>2026-03-01T11:59:00.123456789123+00:00</wsu:Created>`, ""},
		{"empty", ``, CodeInvalidSecurity},
		{"three children", `<wsu:Created>2026-03-01T11:59:00Z</wsu:Created><wsu:Expires>2026-03-01T12:04:00Z</wsu:Expires><wsu:Expires>2026-03-01T12:04:00Z</wsu:Expires>`, CodeInvalidSecurity},
		{"Expires first", `<wsu:Expires>2026-03-01T12:04:00Z</wsu:Expires>`, CodeInvalidSecurity},
		{"foreign namespace", `<Created xmlns="urn:x">2026-03-01T11:59:00Z</Created>`, CodeInvalidSecurity},
		{"local time", `<wsu:Created>2026-03-01T11:59:00</wsu:Created>`, CodeInvalidSecurity},
		{"other zone", `<wsu:Created>2026-03-01T12:59:00+01:00</wsu:Created>`, CodeInvalidSecurity},
		{"comma fraction", `<wsu:Created>2026-03-01T11:59:00,5Z</wsu:Created>`, CodeInvalidSecurity},
		{"too old", `<wsu:Created>2026-03-01T11:54:59Z</wsu:Created>`, CodeMessageExpired},
		{"future beyond skew", `<wsu:Created>2026-03-01T12:00:31Z</wsu:Created>`, CodeMessageExpired},
		{"expired", `<wsu:Created>2026-03-01T11:58:00Z</wsu:Created><wsu:Expires>2026-03-01T12:00:00Z</wsu:Expires>`, CodeMessageExpired},
		{"Expires before Created", `<wsu:Created>2026-03-01T11:59:00Z</wsu:Created><wsu:Expires>2026-03-01T11:58:00Z</wsu:Expires>`, CodeInvalidSecurity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.CheckTimestamp(timestamp(t, tc.inner), now)
			if tc.code == "" {
				if d != nil {
					t.Fatalf("got %s (%v), want success", d.Code, d.Err)
				}
				return
			}
			if d == nil {
				t.Fatalf("got success, want %s", tc.code)
			}
			status, detail := FaultStatus(tc.code)
			if d.Code != tc.code || d.StatusCode() != status || d.Detail != detail {
				t.Errorf("got %s %d %q, want %s %d %q", d.Code, d.StatusCode(), d.Detail, tc.code, status, detail)
			}
			if !errors.Is(d.Err, errTest) {
				t.Errorf("cause %v does not wrap the caller's sentinel", d.Err)
			}
		})
	}
}

func TestFaultUnknownCode(t *testing.T) {
	d := Fault(errTest, "wsse:Bogus", "x")
	if d.Code != CodeInvalidSecurity || d.StatusCode() != http.StatusBadRequest {
		t.Errorf("got %s %d, want %s 400", d.Code, d.StatusCode(), CodeInvalidSecurity)
	}
}

func TestRemoveHeaderBlock(t *testing.T) {
	const msg = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<s:Envelope xmlns:s="` + NamespaceSOAP11 + `"><s:Header><a:A xmlns:a="urn:a">1</a:A>` +
		`<wsse:Security xmlns:wsse="` + NamespaceWSSE + `"><x><!-- </wsse:Security> --></x></wsse:Security>` +
		`<b xmlns="urn:b"/></s:Header><s:Body><op xmlns="urn:op">  kept  </op></s:Body></s:Envelope>`
	got, err := RemoveHeaderBlock([]byte(msg), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(msg, `<wsse:Security xmlns:wsse="`+NamespaceWSSE+`"><x><!-- </wsse:Security> --></x></wsse:Security>`, "", 1)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := RemoveHeaderBlock([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><s:Envelope xmlns:s="`+NamespaceSOAP11+`"><s:Header><a/></s:Header></s:Envelope>`), 0); err == nil {
		t.Error("a message in ISO-8859-1 was cut: want an error")
	}
	if _, err := RemoveHeaderBlock([]byte(`<s:Envelope xmlns:s="`+NamespaceSOAP11+`"><s:Header><a/></s:Header></s:Envelope>`), 3); err == nil {
		t.Error("a missing block was cut: want an error")
	}
}
