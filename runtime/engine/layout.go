package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/spec"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/nucleus"

// Names under the root that are not containers' state dirs. Each starts
// with '@', which spec.ValidateID refuses in an id, so none can collide
// with a container's (or another container's staging) directory.
const (
	// GvisorRootName is runsc's own --root.
	GvisorRootName = "@gvisor"
	// StagingPrefix names a container's staged rootfs (@rootfs-<id>).
	StagingPrefix = "@rootfs-"
	// WorkspaceCopyPrefix names a sandbox's private copy-in-out workspace
	// (@workspace-<id>).
	WorkspaceCopyPrefix = "@workspace-"
	// SandboxPrefix names a long-lived sandbox's record (@sandbox-<id>).
	SandboxPrefix = "@sandbox-"
	// OneShotPrefix names the owner of a foreground sandbox (@oneshot-<id>):
	// the nucleus process running it.
	OneShotPrefix = "@oneshot-"
)

// IsRuntimeDir tells nucleus's own directories under the root from
// containers' state dirs.
func IsRuntimeDir(name string) bool { return strings.HasPrefix(name, "@") }

// StateDir is the container's state directory under root.
func StateDir(root, id string) string { return filepath.Join(root, id) }

// Lock takes an exclusive flock on the container's state directory so that
// two callers changing one container (two deletes, delete racing pause) run
// one after the other. The second caller then finds the state already gone
// and reports that instead of tripping over half-removed files. The id is
// validated first: a malformed one ("../x", "a/b") must be reported as
// such, never resolved to a path outside the root.
func Lock(root, id string) (unlock func(), err error) {
	if err := spec.ValidateID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(StateDir(root, id))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container %s: %w", id, err)
	}
	return func() { f.Close() }, nil
}

// SearchableRoot creates the state root, mode 0711: a container's
// unprivileged root must be able to reach what is kept below it for it (a
// staged rootfs, a workspace copy), though not to list the root.
func SearchableRoot(root string) error {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return fmt.Errorf("state dir %s: %w", root, err)
	}
	if err := os.Chmod(root, 0o711); err != nil {
		return fmt.Errorf("state dir %s: %w", root, err)
	}
	return nil
}

// WithNetMode is a copy of s whose network namespace matches a --net
// mode: host drops it (the host's network), none or bridge gives a new,
// empty one (a bridged one is attached later). A mode applied by
// policy.Apply already has this shape; a plain bundle may not. pod keeps
// the config's (a Kubernetes pod's network namespace).
func WithNetMode(s *specs.Spec, mode string) *specs.Spec {
	if mode == "pod" {
		return s
	}
	out := *s
	var linux specs.Linux
	if s.Linux != nil {
		linux = *s.Linux
	}
	linux.Namespaces = slices.DeleteFunc(slices.Clone(linux.Namespaces), func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
	if mode != "host" {
		linux.Namespaces = append(linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	out.Linux = &linux
	return &out
}
