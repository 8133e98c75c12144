package peertest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLock shows that Lock holds an flock others see, on a directory and
// on a file it creates, until unlock.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{dir, filepath.Join(dir, "new.lock")} {
		unlock, err := Lock(path)
		if err != nil {
			t.Fatal(err)
		}
		other, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Errorf("%s: another open took the lock while it was held: %v", path, err)
		}
		unlock()
		if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Errorf("%s: the lock is still held after unlock: %v", path, err)
		}
		other.Close()
	}
}
