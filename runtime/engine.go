package runtime

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nucleus-run/nucleus/spec"
)

// Engine names what runs a container: the native engine (libcontainer, in
// this process) or gVisor (Debian's runsc, driven as a child process).
type Engine string

const (
	EngineNative Engine = "native"
	EngineGvisor Engine = "gvisor"
)

// EngineEnv is the environment variable giving the default engine for
// create and run when neither --engine flag is given.
const EngineEnv = "NUCLEUS_ENGINE"

// EngineAnnotation is added to `state` (and `list --format json`) of a
// container held by a non-native engine; it is the only place a user can
// tell the engines apart.
const EngineAnnotation = "run.nucleus.engine"

// ParseEngine accepts "native", "gvisor" and "" (native).
func ParseEngine(s string) (Engine, error) {
	switch Engine(s) {
	case "", EngineNative:
		return EngineNative, nil
	case EngineGvisor:
		return EngineGvisor, nil
	}
	return "", fmt.Errorf("--engine %q: want native or gvisor", s)
}

// gvisorRootName is runsc's --root inside nucleus's root. It is not a valid
// container id (spec.ValidateID refuses '@'), so it can never collide with
// a native container's state directory.
const gvisorRootName = "@gvisor"

// gvisorRecordName marks a state directory <root>/<id>/ as held by gVisor.
// The directory also holds the bundle handed to runsc (config.json and a
// rootfs symlink), so `mkdir <root>/<id>` reserves an id for both engines.
const gvisorRecordName = "gvisor.json"

// isGvisor tells whether id is held by the gVisor engine. The native state
// file is checked first, so the native path pays one stat (of a file that
// libcontainer reads right after, so it is in the dentry cache); the gVisor
// record is looked at only when there is no native state.
func (r *Runtime) isGvisor(id string) bool {
	if spec.ValidateID(id) != nil {
		return false // let the native path report the bad id
	}
	dir := r.stateDir(id)
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, gvisorRecordName))
	return err == nil
}

// EngineOf reports which engine holds id (native when nothing holds it).
func (r *Runtime) EngineOf(id string) Engine {
	if r.isGvisor(id) {
		return EngineGvisor
	}
	return EngineNative
}
