// Package gvisor is the gVisor engine: the same lifecycle, driven through
// Debian's runsc (see runsc.go for the layout it keeps under the root).
package gvisor

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
)

// Engine drives runsc for containers under Root.
type Engine struct {
	// Root is nucleus's state directory (absolute); runsc's own root is
	// below it.
	Root string
	// SystemdCgroup is passed on to runsc.
	SystemdCgroup bool
}

var _ engine.Engine = (*Engine)(nil)

// recordName marks a state directory <root>/<id>/ as held by gVisor. The
// directory also holds the bundle handed to runsc (config.json and a rootfs
// symlink), so `mkdir <root>/<id>` reserves an id for both engines.
const recordName = "gvisor.json"

// Kind is engine.Gvisor.
func (r *Engine) Kind() engine.Kind { return engine.Gvisor }

// Holds reports whether id's state dir holds a gVisor record, or runsc
// holds id while its record is lost (the caller asks the native engine
// first: a native container never has runsc state).
func (r *Engine) Holds(id string) bool {
	if spec.ValidateID(id) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(engine.StateDir(r.Root, id), recordName))
	return err == nil || r.runscHolds(id)
}

// Create sets up a container in a runsc sandbox whose process waits for
// Start.
func (r *Engine) Create(o engine.CreateOptions) error {
	_, err := r.start(o, actCreate)
	return err
}

// Run creates and starts a container and, unless detached, waits for it.
func (r *Engine) Run(o engine.CreateOptions) (int, error) { return r.start(o, actRun) }

// Pause freezes the sandbox.
func (r *Engine) Pause(id string) error { return r.pause(id, true) }

// Resume thaws it.
func (r *Engine) Resume(id string) error { return r.pause(id, false) }

// Update is not supported: runsc has no update.
func (r *Engine) Update(id string, _ *specs.LinuxResources, _ engine.UpdateOptions) error {
	return fmt.Errorf("update %s: the gvisor engine (runsc has no update): %w", id, engine.ErrUnsupported)
}

// Checkpoint is not supported yet: runsc's own checkpoint is experimental.
func (r *Engine) Checkpoint(id string, _ engine.CheckpointOptions) error {
	return fmt.Errorf("checkpoint %s: the gvisor engine (runsc's own checkpoint is experimental): %w", id, engine.ErrUnsupported)
}

// Restore is not supported, as Checkpoint.
func (r *Engine) Restore(o engine.CreateOptions, _ engine.CheckpointOptions) (int, error) {
	return -1, fmt.Errorf("restore %s: the gvisor engine: %w", o.ID, engine.ErrUnsupported)
}

type action int

const (
	actCreate action = iota
	actRun
)
