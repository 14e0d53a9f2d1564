package native

import (
	"github.com/opencontainers/runc/libcontainer"
)

// withLocked runs fn on the loaded container while holding its lock.
func (r *Engine) withLocked(id string, fn func(*libcontainer.Container) error) error {
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
