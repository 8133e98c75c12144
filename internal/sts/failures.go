package sts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/clientip"
	"github.com/gatehouse/gatehouse/internal/store"
)

// FailuresPerIP is how many failed authentications one client address
// may make at the STS in a minute; beyond it, every request from that
// address is refused with 429 (a wst:RequestFailed fault with
// Retry-After) until the budget refills. Without it a UsernameToken's
// password could be guessed at full speed, since no route policy runs in
// front of the STS. It is the authorization server's default for client
// secrets (authorization_server.limits.failures_per_ip).
const FailuresPerIP = 20

// failIPPrefix keys the budgets in the store, shared by every instance.
const failIPPrefix = "sts:fail:ip:"

func failLimit() store.Limit { return store.Limit{Rate: FailuresPerIP, Period: time.Minute} }

// clientIP is the request's client address (forwarding headers of
// trusted proxies only).
func (srv *Server) clientIP(r *http.Request) netip.Addr {
	return clientip.Resolve(r.RemoteAddr, r.Header, srv.trusted)
}

// overBudget returns a 429 fault when ip has no failure left, nil
// otherwise. A store failure is a 500 RequestFailed (fail closed).
func (srv *Server) overBudget(ctx context.Context, ip netip.Addr) *fault {
	l := failLimit()
	d, err := srv.st.Allow(ctx, failIPPrefix+ip.String(), []store.Limit{l}, 0)
	if err != nil {
		return newFault(FaultRequestFailed, fmt.Errorf("failure limit: %w", err))
	}
	if d.Allowed && d.Remaining >= 1 {
		return nil
	}
	retry := d.RetryAfter
	if retry <= 0 {
		retry = l.Interval()
	}
	f := newFault(FaultRequestFailed, errors.New("failure limit reached"))
	f.status, f.reason = http.StatusTooManyRequests, "Too many failed authentications; retry later"
	f.retryAfter = retry
	return f
}

// spendFailure records one failed authentication from ip.
func (srv *Server) spendFailure(ctx context.Context, ip netip.Addr) {
	if _, err := srv.st.Allow(ctx, failIPPrefix+ip.String(), []store.Limit{failLimit()}, 1); err != nil {
		srv.log.Warn("sts: recording a failed authentication", "err", err)
	}
}

// retryAfterSeconds is the Retry-After value for d: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
