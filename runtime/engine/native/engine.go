// Package native is the native engine: containers run by runc's
// libcontainer in this process, with nucleus's isolation modes on top (the
// staged rootfs, the pre-exec step, the mount audit).
package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	_ "github.com/opencontainers/cgroups/devices" // lets the cgroup manager program device rules
	"github.com/opencontainers/runc/libcontainer"
	"github.com/sirupsen/logrus"

	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
)

// Engine runs containers with libcontainer; its fields are runc's global
// flags.
type Engine struct {
	// Root is the state directory (absolute).
	Root string
	// SystemdCgroup asks for cgroups through systemd instead of cgroupfs.
	SystemdCgroup bool
	// Rootless is "auto", "true" or "false", as runc's --rootless.
	Rootless string
}

var _ engine.Engine = (*Engine)(nil)

// Kind is engine.Native.
func (r *Engine) Kind() engine.Kind { return engine.Native }

// Holds reports whether id has libcontainer state under the root: one stat
// of a file libcontainer reads right after, so it is in the dentry cache.
func (r *Engine) Holds(id string) bool {
	if spec.ValidateID(id) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(r.stateDir(id), "state.json"))
	return err == nil
}

func (r *Engine) rootlessCgroups() bool {
	switch r.Rootless {
	case "true":
		return true
	case "false":
		return false
	}
	return os.Geteuid() != 0
}

// load returns the libcontainer handle of an existing container. A state
// file that cannot be read is an error naming the file: libcontainer's own
// says neither which container nor which file, and it dereferences what a
// `null` or `{}` state.json leaves nil.
func (r *Engine) load(id string) (c *libcontainer.Container, err error) {
	if err := spec.ValidateID(id); err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			logrus.Debugf("load %s: %v", id, p)
			c, err = nil, fmt.Errorf("container %s: state %s: %w: incomplete (null or missing fields)", id, r.stateFile(id), engine.ErrBrokenState)
		}
	}()
	c, err = libcontainer.Load(r.Root, id)
	if err != nil {
		if errors.Is(err, libcontainer.ErrNotExist) {
			return nil, fmt.Errorf("container %s: %w", id, engine.ErrNotExist)
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		why := ""
		switch {
		case errors.Is(err, io.EOF):
			why = "empty"
		case errors.Is(err, io.ErrUnexpectedEOF):
			why = "truncated"
		case errors.As(err, &se) || errors.As(err, &te):
			why = "not valid JSON: " + err.Error()
		}
		if why != "" {
			return nil, fmt.Errorf("container %s: state %s: %w: %s", id, r.stateFile(id), engine.ErrBrokenState, why)
		}
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	return c, nil
}

func (r *Engine) stateFile(id string) string { return filepath.Join(r.stateDir(id), "state.json") }

func (r *Engine) stateDir(id string) string { return engine.StateDir(r.Root, id) }

func (r *Engine) lockContainer(id string) (func(), error) { return engine.Lock(r.Root, id) }
