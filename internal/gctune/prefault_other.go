//go:build !linux

package gctune

func prefault(int) func() { return func() {} }
