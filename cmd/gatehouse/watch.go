package main

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchFile calls onChange after file changes, once per burst of events
// (editors write, rename and chmod in quick succession). It watches the
// directory, not the file, so that replacing the file by rename (editors,
// Kubernetes ConfigMap symlink swaps) is seen too.
func watchFile(file string, debounce time.Duration, onChange func(), log *slog.Logger) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) != abs && !isSymlinkSwap(ev.Name) {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(debounce)
				} else {
					timer.Reset(debounce)
				}
				fire = timer.C
			case <-fire:
				fire = nil
				onChange()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				log.Warn("config watch", "err", err)
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); w.Close() }, nil
}

// isSymlinkSwap reports Kubernetes' ConfigMap update, which replaces the
// "..data" symlink in the file's directory.
func isSymlinkSwap(name string) bool { return filepath.Base(name) == "..data" }
