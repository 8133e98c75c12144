package gateway

import (
	"errors"
	"testing"
)

// blockingBody blocks every Read until release is closed.
type blockingBody struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingBody) Read(p []byte) (int, error) {
	b.entered <- struct{}{}
	<-b.release
	return copy(p, "x"), nil
}

func (b *blockingBody) Close() error { return nil }

// TestTrackedBodyRelease: a read under way when the request ends keeps the
// exchange out of the pool (release reports it), and every read after the
// release fails without reaching the body below.
func TestTrackedBodyRelease(t *testing.T) {
	inner := &blockingBody{entered: make(chan struct{}), release: make(chan struct{})}
	b := newTrackedBody(inner)
	done := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 8))
		done <- err
	}()
	<-inner.entered
	if b.release() {
		t.Error("release reported no read under way while one was")
	}
	close(inner.release)
	if err := <-done; err != nil {
		t.Errorf("the read under way failed: %v", err)
	}
	if _, err := b.Read(make([]byte, 8)); !errors.Is(err, errBodyReleased) {
		t.Errorf("read after release: %v, want errBodyReleased", err)
	}
	if !b.release() {
		t.Error("release reported a read under way after all ended")
	}
	// Nothing below was touched by the late read: the inner body would
	// have blocked on entered.
	if err := b.Close(); err != nil {
		t.Error(err)
	}
	var nilBody *trackedBody
	if !nilBody.release() || nilBody.readErr() != nil {
		t.Error("a nil body must release quietly")
	}
}
