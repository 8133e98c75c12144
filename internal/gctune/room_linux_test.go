package gctune

import (
	"io/fs"
	"testing"
)

func TestMemoryRoom(t *testing.T) {
	const meminfo = "MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:    2000000 kB\n"
	tests := []struct {
		name   string
		files  map[string]string
		want   int64
		wantOK bool
	}{
		{"nothing readable", nil, 0, false},
		{"MemAvailable only", map[string]string{"/proc/meminfo": meminfo}, 2000000 * 1024, true},
		{"cgroup v2 limit below MemAvailable", map[string]string{
			"/proc/meminfo":     meminfo,
			"/proc/self/cgroup": "0::/system.slice/gatehouse.service\n",
			"/sys/fs/cgroup/system.slice/gatehouse.service/memory.max":     "268435456\n",
			"/sys/fs/cgroup/system.slice/gatehouse.service/memory.current": "68435456\n",
		}, 200000000, true},
		{"cgroup v2 without a limit", map[string]string{
			"/proc/meminfo":                   meminfo,
			"/proc/self/cgroup":               "0::/a\n",
			"/sys/fs/cgroup/a/memory.max":     "max\n",
			"/sys/fs/cgroup/a/memory.current": "1000\n",
		}, 2000000 * 1024, true},
		{"cgroup v1 memory controller", map[string]string{
			"/proc/self/cgroup": "5:devices:/\n4:memory:/docker/abc\n0::/\n",
			"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "104857600\n",
			"/sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": "4857600\n",
		}, 100000000, true},
		{"cgroup v1 unlimited", map[string]string{
			"/proc/self/cgroup":                             "4:cpuacct,memory:/x\n",
			"/sys/fs/cgroup/memory/x/memory.limit_in_bytes": "9223372036854771712\n",
			"/sys/fs/cgroup/memory/x/memory.usage_in_bytes": "1\n",
		}, 0, false},
		{"usage over the limit: no room", map[string]string{
			"/proc/meminfo":                   meminfo,
			"/proc/self/cgroup":               "0::/b\n",
			"/sys/fs/cgroup/b/memory.max":     "1000\n",
			"/sys/fs/cgroup/b/memory.current": "2000\n",
		}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			read := func(name string) ([]byte, error) {
				if s, ok := tc.files[name]; ok {
					return []byte(s), nil
				}
				return nil, fs.ErrNotExist
			}
			got, ok := memoryRoom(read)
			if ok != tc.wantOK || ok && got != tc.want {
				t.Errorf("memoryRoom = %d, %v; want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
	if room, ok := memoryRoom(readFile); ok {
		t.Logf("this machine: %d MiB of room", room>>20)
	}
}
