package confine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A filter whose digest is not the container's is refused before anything
// is loaded or run: the sandbox may have planted it.
func TestRefusesFilterWithOtherDigest(t *testing.T) {
	f := filepath.Join(t.TempDir(), "seccomp.bpf")
	allowAll := []byte{6, 0, 0, 0, 0, 0, 0xff, 0x7f} // ret SECCOMP_RET_ALLOW
	if err := os.WriteFile(f, allowAll, 0o444); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"--seccomp", f, "--seccomp-sha256", strings.Repeat("0", 64), "--", "true"})
	if err == nil || !strings.Contains(err.Error(), "refusing to run unconfined") {
		t.Errorf("planted filter: %v", err)
	}
	if err := run([]string{"--seccomp", f, "--", "true"}); err == nil {
		t.Error("a filter without its digest was accepted")
	}
}
