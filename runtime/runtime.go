// Package runtime drives container lifecycles on top of libcontainer. It is
// the only package that touches namespaces, cgroups and the state directory;
// the CLI in cmd/nucleus only parses flags and calls it.
package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/nucleus-run/nucleus/spec"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/nucleus"

// ErrNotExist is returned for an id that has no state under the root.
var ErrNotExist = errors.New("container does not exist")

// Runtime holds the settings shared by every command: the global flags.
type Runtime struct {
	// Root is the state directory (absolute).
	Root string
	// SystemdCgroup asks for cgroups through systemd instead of cgroupfs.
	SystemdCgroup bool
	// Rootless is "auto", "true" or "false", as runc's --rootless.
	Rootless string
}

// New checks the global settings and returns a Runtime.
func New(root string, systemdCgroup bool, rootless string) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("--root %s: %w", root, err)
	}
	if abs == "/" {
		return nil, errors.New("--root must not be /")
	}
	switch rootless {
	case "", "auto", "true", "false":
	default:
		return nil, fmt.Errorf("--rootless %q: want true, false or auto", rootless)
	}
	if systemdCgroup && !systemdRunning() {
		return nil, errors.New("--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); drop the flag to use cgroupfs")
	}
	return &Runtime{Root: abs, SystemdCgroup: systemdCgroup, Rootless: rootless}, nil
}

func systemdRunning() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func (r *Runtime) rootlessCgroups() bool {
	switch r.Rootless {
	case "true":
		return true
	case "false":
		return false
	}
	return os.Geteuid() != 0
}

// load returns the libcontainer handle of an existing container.
func (r *Runtime) load(id string) (*libcontainer.Container, error) {
	if err := spec.ValidateID(id); err != nil {
		return nil, err
	}
	c, err := libcontainer.Load(r.Root, id)
	if err != nil {
		if errors.Is(err, libcontainer.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	return c, nil
}

func (r *Runtime) stateDir(id string) string {
	return filepath.Join(r.Root, id)
}
