package seccomp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// TraceProfile is a seccomp profile that reports every syscall of the
// container to a listener (seccomp user notification) and lets it run.
// write cannot be notified (libcontainer needs it to hand over the
// notification fd), so it is recorded as always used.
func TraceProfile(listenerPath string) (*specs.LinuxSeccomp, error) {
	var names []string
	for nr := 0; nr < 512; nr++ {
		name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(libseccomp.ArchAMD64)
		if err != nil || name == "" || name == "write" {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, errors.New("trace: libseccomp knows no syscall names")
	}
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		ListenerPath:  listenerPath,
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActNotify}},
	}, nil
}

// Tracer is the seccomp agent of a traced container: it receives the
// notification fd from libcontainer and records each syscall's name.
type Tracer struct {
	Path string
	ln   *net.UnixListener
	mu   sync.Mutex
	seen map[string]int
	done chan struct{}
	// stopping ends the agent once no notification is pending.
	stopping atomic.Bool
}

// StartTracer listens on a socket in dir for the container's seccomp fd.
func StartTracer(dir string) (*Tracer, error) {
	path := filepath.Join(dir, "seccomp-agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("trace: listen %s: %w", path, err)
	}
	t := &Tracer{Path: path, ln: ln, seen: map[string]int{"write": 1}, done: make(chan struct{})}
	go t.serve()
	return t, nil
}

func (t *Tracer) serve() {
	defer close(t.done)
	conn, err := t.ln.AcceptUnix()
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	conn.Close()
	if err != nil {
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return
	}
	fd := libseccomp.ScmpFd(fds[0])
	defer unix.Close(fds[0])
	for {
		// Poll first: once the container is gone the fd hangs up, and a
		// blocking receive would never return.
		pfd := []unix.PollFd{{Fd: int32(fds[0]), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if n == 0 || pfd[0].Revents&unix.POLLIN == 0 {
			if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 || t.stopping.Load() {
				return
			}
			continue
		}
		req, err := libseccomp.NotifReceive(fd)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // the last task using the filter is gone
		}
		name, _ := req.Data.Syscall.GetNameByArch(libseccomp.ArchAMD64)
		t.mu.Lock()
		t.seen[name]++
		t.mu.Unlock()
		_ = libseccomp.NotifRespond(fd, &libseccomp.ScmpNotifResp{ID: req.ID, Flags: libseccomp.NotifRespFlagContinue})
	}
}

// Syscalls stops the tracer and returns the sorted names it saw.
func (t *Tracer) Syscalls() []string {
	t.stopping.Store(true)
	t.ln.Close()
	<-t.done
	os.Remove(t.Path)
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.seen))
	for n := range t.seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
