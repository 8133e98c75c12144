package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
)

// TestPolicyLoggerWritesAsWith checks that the lazily derived logger
// writes exactly what parent.With would, through every way a policy may
// use it, and that a record below the level derives nothing.
func TestPolicyLoggerWritesAsWith(t *testing.T) {
	uses := []struct {
		name string
		use  func(*slog.Logger)
	}{
		{"info", func(l *slog.Logger) { l.Info("hello", "n", 1) }},
		{"debug below level", func(l *slog.Logger) { l.Debug("quiet") }},
		{"with", func(l *slog.Logger) { l.With("k", "v").Warn("w") }},
		{"group", func(l *slog.Logger) { l.WithGroup("g").Error("e", "x", true) }},
		{"twice", func(l *slog.Logger) { l.Info("a"); l.Info("b") }},
	}
	for _, u := range uses {
		t.Run(u.name, func(t *testing.T) {
			var want, got bytes.Buffer
			opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}
			u.use(slog.New(slog.NewJSONHandler(&want, opts)).With("route", "r-1", "policy", "headers"))
			u.use(policyLogger(slog.New(slog.NewJSONHandler(&got, opts)), "r-1", "headers"))
			if got.String() != want.String() {
				t.Errorf("lazy logger wrote\n%s\nwant\n%s", got.String(), want.String())
			}
		})
	}
	l := policyLogger(slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)), "r", "p")
	l.Debug("below the level")
	if l.Enabled(context.Background(), slog.LevelDebug) || l.Handler().(*lazyHandler).h != nil {
		t.Error("a record below the level derived the handler")
	}
}
