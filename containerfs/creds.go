package containerfs

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// secbitNoSetuidFixup keeps the capabilities of a thread whose fsuid
// moves off 0 (capabilities(7), securebits).
const secbitNoSetuidFixup = 1 << 2

// asOwner runs fn on a thread of its own whose filesystem ids are uid:gid
// (host ids), capabilities kept. A filesystem the container's user
// namespace mounted (its tmpfs /tmp) or an idmapped mount (the /workspace
// bind) refuses to create a file for an id it cannot map (host root
// among them): created as the container's root, what is copied in lands
// where the container's own files would. The thread is never handed back
// to the Go scheduler: it exits with fn's goroutine, its ids with it.
func asOwner(uid, gid int, fn func() error) error {
	if uid == 0 && gid == 0 {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		{
			bits, err := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
			if err == nil {
				err = unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits|secbitNoSetuidFixup), 0, 0, 0)
			}
			if err != nil {
				done <- fmt.Errorf("securebits: %w", err)
				return
			}
			unix.Setfsgid(gid)
			unix.Setfsuid(uid)
			// Each call returns the previous id: asking again tells
			// whether the first took.
			if prev, _ := unix.SetfsgidRetGid(gid); prev != gid {
				done <- fmt.Errorf("setfsgid %d refused", gid)
				return
			}
			if prev, _ := unix.SetfsuidRetUid(uid); prev != uid {
				done <- fmt.Errorf("setfsuid %d refused", uid)
				return
			}
		}
		done <- fn()
	}()
	return <-done
}
