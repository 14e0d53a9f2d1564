package nixbundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nucleus-run/nucleus/cachedir"
)

// SandboxSub is the cache dir's directory of `nucleus sandbox --flake`
// bundles: one per flake reference, named by its hash, each guarded by a
// lock file beside it (SandboxLock) that a running sandbox holds shared.
const SandboxSub = "sandbox"

// SandboxLock is the lock file guarding the sandbox bundle dir.
func SandboxLock(dir string) string { return dir + ".lock" }

// SandboxBundle bundles ref into its dir in sandbox/ of the cache dir, so
// repeated sandboxes of an unchanged flake skip Nix entirely, and marks it
// in use until release (a `nucleus cache prune` leaves it alone). The dirs
// must be ours alone (a bundle found there is run as is) and searchable by
// others: the sandbox's unprivileged root must reach the rootfs.
func SandboxBundle(ctx context.Context, ref string, nixStderr io.Writer) (dir string, release func(), err error) {
	bundles, err := cachedir.Sub(SandboxSub)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256([]byte(ref))
	dir = filepath.Join(bundles, hex.EncodeToString(sum[:8]))
	for _, d := range []string{filepath.Dir(bundles), bundles} {
		_ = os.Chmod(d, 0o711)
	}
	// Held from before the bundle is (re)written until the sandbox ends.
	release, err = cachedir.Use(SandboxLock(dir))
	if err != nil {
		return "", nil, err
	}
	if _, err := Bundle(ctx, Options{Ref: ref, Dir: dir, NixStderr: nixStderr}); err != nil {
		release()
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		release()
		return "", nil, fmt.Errorf("%s: %w", dir, err)
	}
	return dir, release, nil
}
