package runtime

import (
	"errors"
	"fmt"
	"io"

	"github.com/nucleus-run/nucleus/containerfs"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
)

// CopyOptions describe one copy between the host and a container
// (`nucleus cp`), with `docker cp`'s semantics: a file onto a file or
// into an existing directory, a directory as a directory, "DIR/." for
// what it holds; a destination whose parent is missing is an error.
type CopyOptions struct {
	// ContainerPath is the path as the container sees it; symlinks in it
	// are resolved within the container's root.
	ContainerPath string
	// HostPath is the host side; "" means a tar stream: Reader for
	// CopyIn (extracted into the directory ContainerPath), Writer for
	// CopyOut.
	HostPath string
	Reader   io.Reader
	Writer   io.Writer
	// Archive keeps owners (`cp -a`): going in, the source's ids taken as
	// container ids and mapped by its user namespace; going out, the ids
	// the container sees. Without it, what is copied in belongs to the
	// container's root and what is copied out to the caller.
	Archive bool
	// Warn is told of each entry left out (special files) and why.
	Warn func(path, reason string)
	// MaxBytes bounds what the copy writes (see containerfs.Options):
	// 0 is DefaultCopyMaxBytes, policy.Unlimited none. Past it the copy
	// stops before the file that would cross it, with an OptionError
	// ("max-bytes") of class containerfs.ErrBudget.
	MaxBytes int64
	// Interrupt, if set, lets a signal handler stop the copy and remove
	// what it half-wrote (containerfs.Interrupt.Now).
	Interrupt *containerfs.Interrupt
}

// DefaultCopyMaxBytes bounds a copy by default, as the copy-in-out
// workspace's write-back is: a container makes a file of any apparent
// size for nothing (a sparse file), and a tar stream writes its holes.
const DefaultCopyMaxBytes = 4 << 30

// options are the containerfs options o asks for.
func (o CopyOptions) options() (containerfs.Options, error) {
	max := o.MaxBytes
	switch {
	case max == 0:
		max = DefaultCopyMaxBytes
	case max == policy.Unlimited:
		max = 0
	case max < 0:
		return containerfs.Options{}, &OptionError{Option: "max-bytes", Msg: fmt.Sprintf("%d: want a positive size", max)}
	}
	return containerfs.Options{Archive: o.Archive, Warn: o.Warn, MaxBytes: max, Interrupt: o.Interrupt}, nil
}

// copyError names the bound of a copy stopped by it.
func copyError(err error) error {
	if errors.Is(err, containerfs.ErrBudget) {
		return &OptionError{Option: "max-bytes", Msg: err.Error(), Err: err}
	}
	return err
}

// CopyIn copies o.HostPath (or the tar stream o.Reader) into the running
// container id at o.ContainerPath.
func (r *Runtime) CopyIn(id string, o CopyOptions) error {
	if o.HostPath == "" && o.Reader == nil {
		return &OptionError{Option: "source", Msg: "no host path or tar stream given"}
	}
	return r.copyFiles(id, o, "copy into", func(root *containerfs.Root, co containerfs.Options) error {
		return root.CopyIn(o.HostPath, o.Reader, o.ContainerPath, co)
	})
}

// CopyOut copies o.ContainerPath of the running container id to
// o.HostPath (or as a tar stream to o.Writer).
func (r *Runtime) CopyOut(id string, o CopyOptions) error {
	if o.HostPath == "" && o.Writer == nil {
		return &OptionError{Option: "destination", Msg: "no host path or tar stream given"}
	}
	return r.copyFiles(id, o, "copy out of", func(root *containerfs.Root, co containerfs.Options) error {
		return root.CopyOut(o.ContainerPath, o.HostPath, o.Writer, co)
	})
}

// copyFiles runs one copy against id's root filesystem.
func (r *Runtime) copyFiles(id string, o CopyOptions, what string, copy func(*containerfs.Root, containerfs.Options) error) error {
	co, err := o.options()
	if err != nil {
		return err
	}
	root, err := r.filesRoot(id)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := copy(root, co); err != nil {
		return fmt.Errorf("%s %s: %w", what, id, copyError(err))
	}
	return nil
}

// filesRoot holds id's root filesystem. A gVisor container's files live
// in its sandbox's own kernel, which no host path reaches safely.
func (r *Runtime) filesRoot(id string) (*containerfs.Root, error) {
	if e := r.engineFor(id); e.Kind() != engine.Native {
		return nil, fmt.Errorf("container %s runs on the %s engine: copying files is %w there (only the native engine's containers)", id, e.Kind(), ErrUnsupported)
	}
	return r.native.FilesRoot(id)
}
