package containerfs

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/workspace"
)

// ErrInterrupted: the copy was stopped by Interrupt.Now.
var ErrInterrupted = errors.New("copy interrupted")

// Interrupt stops copies in progress from a signal handler: Now removes
// what they have half-written and keeps them from writing more, so the
// process may exit right after. The zero value is ready; one may serve
// several copies.
type Interrupt struct {
	mu       sync.Mutex
	stopped  bool
	journals map[*journal]struct{}
}

// Now removes every temporary file of the copies in progress and every
// entry they made at the top of their destination, then fails their
// next write with ErrInterrupted.
func (in *Interrupt) Now() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stopped = true
	for j := range in.journals {
		j.undo()
	}
	in.journals = nil
}

// Stopped tells whether Now was called.
func (in *Interrupt) Stopped() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stopped
}

// journal is what one copy has written so far that a failure must take
// back: files at temporary names, and the entries it made at the top of
// its destination (each with the inode it got, so that only that very
// entry is removed). Every change to either is made under the
// Interrupt's lock, so Now sees them whole. Each entry holds a
// descriptor of its own on its directory.
type journal struct {
	in    *Interrupt
	temps map[entryAt]struct{}
	made  []madeAt
}

type entryAt struct {
	dir  int
	name string
}

type madeAt struct {
	entryAt
	dev, ino uint64
}

func (in *Interrupt) journal() *journal {
	in.mu.Lock()
	defer in.mu.Unlock()
	j := &journal{in: in, temps: map[entryAt]struct{}{}}
	if in.journals == nil {
		in.journals = map[*journal]struct{}{}
	}
	in.journals[j] = struct{}{}
	return j
}

// create makes the temporary name tmp beneath dir with fn, recorded.
func (j *journal) create(dir int, tmp string, fn func() error) error {
	j.in.mu.Lock()
	defer j.in.mu.Unlock()
	if j.in.stopped {
		return ErrInterrupted
	}
	own, err := unix.Dup(dir)
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		unix.Close(own)
		return err
	}
	j.temps[entryAt{own, tmp}] = struct{}{}
	return nil
}

// forget drops tmp's record; with unlink, tmp itself too.
func (j *journal) forget(dir int, tmp string, unlink bool) {
	for e := range j.temps {
		if e.name == tmp {
			if unlink {
				_ = unix.Unlinkat(e.dir, tmp, 0)
			}
			unix.Close(e.dir)
			delete(j.temps, e)
		}
	}
}

// discard removes the temporary file tmp.
func (j *journal) discard(dir int, tmp string) {
	j.in.mu.Lock()
	defer j.in.mu.Unlock()
	_ = unix.Unlinkat(dir, tmp, 0)
	j.forget(dir, tmp, false)
}

// commit renames tmp over name; top says name is a new entry at the top
// of the destination.
func (j *journal) commit(dir int, tmp, name string, top bool) error {
	j.in.mu.Lock()
	defer j.in.mu.Unlock()
	if j.in.stopped {
		return ErrInterrupted
	}
	if err := unix.Renameat(dir, tmp, dir, name); err != nil {
		return err
	}
	j.forget(dir, tmp, false)
	if top {
		j.record(dir, name)
	}
	return nil
}

// mkdir makes the directory name beneath dir; top as for commit.
func (j *journal) mkdir(dir int, name string, mode uint32, top bool) error {
	j.in.mu.Lock()
	defer j.in.mu.Unlock()
	if j.in.stopped {
		return ErrInterrupted
	}
	if err := unix.Mkdirat(dir, name, mode); err != nil {
		return err
	}
	if top {
		j.record(dir, name)
	}
	return nil
}

func (j *journal) record(dir int, name string) {
	var st unix.Stat_t
	if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return
	}
	own, err := unix.Dup(dir)
	if err != nil {
		return
	}
	j.made = append(j.made, madeAt{entryAt{own, name}, uint64(st.Dev), st.Ino})
}

// undo removes the temporary files and the entries made (under the lock).
func (j *journal) undo() {
	for e := range j.temps {
		j.forget(e.dir, e.name, true)
	}
	for _, m := range j.made {
		var st unix.Stat_t
		// Only the very entry made: one put in its place since stays.
		if unix.Fstatat(m.dir, m.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && uint64(st.Dev) == m.dev && st.Ino == m.ino {
			_ = workspace.RemoveAt(m.dir, m.name)
		}
		unix.Close(m.dir)
	}
	j.made = nil
}

// finish ends the copy: a failed one (ok false) is taken back as Now
// would; a complete one is kept.
func (j *journal) finish(ok bool) {
	j.in.mu.Lock()
	defer j.in.mu.Unlock()
	if _, live := j.in.journals[j]; !live {
		return // Now took it back already
	}
	if ok {
		for _, m := range j.made {
			unix.Close(m.dir)
		}
		j.made = nil
	}
	j.undo()
	delete(j.in.journals, j)
}
