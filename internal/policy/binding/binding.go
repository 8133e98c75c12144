// Package binding is the "binding" policy: it enforces sender-constrained
// access tokens, DPoP-bound (RFC 9449) and certificate-bound (RFC 8705).
// It runs after `authenticate` and reads the principal's cnf claim: a
// token bound to a key is honoured only with a valid DPoP proof by that
// key, a token bound to a certificate only over a connection with that
// client certificate, and a route may require one binding or the other.
package binding

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/authn"
	"github.com/gatehouse/gatehouse/internal/authn/bound"
	"github.com/gatehouse/gatehouse/internal/authn/dpop"
	"github.com/gatehouse/gatehouse/internal/authn/mtls"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/policy"
)

// Unit registers the binding policy.
var Unit = policy.Unit{Name: "binding", New: New}

// Causes of refusals, for errors.Is on a Denial's Err. Every refusal of
// the token itself is 401 invalid_token; a bad proof is dpop's 401
// invalid_dpop_proof.
var (
	// ErrBearerUse: a DPoP-bound token was sent without the DPoP scheme
	// (RFC 9449 §7.1: it must not be accepted as a bearer token).
	ErrBearerUse = errors.New("binding: DPoP-bound token used without the DPoP scheme")
	// ErrUnboundDPoP: the DPoP scheme with a token that is not DPoP-bound.
	ErrUnboundDPoP = errors.New("binding: DPoP scheme used with a token not bound to a key")
	// ErrDPoPRequired: dpop is required and the token is not DPoP-bound.
	ErrDPoPRequired = errors.New("binding: route requires a DPoP-bound token")
	// ErrCertMismatch: the token is bound to a certificate the connection
	// did not present (or presented unverified).
	ErrCertMismatch = errors.New("binding: token bound to another client certificate")
	// ErrCertRequired: certificate is required and the token is not
	// certificate-bound.
	ErrCertRequired = errors.New("binding: route requires a certificate-bound token")
	// ErrForbidden: the token is bound in a way the route forbids.
	ErrForbidden = errors.New("binding: token binding not accepted on this route")
	// ErrCnf: the cnf claim is not an object of strings.
	ErrCnf = errors.New("binding: malformed cnf claim")
)

// Binding enforces token binding. It is safe for concurrent use.
type Binding struct {
	dpopMode, certMode string
	realm              string
	verifier           *dpop.Verifier // nil when dpopMode is forbidden
}

var _ policy.Policy = (*Binding)(nil)

// New builds the policy from cfg (see Config): decode, validate,
// provision. It uses env.Clock() for proofs and their replay cache, and
// env.TrustedProxies for proof.trust_forwarded.
func New(cfg *config.Node, env *policy.Env) (policy.Policy, error) {
	c, err := decode(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.validate(cfg, len(env.TrustedProxies) > 0); err != nil {
		return nil, err
	}
	return c.provision(env), nil
}

// Apply refuses the request unless its principal's token binding holds:
//
//   - cnf.jkt present: the request must use the DPoP scheme with a valid
//     proof signed by that key over this request and token.
//   - the DPoP scheme with a token without cnf.jkt: refused.
//   - cnf["x5t#S256"] present: the connection's verified client
//     certificate must have that thumbprint.
//   - a mode "required": an unbound token is refused; a mode "forbidden":
//     a token bound that way is refused.
//
// A request without a principal passes: authentication is another
// policy's job. A principal proven by the mtls authenticator counts as
// certificate-bound.
func (b *Binding) Apply(ctx context.Context, ex *policy.Exchange) error {
	pr := ex.Principal
	if pr == nil {
		return nil
	}
	r := ex.Request
	tok, err := authn.AuthorizationToken(r, b.realm)
	if err != nil && !errors.Is(err, authn.ErrNoCredentials) {
		return err
	}
	jkt, x5t, err := cnf(pr)
	if err != nil {
		return authn.InvalidToken(b.realm, tok.Scheme, "malformed token binding", err)
	}
	if err := b.checkDPoP(ctx, r, tok, jkt); err != nil {
		return err
	}
	return b.checkCertificate(r, tok, x5t, pr.Method == mtls.Method)
}

func (b *Binding) checkDPoP(ctx context.Context, r *http.Request, tok authn.Token, jkt string) error {
	dpopScheme := tok.Scheme == "DPoP"
	switch {
	case b.dpopMode == Forbidden && (jkt != "" || dpopScheme):
		return authn.InvalidToken(b.realm, "Bearer", "DPoP is not accepted on this route", ErrForbidden)
	case jkt != "" && !dpopScheme:
		return b.invalidToken("the token is DPoP-bound: send it with the DPoP scheme and a proof", ErrBearerUse)
	case jkt != "":
		_, err := b.verifier.Verify(ctx, r, tok.Value, jkt)
		return err
	case dpopScheme:
		return b.invalidToken("the DPoP scheme needs a DPoP-bound token", ErrUnboundDPoP)
	case b.dpopMode == Required:
		return b.invalidToken("this route requires a DPoP-bound token", ErrDPoPRequired)
	}
	return nil
}

func (b *Binding) checkCertificate(r *http.Request, tok authn.Token, x5t string, byCert bool) error {
	switch {
	case x5t != "" && b.certMode == Forbidden:
		return authn.InvalidToken(b.realm, tok.Scheme, "certificate-bound tokens are not accepted on this route", ErrForbidden)
	case x5t != "":
		got, ok := mtls.Thumbprint(r)
		// Thumbprints are public; equality needs no constant time.
		if !ok || got != x5t {
			return authn.InvalidToken(b.realm, tok.Scheme, "the token is bound to a client certificate this connection did not present", ErrCertMismatch)
		}
	case b.certMode == Required && !byCert:
		return authn.InvalidToken(b.realm, tok.Scheme, "this route requires a certificate-bound token", ErrCertRequired)
	}
	return nil
}

// invalidToken refuses the token with a DPoP challenge listing the proof
// algorithms (RFC 9449 §7.1).
func (b *Binding) invalidToken(desc string, cause error) *policy.Denial {
	return &policy.Denial{
		Status: http.StatusUnauthorized,
		Code:   "invalid_token",
		Detail: desc,
		Header: http.Header{"Www-Authenticate": {b.verifier.Challenge("error", "invalid_token", "error_description", desc)}},
		Err:    cause,
	}
}

// cnf returns the principal's confirmation members (RFC 7800): the JWK
// thumbprint (RFC 9449 §6) and the certificate thumbprint (RFC 8705 §3.1),
// read as every authenticator reads them (internal/authn/bound).
func cnf(pr *policy.Principal) (jkt, x5t string, err error) {
	jkt, x5t, err = bound.Cnf(pr.Claims["cnf"])
	if err != nil {
		return "", "", ErrCnf
	}
	return jkt, x5t, nil
}
