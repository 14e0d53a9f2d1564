package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/opencontainers/runc/libcontainer"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/spec"
)

// lockContainer takes an exclusive flock on the container's state directory
// so that two callers changing one container (two deletes, delete racing
// pause) run one after the other. The second caller then finds the state
// already gone and reports that instead of tripping over half-removed files.
// The id is validated first: a malformed one ("../x", "a/b") must be
// reported as such, never resolved to a path outside the root.
func (r *Runtime) lockContainer(id string) (unlock func(), err error) {
	if err := spec.ValidateID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(r.stateDir(id))
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

// withLocked runs fn on the loaded container while holding its lock.
func (r *Runtime) withLocked(id string, fn func(*libcontainer.Container) error) error {
	unlock, err := r.lockContainer(id)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := r.load(id)
	if err != nil {
		return err
	}
	return fn(c)
}
