package native

import (
	"errors"
	"testing"

	"github.com/nucleus-run/nucleus/runtime/engine"
)

func TestParseSubCgroupPaths(t *testing.T) {
	got, err := parseSubCgroupPaths(nil)
	if err != nil || got != nil {
		t.Errorf("parseSubCgroupPaths(nil) = %v, %v", got, err)
	}
	got, err = parseSubCgroupPaths([]string{"sub"})
	if err != nil || len(got) != 1 || got[""] != "sub" {
		t.Errorf("parseSubCgroupPaths([sub]) = %v, %v", got, err)
	}
	got, err = parseSubCgroupPaths([]string{"cpu,memory:a", "pids:b"})
	if err != nil || len(got) != 3 || got["cpu"] != "a" || got["memory"] != "a" || got["pids"] != "b" {
		t.Errorf("parseSubCgroupPaths(cpu,memory:a pids:b) = %v, %v", got, err)
	}
	for _, args := range [][]string{
		{"cpu:a", "cpu:b"},
		{",cpu:a"},
		{"a", "b"},
	} {
		if got, err := parseSubCgroupPaths(args); err == nil {
			t.Errorf("parseSubCgroupPaths(%q) = %v, want an error", args, got)
		} else if oe := (*engine.OptionError)(nil); !errors.As(err, &oe) || oe.Option != "cgroup" {
			t.Errorf("parseSubCgroupPaths(%q) error %q does not name the option", args, err)
		}
	}
}

func TestRootlessCgroups(t *testing.T) {
	if (&Engine{Rootless: "false"}).rootlessCgroups() {
		t.Errorf("--rootless false: rootlessCgroups() = true")
	}
	if !(&Engine{Rootless: "true"}).rootlessCgroups() {
		t.Errorf("--rootless true: rootlessCgroups() = false")
	}
}

// The mount audit reads mountinfo paths, where the kernel escapes a space
// as \040: a workspace at "/my ws" must be found as such.
func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/my\040ws`: "/my ws", "/plain": "/plain", `/tab\011x`: "/tab\tx", `/bad\9`: `/bad\9`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
