// Package lifecycle keeps a SAML 2.0 assertion's promises wherever one is
// accepted: the `saml` policy, the STS's Validate binding (what
// `validate_with_sts` asks) and the authorization server's RFC 8693 token
// exchange all call this one component, so that an assertion refused at
// one door is refused at every door.
//
// The promises are:
//
//   - validity: Conditions NotBefore and NotOnOrAfter, with a clock skew;
//   - audience: every AudienceRestriction names the door (SAML core
//     §2.5.1.4), and there is at least one;
//   - cancellation: an assertion cancelled at the STS (WS-Trust Cancel) is
//     refused, read from the shared state store at every use, so every
//     instance sees it at once;
//   - subject confirmation: the confirmation used is within its own
//     NotBefore/NotOnOrAfter, its Recipient (when given) is the door's
//     URL, its Address (when given) is the client's address, and it has no
//     InResponseTo (every use here is unsolicited: no door sent a request
//     the assertion could answer);
//   - one-time use: an assertion with the OneTimeUse condition is spent
//     once, under one store key for all doors and all instances sharing
//     the store (SetNX is atomic in every backend).
//
// Issuer trust and the signature are checked before, by internal/saml2's
// Verify with the door's trusted certificates.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/saml2"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Store keys. CancelPrefix+ID marks a cancelled assertion (written by the
// STS); SpentPrefix marks a spent one-time assertion. CancelChannel carries
// "ID UNIXEXP" of every cancellation to every instance, for those that act
// on it (the authorization server revokes what it exchanged the assertion
// for).
const (
	CancelPrefix  = "sts:cancelled:"
	SpentPrefix   = "saml:spent:"
	CancelChannel = "sts:cancellations"
)

// Causes, for errors.Is. A store failure is none of them: it wraps
// ErrUnavailable, and a door must fail closed with an outage, not call
// the assertion invalid.
var (
	ErrExpired      = errors.New("lifecycle: the assertion is not valid now")
	ErrAudience     = errors.New("lifecycle: the assertion is not for this audience")
	ErrCancelled    = errors.New("lifecycle: the assertion was cancelled at the STS")
	ErrSpent        = errors.New("lifecycle: the one-time assertion was used before")
	ErrConfirmation = errors.New("lifecycle: no subject confirmation holds")
	ErrUnavailable  = errors.New("lifecycle: the state store is unavailable")
)

// Lifecycle checks assertions against the shared state. It is safe for
// concurrent use.
type Lifecycle struct {
	st store.Store
}

// New returns the component over st, the store the STS writes its
// cancellations to (the instances' shared store).
func New(st store.Store) *Lifecycle { return &Lifecycle{st: st} }

// Rules are a door's expectations.
type Rules struct {
	// Audiences are the door's names: each AudienceRestriction must name
	// one of them. Empty: the audience is not checked (the STS's own
	// Validate, which checks it against its relying parties).
	Audiences []string
	// Skew is the clock skew allowed on every time.
	Skew time.Duration
}

// Check checks the verified assertion a at now: its validity window, its
// audience and that it was not cancelled. It does not spend it.
func (l *Lifecycle) Check(ctx context.Context, a *saml2.Assertion, now time.Time, r Rules) error {
	if err := a.Check(now, r.Skew); err != nil {
		return fmt.Errorf("%w: %v", ErrExpired, err)
	}
	if len(r.Audiences) > 0 && !AudienceOK(a, r.Audiences) {
		return fmt.Errorf("%w: assertion %s is for %v, not %v", ErrAudience, a.ID, a.Audiences, r.Audiences)
	}
	gone, err := l.Cancelled(ctx, a.ID)
	if err != nil {
		return err
	}
	if gone {
		return fmt.Errorf("%w: assertion %s", ErrCancelled, a.ID)
	}
	return nil
}

// AudienceOK reports whether every AudienceRestriction of a names one of
// auds, and there is at least one restriction.
func AudienceOK(a *saml2.Assertion, auds []string) bool {
	if len(a.Audiences) == 0 {
		return false
	}
	for _, r := range a.Audiences {
		if !slices.ContainsFunc(r, func(v string) bool { return slices.Contains(auds, v) }) {
			return false
		}
	}
	return true
}

// Cancelled reports whether the assertion id was cancelled at the STS.
func (l *Lifecycle) Cancelled(ctx context.Context, id string) (bool, error) {
	_, err := l.st.Get(ctx, CancelPrefix+id)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("%w: reading cancellations: %v", ErrUnavailable, err)
}

// Cancel records the cancellation of assertion id for ttl (at least a
// second): until then Check refuses it everywhere.
func (l *Lifecycle) Cancel(ctx context.Context, id string, ttl time.Duration) error {
	if err := l.st.Set(ctx, CancelPrefix+id, []byte("1"), max(ttl, time.Second)); err != nil {
		return fmt.Errorf("%w: recording a cancellation: %v", ErrUnavailable, err)
	}
	return nil
}

// spentKey is the one key of an assertion's use: the issuer's length keeps
// issuer and ID apart whatever characters either holds.
func spentKey(a *saml2.Assertion) string {
	return SpentPrefix + strconv.Itoa(len(a.Issuer)) + ":" + a.Issuer + ":" + a.ID
}

// Use spends a at now when it has the OneTimeUse condition, or always
// when force is set (a door whose every use is single, as token exchange
// is): the first call anywhere succeeds, every later one returns ErrSpent.
// The mark lasts until the assertion's expiry plus skew, beyond which
// Check refuses it anyway.
func (l *Lifecycle) Use(ctx context.Context, a *saml2.Assertion, now time.Time, skew time.Duration, force bool) error {
	if !a.OneTimeUse && !force {
		return nil
	}
	ttl := max(a.NotOnOrAfter.Add(skew).Sub(now), time.Second)
	fresh, err := l.st.SetNX(ctx, spentKey(a), []byte("1"), ttl)
	if err != nil {
		return fmt.Errorf("%w: one-time use: %v", ErrUnavailable, err)
	}
	if !fresh {
		return fmt.Errorf("%w: assertion %s", ErrSpent, a.ID)
	}
	return nil
}

// Spent reports whether a one-time assertion was used already, without
// spending it: what a status query (the STS's Validate) answers.
func (l *Lifecycle) Spent(ctx context.Context, a *saml2.Assertion) (bool, error) {
	if !a.OneTimeUse {
		return false, nil
	}
	_, err := l.st.Get(ctx, spentKey(a))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("%w: one-time use: %v", ErrUnavailable, err)
}

// Endpoint is where an assertion is presented.
type Endpoint struct {
	// URLs are the door's own URLs: a confirmation's Recipient must be one
	// of them. Empty: a confirmation naming a Recipient is refused.
	URLs []string
	// ClientIP is the client's address: a confirmation's Address must be
	// it. Invalid: a confirmation naming an Address is refused.
	ClientIP netip.Addr
}

// Confirmation returns the first of a's confirmations with the method that
// holds at now at ep (see Confirm), or an error wrapping ErrConfirmation
// with the reason the last one failed.
func Confirmation(a *saml2.Assertion, method string, now time.Time, skew time.Duration, ep Endpoint) (*saml2.Confirmation, error) {
	err := fmt.Errorf("%w: no %s confirmation", ErrConfirmation, method)
	for i := range a.Confirmations {
		c := &a.Confirmations[i]
		if c.Method != method {
			continue
		}
		if err = Confirm(c, now, skew, ep); err == nil {
			return c, nil
		}
	}
	return nil, err
}

// Confirm checks one SubjectConfirmation's data (SAML core §2.4.1.2,
// profiles §4.1.4.3): within its NotBefore and NotOnOrAfter, addressed to
// one of the endpoint's URLs when it names a Recipient, from the client's
// address when it names an Address, and no InResponseTo since no door
// sent a request it could answer.
func Confirm(c *saml2.Confirmation, now time.Time, skew time.Duration, ep Endpoint) error {
	if !c.NotBefore.IsZero() && now.Add(skew).Before(c.NotBefore) {
		return fmt.Errorf("%w: the %s confirmation is not valid before %s", ErrConfirmation, c.Method, c.NotBefore)
	}
	if !c.NotOnOrAfter.IsZero() && !now.Add(-skew).Before(c.NotOnOrAfter) {
		return fmt.Errorf("%w: the %s confirmation expired at %s", ErrConfirmation, c.Method, c.NotOnOrAfter)
	}
	if c.Recipient != "" && !slices.Contains(ep.URLs, c.Recipient) {
		return fmt.Errorf("%w: the confirmation's Recipient %q is not this endpoint %v", ErrConfirmation, c.Recipient, ep.URLs)
	}
	if c.Address != "" {
		want, err := netip.ParseAddr(c.Address)
		if err != nil || !ep.ClientIP.IsValid() || want.Unmap().WithZone("") != ep.ClientIP.Unmap().WithZone("") {
			return fmt.Errorf("%w: the confirmation's Address %q is not the client's %s", ErrConfirmation, c.Address, ep.ClientIP)
		}
	}
	if c.InResponseTo != "" {
		return fmt.Errorf("%w: the confirmation answers request %q, but this use is unsolicited", ErrConfirmation, c.InResponseTo)
	}
	return nil
}
