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
// container to a listener (seccomp user notification), which decides
// whether it runs (see Tracer). write cannot be notified (libcontainer
// needs it to hand over the notification fd), so it is allowed and
// recorded as always used (the built-in allowlist allows it too).
// Syscalls libseccomp has no name for (newer than its table) cannot be
// named in a profile, so no generated profile could allow them: they
// fail with ENOSYS, as a kernel without them would answer.
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
	enosys := uint(unix.ENOSYS)
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &enosys,
		Architectures:   []specs.Arch{specs.ArchX86_64},
		ListenerPath:    listenerPath,
		Syscalls: []specs.LinuxSyscall{
			{Names: names, Action: specs.ActNotify},
			{Names: []string{"write"}, Action: specs.ActAllow},
		},
	}, nil
}

// Tracer is the seccomp agent of a traced container: it receives the
// notification fd from libcontainer and answers each syscall by the floor
// profile. A syscall the floor refuses (an error rule, or a rule that
// names the syscall but not these arguments) fails with the rule's errno,
// EPERM where the floor would kill, and is recorded as refused; so does
// (with EPERM) one the floor names nowhere, unless it is on the list of
// syscalls a trace may add (traceExtensions): the traced code is untrusted
// and must not run a syscall nobody has judged. One the floor allows, or
// on that list, runs and is recorded as used.
type Tracer struct {
	Path    string
	floor   *specs.LinuxSeccomp
	ln      *net.UnixListener
	mu      sync.Mutex
	seen    map[string]int
	refused map[string]int
	done    chan struct{}
	// stopping ends the agent once no notification is pending.
	stopping atomic.Bool
}

// StartTracer listens on a socket in dir for the container's seccomp fd;
// floor (the built-in allowlist of the traced mode) says what no trace may
// let through.
func StartTracer(dir string, floor *specs.LinuxSeccomp) (*Tracer, error) {
	if floor == nil {
		return nil, errors.New("trace: no floor profile")
	}
	path := filepath.Join(dir, "seccomp-agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("trace: listen %s: %w", path, err)
	}
	t := &Tracer{Path: path, floor: floor, ln: ln, seen: map[string]int{"write": 1}, refused: map[string]int{}, done: make(chan struct{})}
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
		name, errno := t.decide(req.Data)
		resp := &libseccomp.ScmpNotifResp{ID: req.ID, Flags: libseccomp.NotifRespFlagContinue}
		t.mu.Lock()
		if errno != 0 {
			// libseccomp negates it for the kernel.
			resp.Error, resp.Flags = int32(errno), 0
			t.refused[name]++
		} else {
			t.seen[name]++
		}
		t.mu.Unlock()
		_ = libseccomp.NotifRespond(fd, resp)
	}
}

// decide returns the syscall's name and the errno to fail it with, 0 to
// let it run. The arguments in a notification are the registers the
// filter saw, so the floor's checks (all on register values, never on
// memory) hold for the call that continues.
func (t *Tracer) decide(d libseccomp.ScmpNotifData) (string, unix.Errno) {
	name, err := d.Syscall.GetNameByArch(libseccomp.ArchAMD64)
	if d.Arch != libseccomp.ArchAMD64 || err != nil || name == "" {
		return fmt.Sprintf("unknown-%d", int(d.Syscall)), unix.EPERM
	}
	var args [6]uint64
	copy(args[:], d.Args)
	v := Evaluate(t.floor, name, args)
	if !v.Ruled {
		// The floor names it nowhere: it runs only if a trace may add
		// it to a profile at all.
		if IsTraceExtension(name) {
			return name, 0
		}
		return name, unlistedErrno
	}
	if !v.Refuses() {
		return name, 0
	}
	if (v.Action == specs.ActErrno || v.Action == specs.ActTrace) && v.Errno != 0 {
		return name, unix.Errno(v.Errno)
	}
	return name, unix.EPERM
}

// Stop stops the tracer and returns the sorted names of the syscalls it
// let run and of those it refused.
func (t *Tracer) Stop() (used, refused []string) {
	t.stopping.Store(true)
	t.ln.Close()
	<-t.done
	os.Remove(t.Path)
	t.mu.Lock()
	defer t.mu.Unlock()
	return sortedKeys(t.seen), sortedKeys(t.refused)
}

func sortedKeys(m map[string]int) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
