// Package engine is the seam between the runtime and what runs containers:
// the Engine interface every engine implements (native: libcontainer in
// this process; gvisor: Debian's runsc driven as a child), the options and
// state they share, and the error classes callers test with errors.Is.
package engine

import (
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/runc/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Kind names an engine.
type Kind string

const (
	Native Kind = "native"
	Gvisor Kind = "gvisor"
)

// EnvVar gives the default engine for create and run when neither
// --engine flag is given.
const EnvVar = "NUCLEUS_ENGINE"

// Annotation is added to `state` (and `list --format json`) of a container
// held by a non-native engine; it is the only place a user can tell the
// engines apart.
const Annotation = "run.nucleus.engine"

// ParseKind accepts "native", "gvisor" and "" (native).
func ParseKind(s string) (Kind, error) {
	switch Kind(s) {
	case "", Native:
		return Native, nil
	case Gvisor:
		return Gvisor, nil
	}
	return "", &OptionError{Option: "engine", Msg: fmt.Sprintf("%q: want native or gvisor", s)}
}

// Engine runs containers. Every lifecycle command of the runtime goes
// through one; the runtime picks it by id (engineFor), so no caller asks
// which engine it has. An engine that cannot do something returns an error
// of class ErrUnsupported.
type Engine interface {
	Kind() Kind
	// Holds reports whether id's state under the root is this engine's.
	Holds(id string) bool

	// Create sets up a container whose process waits for Start; Run also
	// starts it and, unless detached, waits and returns its exit status.
	Create(o CreateOptions) error
	Run(o CreateOptions) (int, error)
	Start(id string) error
	State(id string) (*State, error)
	// List reports the containers this engine holds.
	List() ([]State, error)
	Kill(id string, sig unix.Signal, all bool) error
	Delete(id string, force bool) error
	Exec(id string, o ExecOptions) (int, error)
	// Ps writes the container's processes to w, as runc's ps prints them.
	Ps(id string, o PsOptions, w io.Writer) error
	Pause(id string) error
	Resume(id string) error
	Stats(id string) (*types.Event, error)
	Events(id string, interval time.Duration, emit func(*types.Event) error) error
	Update(id string, res *specs.LinuxResources, o UpdateOptions) error
	Checkpoint(id string, o CheckpointOptions) error
	Restore(o CreateOptions, co CheckpointOptions) (int, error)
}

// RunInfo is what an engine knows of an attached run once its process
// ended, read before the container is removed.
type RunInfo struct {
	Status int
	// Pid was the container's init on the host (0 if unknown).
	Pid int
	// OOMKills counts the container's processes the kernel's OOM killer
	// killed; PeakMemoryBytes is its cgroup's peak memory use. 0 when the
	// engine can't tell.
	OOMKills        int64
	PeakMemoryBytes int64
}

// RunReporter is an engine whose attached run also reports RunInfo. An
// engine without it reports the status alone.
type RunReporter interface {
	RunReport(o CreateOptions) (RunInfo, error)
}
