// Package containerfs copies files into and out of a running container
// (`nucleus cp`), as host root, without trusting the container.
//
// The container's files are reached through its init's root
// (/proc/<pid>/root), held as a descriptor once the init is proved to be
// the container's (a pidfd and the start time from its state), and every
// path the user names in the container is resolved beneath it with
// openat2(RESOLVE_IN_ROOT): a symlink the container planted is followed as
// the container sees it, never out to the host; mounts inside (a tmpfs
// /tmp, the /workspace bind) are crossed as the container crosses them.
// A read-only mount stays read-only: the write fails.
//
// A walk of the source hands its entries either to a tar stream (`-`,
// archive/tar) or, between host and container paths, straight to the
// writer that reads a tar on stdin, which then copies only a file's data
// extents from its descriptor and leaves holes as holes (archive/tar
// writes no sparse entries: to a stream holes are zeros, made up, never
// read). Both ends follow the rules of the workspace write-back (package
// workspace, whose *at primitives and extent walk they share):
//
//   - The tree is walked through O_NOFOLLOW directory descriptors; links
//     are copied as links, never followed.
//   - Everything written is created beneath one destination directory
//     descriptor: parents are opened with RESOLVE_BENEATH and
//     RESOLVE_NO_SYMLINKS, files are written to a temporary name and
//     renamed over the old entry (a link there is replaced, not written
//     through). An entry that would leave the destination is an error.
//   - Set-id bits are stripped (directories keep a sticky bit), xattrs are
//     not copied, devices, fifos and sockets are skipped with a warning.
//   - What a copy writes is bounded (Options.MaxBytes); it stops before
//     the file that would cross the bound. A copy that fails, or that
//     Interrupt.Now stops, removes its temporary files and the entries it
//     made at the top of its destination.
//   - Owners: going in, the container root's host ids (its user
//     namespace's mapping of 0), or with Archive the source's ids taken as
//     container ids and mapped; going out, the caller's ids, or with
//     Archive the ids the container sees.
package containerfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// IDRange maps Size container ids from Container to host ids from Host,
// as a user namespace's uid_map line.
type IDRange struct {
	Container, Host, Size uint32
}

// IDMap is a user namespace's mapping; empty means no user namespace
// (container ids are host ids).
type IDMap []IDRange

// ToHost maps a container id to the host; ok is false for an unmapped id.
func (m IDMap) ToHost(id uint32) (uint32, bool) {
	if len(m) == 0 {
		return id, true
	}
	for _, r := range m {
		if id >= r.Container && id-r.Container < r.Size {
			return r.Host + id - r.Container, true
		}
	}
	return 0, false
}

// ToContainer maps a host id into the container; ok is false for an id
// the container cannot see (it sees the overflow id, 65534).
func (m IDMap) ToContainer(id uint32) (uint32, bool) {
	if len(m) == 0 {
		return id, true
	}
	for _, r := range m {
		if id >= r.Host && id-r.Host < r.Size {
			return r.Container + id - r.Host, true
		}
	}
	return overflowID, false
}

const overflowID = 65534

// Process is a container's init as its state records it.
type Process struct {
	Pid int
	// StartTime is field 22 of /proc/<pid>/stat when the container
	// started: a pid reused since has another.
	StartTime uint64
	UIDs      IDMap
	GIDs      IDMap
}

// Root is a container's filesystem as its init sees it.
type Root struct {
	fd         int
	uids, gids IDMap
}

// ErrGone: the container's init is no longer the process its state
// names (it exited, and its pid may have been reused).
var ErrGone = errors.New("its init process is gone")

// Open holds the root of p's init. The pidfd pins the process between
// the start-time check and the open of its root: if it is still alive
// after, the root opened was its own.
func Open(p Process) (*Root, error) {
	if p.Pid <= 0 {
		return nil, ErrGone
	}
	pidfd, err := unix.PidfdOpen(p.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, ErrGone
		}
		return nil, fmt.Errorf("pidfd of %d: %w", p.Pid, err)
	}
	defer unix.Close(pidfd)
	if st, err := startTime(p.Pid); err != nil || st != p.StartTime {
		return nil, ErrGone
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/root", p.Pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return nil, ErrGone
		}
		return nil, fmt.Errorf("root of %d: %w", p.Pid, err)
	}
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		unix.Close(fd)
		return nil, ErrGone
	}
	return &Root{fd: fd, uids: p.UIDs, gids: p.GIDs}, nil
}

// Close releases the root.
func (r *Root) Close() error { return unix.Close(r.fd) }

func startTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// from the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// inRoot resolves p (a container path) as the container would, beneath
// the root: symlinks are taken as chrooted, magic links (/proc/*/root)
// refused.
func (r *Root) inRoot(p string, flags uint64) (int, error) {
	if p == "" {
		p = "/"
	}
	return unix.Openat2(r.fd, p, &unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}
