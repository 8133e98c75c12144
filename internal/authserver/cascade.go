package authserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/saml2/lifecycle"
	"github.com/gatehouse/gatehouse/internal/store"
)

// exchangedPrefix+assertion ID holds "JTI UNIXEXP" of the access token a
// SAML assertion was exchanged for (at most one: an assertion is exchanged
// once), so that cancelling the assertion at the STS revokes the token too:
// a cancelled assertion must not live on as the JWT it was turned into.
const exchangedPrefix = "authserver:exchanged:"

// rememberExchange records that the assertion id became the token (jti,
// exp), then checks the cancellation registry once more: a cancellation
// that came after the exchange's own check but before this record was
// written is published before the record exists, so the watcher would miss
// it; this second look revokes the token itself instead (the error says
// so, and the exchange is refused).
func (srv *Server) rememberExchange(ctx context.Context, id, jti string, exp time.Time) error {
	ttl := exp.Sub(srv.now())
	if ttl <= 0 {
		return nil
	}
	if err := srv.st.Set(ctx, exchangedPrefix+id, []byte(jti+" "+strconv.FormatInt(exp.Unix(), 10)), ttl); err != nil {
		return fmt.Errorf("authserver: recording the exchanged assertion: %w", err)
	}
	gone, err := lifecycle.New(srv.st).Cancelled(ctx, id)
	if err != nil {
		return err
	}
	if gone {
		if err := srv.RevokeJTI(ctx, jti, exp); err != nil {
			return err
		}
		return fmt.Errorf("%w: assertion %s, while it was exchanged", lifecycle.ErrCancelled, id)
	}
	return nil
}

// revokeExchanged revokes the token the assertion id was exchanged for, if
// there is one.
func (srv *Server) revokeExchanged(ctx context.Context, id string) error {
	raw, err := srv.st.Get(ctx, exchangedPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	jti, exp, ok := strings.Cut(string(raw), " ")
	n, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil {
		return fmt.Errorf("authserver: corrupt record of exchanged assertion %q", id)
	}
	if err := srv.RevokeJTI(ctx, jti, time.Unix(n, 0)); err != nil {
		return err
	}
	srv.log.Info("access token revoked: its SAML assertion was cancelled", "assertion", id, "jti", jti)
	return nil
}

// revokeAllCancelled revokes what every cancelled assertion in the store
// was exchanged for: after a resync signal or a new subscription, when
// cancellation messages may have been lost.
func (srv *Server) revokeAllCancelled(ctx context.Context) error {
	var ids []string
	if err := srv.st.Scan(ctx, lifecycle.CancelPrefix, func(key string, _ []byte) bool {
		ids = append(ids, strings.TrimPrefix(key, lifecycle.CancelPrefix))
		return true
	}); err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, srv.revokeExchanged(ctx, id))
	}
	return errors.Join(errs...)
}

// watchCancellations revokes, on every instance, the token exchanged for
// an assertion the STS cancels (lifecycle.CancelChannel), rescanning the
// cancellations on a resync signal and after resubscribing.
func (srv *Server) watchCancellations(ctx context.Context, ch <-chan []byte) {
	for {
		for msg := range ch {
			var err error
			if msg == nil {
				err = srv.revokeAllCancelled(ctx)
			} else {
				id, _, _ := strings.Cut(string(msg), " ")
				err = srv.revokeExchanged(ctx, id)
			}
			if err != nil && ctx.Err() == nil {
				srv.log.Warn("revoking the token of a cancelled assertion", "err", err)
			}
		}
		for {
			if !sleepCtx(ctx, time.Second) {
				return
			}
			var err error
			if ch, err = srv.st.Subscribe(ctx, lifecycle.CancelChannel); err == nil {
				break
			}
			srv.log.Warn("subscribing to assertion cancellations; retrying", "err", err)
		}
		if err := srv.revokeAllCancelled(ctx); err != nil && ctx.Err() == nil {
			srv.log.Warn("revoking the tokens of cancelled assertions", "err", err)
		}
	}
}
