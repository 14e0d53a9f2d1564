package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNetGvisorBridge: under gVisor (runsc --network=host inside the
// namespace nucleus attached), the same allowlist holds at the
// namespace's boundary: the allowed owned host answers, the other is
// refused and reported.
func TestNetGvisorBridge(t *testing.T) {
	requireNet(t)
	r := gvisorRunner(t)
	a, b := newNetHost(t, 108), newNetHost(t, 109)
	bundle := gvisorBundle(t)
	log := filepath.Join(t.TempDir(), "audit.log")
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "nt-gv", "--net", "bridge", "--allow", a.IP+"/32:8080", "--audit-log", log,
		"--", "sh", "-c", fetchScript(a.IP, 8080)+"; "+fetchScript(b.IP, 8080))
	if got := strings.Fields(res.Stdout); len(got) != 2 || got[0] != a.Body || got[1] != "refused" {
		t.Fatalf("want %q then refused, got %q (stderr %s)", a.Body, got, res.Stderr)
	}
	found := false
	for _, d := range auditEvents(t, log, "egress_denied") {
		found = found || d["destination"] == b.IP
	}
	if !found {
		t.Errorf("no egress_denied for %s", b.IP)
	}
	assertNoNetLeftovers(t, r.Root, "nt-gv")
}
