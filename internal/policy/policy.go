// Package policy defines the unit every security feature of Gatehouse plugs
// into: a Policy checks or transforms one request, a ResponseFilter sees
// the response on its way out (response.go), and a Denial says why a
// request or a response was refused.
//
// Policies are built once per config load by a Unit's factory and are safe
// for concurrent use. They never write a response themselves: a refusal is a
// *Denial returned from Apply, and one renderer turns it into the shape the
// route speaks (problem+json for REST, a SOAP Fault for SOAP).
package policy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// A Policy checks or transforms one request.
type Policy interface {
	// Apply returns nil to continue, a *Denial to refuse the request, or
	// another error for an internal failure, on which the request fails
	// closed with 500 and the error is logged, never shown.
	Apply(ctx context.Context, ex *Exchange) error
}

// A Finisher is a policy with a last step that runs once every policy of
// the chain has allowed the request, just before it is forwarded: the
// gateway calls FinishRequest of each Finisher of the chain, in chain
// order. It may change the request (the wssecurity policy encrypts the
// body again for the upstream, after the policies after it read the
// plaintext). Its error refuses or fails the request as Apply's does.
type Finisher interface {
	FinishRequest(ctx context.Context, ex *Exchange) error
}

// A Closer is a policy holding resources (connections, goroutines) that must
// be released when the config that built it is retired.
type Closer interface {
	Close() error
}

// Denial is a refusal of a request. Status, Code and Detail are shown to the
// client; Err is the internal cause, logged and never sent.
type Denial struct {
	// Status is the HTTP status; 0 means 403.
	Status int
	// Code is a stable, machine-readable reason such as "ip_denied",
	// "invalid_token" or "wsse:FailedAuthentication". A code with the
	// "wsse:" prefix is rendered as that QName in SOAP faults.
	Code string
	// Detail is a short human-readable explanation safe to show the client.
	// Empty means the status text.
	Detail string
	// Header holds extra response headers (WWW-Authenticate, Retry-After).
	Header http.Header
	// Err is the internal cause, for logs only.
	Err error
}

// Deny returns a Denial with the given status, code and public detail.
func Deny(status int, code, detail string) *Denial {
	return &Denial{Status: status, Code: code, Detail: detail}
}

// WithErr returns d with its internal cause set to err.
func (d *Denial) WithErr(err error) *Denial {
	d.Err = err
	return d
}

// StatusCode returns Status, or 403 when it is zero.
func (d *Denial) StatusCode() int {
	if d.Status == 0 {
		return http.StatusForbidden
	}
	return d.Status
}

func (d *Denial) Error() string {
	msg := fmt.Sprintf("denied %d %s", d.StatusCode(), d.Code)
	if d.Err != nil {
		msg += ": " + d.Err.Error()
	}
	return msg
}

func (d *Denial) Unwrap() error { return d.Err }

// AsDenial reports whether err is or wraps a *Denial and returns it.
func AsDenial(err error) (*Denial, bool) {
	var d *Denial
	ok := errors.As(err, &d)
	return d, ok
}

// Timing is how long one policy took and what it decided, recorded by the
// chain for metrics, logs and decision explanations.
type Timing struct {
	Policy   string
	Duration time.Duration
	// Verdict is "allow", "deny" or "error".
	Verdict string
}
