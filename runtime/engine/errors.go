package engine

import (
	"errors"

	"github.com/nucleus-run/nucleus/opterr"
)

// Error classes, for errors.Is. Engines wrap them with the container id and
// what was attempted, so the CLI's messages stay specific while callers
// (the CLI, the sandbox API, tests) branch on the class, never the wording.
//
// Their texts are worded to read on inside an engine's message: "cannot
// start container c1: it has stopped", "container c1 already exists under
// /run/nucleus".
var (
	// ErrNotExist: no container with that id under the root.
	ErrNotExist = errors.New("container does not exist")
	// ErrExist: the id is taken.
	ErrExist = errors.New("already exists")
	// ErrRunning: the container is running and the operation needs it not
	// to be (start, delete without force).
	ErrRunning = errors.New("it is running")
	// ErrPaused: the container is paused (exec without --ignore-paused,
	// delete without force).
	ErrPaused = errors.New("it is paused")
	// ErrStopped: the container has stopped (start, exec).
	ErrStopped = errors.New("it has stopped")
	// ErrNotRunning: the operation needs a running container (kill, pause,
	// events) and it is created or stopped.
	ErrNotRunning = errors.New("container is not running")
	// ErrNotPaused: resume of a container that is not paused.
	ErrNotPaused = errors.New("container is not paused")
	// ErrBrokenState: the container's state file is there but cannot be
	// read (truncated, garbled, empty); `delete --force` removes it.
	ErrBrokenState = errors.New("unreadable")
	// ErrUnsupported: the engine (or this host) cannot do it.
	ErrUnsupported = errors.New("not supported")
)

// OptionError is an invalid option (Option as the library names it,
// "root"); the CLI renames Option to its flag ("--root").
type OptionError = opterr.Error
