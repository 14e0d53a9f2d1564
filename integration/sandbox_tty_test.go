package integration

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDetachedKeepsOperatorTerminal: a detached process in an isolation
// mode (exec -d into a sandbox, run -d --mode agent) never gets the
// operator's terminal as its stdio: with it, untrusted code could read
// what the operator types after nucleus returned (a password) or write
// escape sequences to the terminal.
func TestDetachedKeepsOperatorTerminal(t *testing.T) {
	script := requireCmd(t, "script")
	r := newRunner(t)
	b := newBundle(t)
	probe := `for fd in 0 1 2; do if [ -t $fd ]; then echo "terminal on $fd" >> /tmp/r; fi; done; echo checked >> /tmp/r`
	id := "sl-noterm"
	r.OK("sandbox", "--detach", "--id", id, "--bundle", b.Dir)
	defer r.Run(nil, "delete", id)
	inner := fmt.Sprintf("%s --root %s exec -d %s sh -c '%s'", r.Bin, r.Root, id, probe)
	if out, err := exec.Command(script, "-qec", inner, "/dev/null").CombinedOutput(); err != nil {
		t.Fatalf("exec -d under a terminal: %v: %s", err, out)
	}
	waitForUpTo(t, 10*time.Second, "the detached probe", func() bool {
		return strings.Contains(r.Run(nil, "exec", id, "cat", "/tmp/r").Stdout, "checked")
	})
	if out := r.OK("exec", id, "cat", "/tmp/r").Stdout; strings.Contains(out, "terminal") {
		t.Errorf("exec -d handed the operator's terminal to the sandbox:\n%s", out)
	}

	// run -d in agent mode: the container's own process.
	b2 := newBundle(t, "sh", "-c", probe+"; cat /tmp/r; sleep 5")
	inner = fmt.Sprintf("%s --root %s run -d --mode agent --bundle %s sl-noterm-run", r.Bin, r.Root, b2.Dir)
	if out, err := exec.Command(script, "-qec", inner, "/dev/null").CombinedOutput(); err != nil {
		t.Fatalf("run -d under a terminal: %v: %s", err, out)
	}
	defer r.Run(nil, "delete", "--force", "sl-noterm-run")
	waitForUpTo(t, 10*time.Second, "the detached container's probe", func() bool {
		return strings.Contains(r.Run(nil, "exec", "sl-noterm-run", "cat", "/tmp/r").Stdout, "checked")
	})
	if out := r.Run(nil, "exec", "sl-noterm-run", "cat", "/tmp/r").Stdout; strings.Contains(out, "terminal") {
		t.Errorf("run -d --mode agent handed the operator's terminal to the container:\n%s", out)
	}
}
