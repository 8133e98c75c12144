package audit

import (
	"fmt"
	"os"
	"strconv"
)

// rotator is an append-only file that is renamed to PATH.1 (PATH.1 to
// PATH.2 and so on, the oldest beyond maxFiles removed) before a write
// would take it past maxSize. It is not safe for concurrent use: the Log
// serialises writes. A single line larger than maxSize is still written,
// alone in its file.
//
// Written here rather than taken from lumberjack: size-only rotation is
// thirty lines, and lumberjack's time-based cleanup goroutine and
// compression are not needed.
type rotator struct {
	path     string
	maxSize  int64
	maxFiles int
	f        *os.File
	size     int64
}

func openRotator(path string, maxSize int64, maxFiles int) (*rotator, error) {
	r := &rotator{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotator) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, st.Size()
	return nil
}

func (r *rotator) Write(p []byte) (int, error) {
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxSize {
		if err := r.rotate(); err != nil {
			return 0, fmt.Errorf("rotating %s: %w", r.path, err)
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotator) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	r.f = nil
	os.Remove(r.name(r.maxFiles))
	for i := r.maxFiles - 1; i >= 1; i-- {
		if err := os.Rename(r.name(i), r.name(i+1)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Rename(r.path, r.name(1)); err != nil {
		return err
	}
	return r.open()
}

func (r *rotator) name(i int) string { return r.path + "." + strconv.Itoa(i) }

// files returns the current file and the rotated ones, newest first.
func (r *rotator) files() []string {
	out := []string{r.path}
	for i := 1; i <= r.maxFiles; i++ {
		out = append(out, r.name(i))
	}
	return out
}

func (r *rotator) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
