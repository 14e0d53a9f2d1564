package outcome

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// Memory reads what a container's memory cgroup says of its run: how many
// of its processes the OOM killer killed and its peak use. paths are
// libcontainer's cgroup paths (controller -> dir; "" -> the cgroup v2
// dir). It must run before the cgroup is removed; what it cannot read is
// 0.
func Memory(paths map[string]string) (oomKills, peak int64) {
	if dir, ok := paths["memory"]; ok {
		// cgroup v1: oom_kill in memory.oom_control (Linux 4.13+).
		return keyed(filepath.Join(dir, "memory.oom_control"), "oom_kill"), single(filepath.Join(dir, "memory.max_usage_in_bytes"))
	}
	if dir, ok := paths[""]; ok {
		// memory.peak: Linux 5.19+.
		return keyed(filepath.Join(dir, "memory.events"), "oom_kill"), single(filepath.Join(dir, "memory.peak"))
	}
	return 0, 0
}

// keyed reads the value of key in a flat-keyed cgroup file ("key N" lines).
func keyed(path, key string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return ParseKeyed(data, key)
}

// ParseKeyed is the value of key in a flat-keyed cgroup file (0 if none).
func ParseKeyed(data []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(" "))
		if ok && string(k) == key {
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			return n
		}
	}
	return 0
}

func single(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
	return n
}
