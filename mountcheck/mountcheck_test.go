package mountcheck

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func line(id int, mp, opts string) string {
	return strings.Join([]string{"1", "2", "0:1", "/", mp, opts, "-", "tmpfs", "x", "rw"}, " ")
}

func TestCheck(t *testing.T) {
	s := &specs.Spec{
		Root: &specs.Root{Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/dev", Type: "tmpfs", Options: []string{"nosuid", "noexec"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Options: []string{"nosuid", "ro"}},
			{Destination: "/workspace", Type: "bind", Options: []string{"rbind", "nosuid", "nodev", "noexec", "ro"}},
			{Destination: "/workspace/inner", Type: "bind", Options: []string{"rbind", "rw", "nosuid"}},
			{Destination: "/data", Type: "bind", Options: []string{"bind", "ro"}},
		},
		Linux: &specs.Linux{MaskedPaths: []string{"/proc/keys"}},
	}
	mi := strings.Join([]string{
		line(1, "/", "ro,nosuid"),
		line(2, "/dev", "rw,nosuid,noexec"),
		line(3, "/dev/null", "rw"),
		line(4, "/sys/fs/cgroup", "rw,nosuid"),
		line(5, "/workspace", "ro,nosuid,nodev,noexec"),
		line(6, "/workspace/sub", "rw,relatime"),
		line(7, "/workspace/inner", "rw,nosuid"),
		line(8, "/workspace/inner/deeper", "rw"),
		line(9, "/with\\040space", "rw"),
	}, "\n")
	var got []string
	for _, p := range Check(Parse(mi), s) {
		got = append(got, p.String())
	}
	want := []string{
		"/data: not mounted",
		"/sys/fs/cgroup: missing ro (has rw,nosuid)",
		"/workspace/sub: missing ro,nosuid,nodev,noexec (has rw,relatime) under /workspace",
		"/workspace/inner/deeper: missing nosuid (has rw) under /workspace/inner",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if Parse(mi)[8].Point != "/with space" {
		t.Errorf("unescape: %q", Parse(mi)[8].Point)
	}
}
