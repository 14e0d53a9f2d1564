package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// lockContainer takes an exclusive flock on the container's state directory
// so that two callers changing one container (two deletes, delete racing
// pause) run one after the other. The second caller then finds the state
// already gone and reports that instead of tripping over half-removed files.
func (r *Runtime) lockContainer(id string) (unlock func(), err error) {
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
