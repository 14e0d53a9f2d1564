package integration

import (
	"strings"
	"testing"
)

func TestRunExitCodeAndOutput(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "echo hello from $(hostname); exit 7")
	res := r.Run(nil, "run", "--bundle", b.Dir, "smoke1")
	if res.Code != 7 {
		t.Fatalf("exit code %d, want 7; stderr: %s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stdout, "hello from") {
		t.Fatalf("stdout %q", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, "smoke1", b.Dir)
}
