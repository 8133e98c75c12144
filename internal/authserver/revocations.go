package authserver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// loadRevocations adds the revocations kept in the store to the list.
func (srv *Server) loadRevocations(ctx context.Context) error {
	err := srv.st.Scan(ctx, revokedPrefix, func(key string, value []byte) bool {
		if exp, err := strconv.ParseInt(string(value), 10, 64); err == nil {
			srv.revs.Revoke(strings.TrimPrefix(key, revokedPrefix), time.Unix(exp, 0))
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("authserver: loading revocations: %w", err)
	}
	return nil
}

// watchRevocations feeds the revocations published by every instance to
// the list, scanning the store again on a resync signal (messages may have
// been lost) and resubscribing when the channel closes before ctx ends.
func (srv *Server) watchRevocations(ctx context.Context, ch <-chan []byte) {
	for {
		for msg := range ch {
			if msg == nil {
				if err := srv.loadRevocations(ctx); err != nil && ctx.Err() == nil {
					srv.log.Warn("reloading revocations after a resync signal", "err", err)
				}
				continue
			}
			jti, exp, ok := strings.Cut(string(msg), " ")
			if n, err := strconv.ParseInt(exp, 10, 64); ok && err == nil {
				srv.revs.Revoke(jti, time.Unix(n, 0))
			}
		}
		for {
			if !sleepCtx(ctx, time.Second) {
				return
			}
			var err error
			if ch, err = srv.st.Subscribe(ctx, RevocationChannel); err == nil {
				break
			}
			srv.log.Warn("subscribing to revocations; retrying", "err", err)
		}
		// Subscribed again: what was published in between is in the store.
		if err := srv.loadRevocations(ctx); err != nil && ctx.Err() == nil {
			srv.log.Warn("reloading revocations", "err", err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
