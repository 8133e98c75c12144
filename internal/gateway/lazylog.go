package gateway

import (
	"context"
	"log/slog"
	"sync"
)

// policyLogger returns parent.With("route", route, "policy", typ), with
// the handler derived on first use rather than now.
//
// Each policy of each route gets a logger naming its route and type.
// slog's handlers format those attributes when a logger is derived: with
// 10,000 routes that was 40 ms of a 0.5 s start (issue 23), for loggers
// most policies never write to. Enabled asks the parent, so a record
// below the level derives nothing either.
func policyLogger(parent *slog.Logger, route, typ string) *slog.Logger {
	return slog.New(&lazyHandler{parent: parent.Handler(), route: route, policy: typ})
}

type lazyHandler struct {
	parent        slog.Handler
	route, policy string
	once          sync.Once
	h             slog.Handler
}

func (l *lazyHandler) handler() slog.Handler {
	l.once.Do(func() {
		l.h = l.parent.WithAttrs([]slog.Attr{slog.String("route", l.route), slog.String("policy", l.policy)})
	})
	return l.h
}

func (l *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.parent.Enabled(ctx, level)
}

func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.handler().Handle(ctx, r)
}

func (l *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.handler().WithAttrs(attrs)
}

func (l *lazyHandler) WithGroup(name string) slog.Handler {
	return l.handler().WithGroup(name)
}
