package integration

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestFaultSignals: SIGTERM and SIGINT to a foreground run or sandbox are
// forwarded to the container; one that dies of it makes nucleus exit
// 128+n (a sandbox's command that ignores it is killed a moment later,
// with the same status), one that handles it exits as it chooses; nothing
// is left behind.
func TestFaultSignals(t *testing.T) {
	r := newRunner(t)
	// Without a PID namespace, sleep is no namespace init: the signal's
	// default action kills it.
	plain := newBundle(t, "sh", "-c", "echo ready; exec sleep 1000")
	plain.Spec.Linux.Namespaces = slices.DeleteFunc(plain.Spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
		return n.Type == specs.PIDNamespace
	})
	plain.Save(t)
	trap := newBundle(t, "sh", "-c", `trap "echo got-it; exit 3" TERM INT; echo ready; sleep 1000 & wait`)
	ignore := newBundle(t, "sh", "-c", "echo ready; exec sleep 1000")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		for _, c := range []struct {
			name string
			args func(id string) []string
			b    *Bundle
			code int
			out  string
		}{
			{"run dies", func(id string) []string { return []string{"run", "--bundle", plain.Dir, id} }, plain, 128 + int(sig), ""},
			{"run handles", func(id string) []string { return []string{"run", "--bundle", trap.Dir, id} }, trap, 3, "got-it"},
			{"sandbox ignores", func(id string) []string {
				return []string{"sandbox", "--mode", "agent", "--bundle", ignore.Dir, "--id", id}
			}, ignore, 128 + int(sig), ""},
			{"sandbox handles", func(id string) []string {
				return []string{"sandbox", "--mode", "agent", "--bundle", trap.Dir, "--id", id}
			}, trap, 3, "got-it"},
		} {
			what := fmt.Sprintf("%s, %s", c.name, sig)
			id := ftID(t, r, "sig")
			run := r.coreBackground(nil, c.args(id)...)
			waitFor(t, what+": the container to start", func() bool { return strings.Contains(run.stdout.String(), "ready") })
			if err := run.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			res := run.wait(t)
			if res.Code != c.code || !strings.Contains(res.Stdout, c.out) {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", what, res.Code, res.Stdout, res.Stderr, c.code, c.out)
			}
			assertNothingLeft(t, r, id, c.b.Dir)
		}
	}
}
