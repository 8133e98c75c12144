// Package wsse holds the WS-Security 1.1 primitives that the policies and
// servers reading a Security header share: the namespaces, the fault codes
// of WSS 1.1 section 12 with their statuses and fault strings, Timestamp
// and Created freshness, cutting a header block out of a message byte for
// byte, and the result of verifying a message. It sits below the policy
// units, so the `wssecurity` and `saml` policies and the STS use one copy
// of these rules without importing each other.
package wsse

import (
	"bytes"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/gatehouse/gatehouse/internal/policy"
	"github.com/gatehouse/gatehouse/internal/xmlsig"
)

// Namespaces of WSS 1.1 and SOAP.
const (
	NamespaceWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NamespaceWSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
	NamespaceWSU    = xmlsig.NamespaceWSU
	NamespaceSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NamespaceSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
)

// Fault codes (WSS 1.1 section 12), the Denial codes of the policies that
// read a Security header.
const (
	CodeUnsupportedSecurityToken = "wsse:UnsupportedSecurityToken"
	CodeUnsupportedAlgorithm     = "wsse:UnsupportedAlgorithm"
	CodeInvalidSecurity          = "wsse:InvalidSecurity"
	CodeInvalidSecurityToken     = "wsse:InvalidSecurityToken"
	CodeFailedAuthentication     = "wsse:FailedAuthentication"
	CodeFailedCheck              = "wsse:FailedCheck"
	CodeSecurityTokenUnavailable = "wsse:SecurityTokenUnavailable"
	CodeMessageExpired           = "wsse:MessageExpired"
)

// faults holds, per code, the status and the fault string of WSS 1.1
// table 12, the only text a client sees: the precise reason is the
// Denial's Err, which is logged. Message and token structure problems are
// 400; everything saying "you are not who you claim, or not now" is 401.
var faults = map[string]struct {
	status int
	detail string
}{
	CodeUnsupportedSecurityToken: {http.StatusBadRequest, "An unsupported token was provided"},
	CodeUnsupportedAlgorithm:     {http.StatusBadRequest, "An unsupported signature or encryption algorithm was used"},
	CodeInvalidSecurity:          {http.StatusBadRequest, "An error was discovered processing the <wsse:Security> header"},
	CodeInvalidSecurityToken:     {http.StatusUnauthorized, "An invalid security token was provided"},
	CodeFailedAuthentication:     {http.StatusUnauthorized, "The security token could not be authenticated or authorized"},
	CodeFailedCheck:              {http.StatusUnauthorized, "The signature or decryption was invalid"},
	CodeSecurityTokenUnavailable: {http.StatusUnauthorized, "Referenced security token could not be retrieved"},
	CodeMessageExpired:           {http.StatusUnauthorized, "The message has expired"},
}

// Fault returns the Denial of code with its WSS 1.1 status and fault
// string; its Err wraps refused (the calling policy's sentinel) with the
// precise reason. An unknown code is a programming error: it is answered
// as wsse:InvalidSecurity, never with an empty status.
func Fault(refused error, code, format string, args ...any) *policy.Denial {
	f, ok := faults[code]
	if !ok {
		code, f = CodeInvalidSecurity, faults[CodeInvalidSecurity]
	}
	return &policy.Denial{Status: f.status, Code: code, Detail: f.detail,
		Err: fmt.Errorf("%w: %s", refused, fmt.Sprintf(format, args...))}
}

// Result is what verifying a message's Security header proved.
type Result struct {
	// Principal is the caller, as the wssecurity policy sets it on the
	// exchange.
	Principal *policy.Principal
	// Certificate is the X.509 token whose key signed the message; nil
	// when it was not signed.
	Certificate *x509.Certificate
	// Message is the message without the gateway's Security header, cut
	// out byte for byte; the message as given when the header is kept.
	// When the message was decrypted, it is the decrypted message
	// serialized (see Decrypted).
	Message []byte
	// Decrypted reports that Message is the plaintext of an encrypted
	// message.
	Decrypted bool
}

// Freshness bounds the age of a message's Timestamp and of a
// UsernameToken's Created.
type Freshness struct {
	// MaxAge is how old a Created may be.
	MaxAge time.Duration
	// FutureSkew is how far in the future a Created may be (clock skew).
	FutureSkew time.Duration
	// Refused is wrapped by the cause of every Denial (the calling
	// policy's sentinel error).
	Refused error
}

// CheckTimestamp checks a wsu:Timestamp: exactly one Created, first, at
// most one Expires after it, nothing else; UTC; Created no older than
// MaxAge and no further than FutureSkew in the future; Expires not passed.
// It returns a Denial with a wsse code, or nil.
func (f Freshness) CheckTimestamp(ts *etree.Element, now time.Time) *policy.Denial {
	kids := ts.ChildElements()
	if len(kids) == 0 || len(kids) > 2 {
		return Fault(f.Refused, CodeInvalidSecurity, "Timestamp must hold Created and at most Expires")
	}
	for i, k := range kids {
		want := [2]string{"Created", "Expires"}[i]
		if k.Tag != want || k.NamespaceURI() != NamespaceWSU {
			return Fault(f.Refused, CodeInvalidSecurity, "Timestamp child %d is %s, want wsu:%s", i, Clark(k), want)
		}
	}
	created, err := ParseUTC(kids[0].Text())
	if err != nil {
		return Fault(f.Refused, CodeInvalidSecurity, "Timestamp Created: %v", err)
	}
	if d := f.Fresh(created, now, "Timestamp"); d != nil {
		return d
	}
	if len(kids) == 2 {
		expires, err := ParseUTC(kids[1].Text())
		if err != nil {
			return Fault(f.Refused, CodeInvalidSecurity, "Timestamp Expires: %v", err)
		}
		if !expires.After(created) {
			return Fault(f.Refused, CodeInvalidSecurity, "Timestamp Expires %s is not after Created %s", expires, created)
		}
		if !now.Before(expires) {
			return Fault(f.Refused, CodeMessageExpired, "Timestamp expired at %s (now %s)", expires, now)
		}
	}
	return nil
}

// Fresh checks that created (of what: "Timestamp", "UsernameToken") is
// within MaxAge of now and not more than FutureSkew ahead of it.
func (f Freshness) Fresh(created, now time.Time, what string) *policy.Denial {
	if created.After(now.Add(f.FutureSkew)) {
		return Fault(f.Refused, CodeMessageExpired, "%s Created %s is more than %s in the future (now %s)", what, created, f.FutureSkew, now)
	}
	if now.Sub(created) > f.MaxAge {
		return Fault(f.Refused, CodeMessageExpired, "%s Created %s is older than %s (now %s)", what, created, f.MaxAge, now)
	}
	return nil
}

// ParseUTC parses an xsd:dateTime that must be in UTC, in any of the
// spellings XML Schema gives UTC: "Z", "+00:00" and "-00:00" (python-zeep
// and other Python clients write the offset), with fractional seconds of
// any length (Go keeps nanoseconds; further digits are dropped). A time
// without a zone, or in another zone, is refused: WSS 1.1 §10 wants UTC,
// and a local time cannot be compared with ours.
func ParseUTC(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	var local string
	switch {
	case strings.HasSuffix(s, "Z"):
		local = s[:len(s)-1]
	case strings.HasSuffix(s, "+00:00"), strings.HasSuffix(s, "-00:00"):
		local = s[:len(s)-6]
	default:
		return time.Time{}, fmt.Errorf("%q is not a UTC time (…Z or …+00:00)", s)
	}
	// "YYYY-MM-DDThh:mm:ss" then at most "." and one or more digits:
	// time.Parse would also take a comma or other text there.
	const base = len("2006-01-02T15:04:05")
	if len(local) < base {
		return time.Time{}, fmt.Errorf("%q is not a date-time", s)
	}
	if frac := local[base:]; frac != "" {
		if len(frac) < 2 || frac[0] != '.' || strings.Trim(frac[1:], "0123456789") != "" {
			return time.Time{}, fmt.Errorf("%q is not a date-time", s)
		}
	}
	t, err := time.Parse("2006-01-02T15:04:05", local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date-time", s)
	}
	return t, nil
}

// Clark returns el's name in Clark notation ({namespace}local), for
// messages.
func Clark(el *etree.Element) string { return "{" + el.NamespaceURI() + "}" + el.Tag }

// UTF8Only is an xml.Decoder CharsetReader: it accepts the encodings
// whose bytes are UTF-8 and refuses the others rather than misreading them.
func UTF8Only(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	}
	return nil, fmt.Errorf("encoding %q is not supported: use UTF-8", charset)
}

// RemoveHeaderBlock returns body without the i-th element child of the
// Envelope's Header, cut out byte for byte so that everything else is
// forwarded exactly as the client sent it: how a policy that read its own
// Security header (saml) keeps credentials from the service.
func RemoveHeaderBlock(body []byte, i int) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.CharsetReader = UTF8Only
	depth, child := 0, -1
	inHeader := false
	start := int64(-1)
	for {
		off := dec.InputOffset()
		tok, err := dec.RawToken()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2:
				inHeader = t.Name.Local == "Header"
			case depth == 3 && inHeader:
				child++
				if child == i {
					start = off
				}
			}
		case xml.EndElement:
			if depth == 3 && inHeader && child == i {
				end := dec.InputOffset()
				out := make([]byte, 0, len(body)-int(end-start))
				out = append(out, body[:start]...)
				return append(out, body[end:]...), nil
			}
			depth--
		}
	}
}

// FaultStatus returns the HTTP status and the WSS 1.1 fault string of
// code; 0 and "" for a code that is not one of WSS 1.1 section 12.
func FaultStatus(code string) (status int, detail string) {
	f := faults[code]
	return f.status, f.detail
}
