package gctune

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"strconv"
	"strings"
)

// memoryRoom estimates the bytes this process may still make resident
// without pressing on its limits: the least of the system's MemAvailable
// and, in a cgroup (v2 or v1) with a memory limit, the limit less the
// usage. ok is false when none of these could be read. read reads a file
// (os.ReadFile in production; tests give their own tree).
func memoryRoom(read func(string) ([]byte, error)) (room int64, ok bool) {
	room = -1
	take := func(v int64) {
		if v >= 0 && (room < 0 || v < room) {
			room = v
		}
	}
	if b, err := read("/proc/meminfo"); err == nil {
		if v, found := meminfoField(b, "MemAvailable"); found {
			take(v)
		}
	}
	if b, err := read("/proc/self/cgroup"); err == nil {
		v2, v1 := cgroupPaths(b)
		if v2 != "" {
			dir := path.Join("/sys/fs/cgroup", v2)
			if limit, usage, found := limitAndUsage(read, path.Join(dir, "memory.max"), path.Join(dir, "memory.current")); found {
				take(max(0, limit-usage))
			}
		}
		if v1 != "" {
			dir := path.Join("/sys/fs/cgroup/memory", v1)
			if limit, usage, found := limitAndUsage(read, path.Join(dir, "memory.limit_in_bytes"), path.Join(dir, "memory.usage_in_bytes")); found {
				take(max(0, limit-usage))
			}
		}
	}
	return room, room >= 0
}

// meminfoField returns /proc/meminfo's field name, in bytes.
func meminfoField(b []byte, name string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), ":")
		if !found || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n, true
	}
	return 0, false
}

// cgroupPaths returns the process's cgroup v2 path ("0::/path") and its
// v1 memory controller's ("N:...memory...:/path") from /proc/self/cgroup.
func cgroupPaths(b []byte) (v2, v1 string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			v2 = f[2]
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == "memory" {
				v1 = f[2]
			}
		}
	}
	return v2, v1
}

// limitAndUsage reads a cgroup's memory limit and usage; found is false
// when either is unreadable or the limit is "max" or absurdly large (v1
// writes a page-rounded 2^63 for no limit).
func limitAndUsage(read func(string) ([]byte, error), limitFile, usageFile string) (limit, usage int64, found bool) {
	lb, err := read(limitFile)
	if err != nil {
		return 0, 0, false
	}
	ub, err := read(usageFile)
	if err != nil {
		return 0, 0, false
	}
	limit, err = strconv.ParseInt(strings.TrimSpace(string(lb)), 10, 64)
	if err != nil || limit >= 1<<62 {
		return 0, 0, false
	}
	usage, err = strconv.ParseInt(strings.TrimSpace(string(ub)), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return limit, usage, true
}

// readFile reads the files memoryRoom consults; tests replace it.
var readFile = os.ReadFile
