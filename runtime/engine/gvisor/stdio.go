package gvisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// waitForwarding waits for an attached runsc run/exec, forwarding every
// signal nucleus gets to the container's process through `runsc kill`
// (runsc run and exec do not forward signals: a signal kills runsc and,
// with it, the sandbox). runsc runs in its own process group so that a
// terminal's or a group-wide signal reaches nucleus only, once.
// crashed reports that runsc itself was killed by a signal.
func (g *gvisorRecord) waitForwarding(cmd *exec.Cmd, killOnInterrupt bool, killArgs func(unix.Signal) []string) (status int, crashed bool, err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Only the signals a caller sends to stop or poke a process: asking
	// for all of them costs a round trip to the runtime's signal-mask
	// thread per signal (1-3 ms, more than the rest of the handoff), and
	// there is no signal.Stop since nucleus exits right after.
	sigs := make(chan os.Signal, 128)
	signal.Notify(sigs, forwardedSignals...)
	if err := cmd.Start(); err != nil {
		return -1, false, fmt.Errorf("start runsc: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			sig, ok := s.(unix.Signal)
			if !ok {
				continue
			}
			if killOnInterrupt && (sig == unix.SIGINT || sig == unix.SIGTERM || sig == unix.SIGHUP) {
				sig = unix.SIGKILL
			}
			args := killArgs(sig)
			if args == nil {
				continue
			}
			go func() {
				if _, err := g.output(args[0], args[1:]...); err != nil {
					logrus.Debugf("forward signal %s: %v", unix.SignalName(sig), err)
				}
			}()
		case err := <-done:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return -1, true, fmt.Errorf("runsc: %w", err)
			}
			ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				// runsc itself died: its sandbox went with it.
				return 128 + int(ws.Signal()), true, nil
			}
			return ws.ExitStatus(), false, nil
		}
	}
}

// forwardedSignals are relayed to the container's process by an attached
// gVisor run or exec (through `runsc kill`).
var forwardedSignals = []os.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM}

// runscStdio returns the stdio runsc gets. runsc writes a regular file
// from offset 0 unless it is in append mode, so a stdout or stderr that is
// a regular file without O_APPEND is relayed (attached) or switched to
// append mode (detached). An attached run
// whose stdin is a terminal gets a pipe instead: runsc runs in its own
// process group and must not read the terminal from the background.
func runscStdio(attached bool) ([3]*os.File, func(), error) {
	files := [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	var toClose []*os.File
	var copiers sync.WaitGroup
	closeAll := func() {
		for _, f := range toClose {
			f.Close()
		}
		copiers.Wait()
	}
	for i := 1; i <= 2; i++ {
		var st unix.Stat_t
		if unix.Fstat(i, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		fl, err := unix.FcntlInt(uintptr(i), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_APPEND != 0 {
			continue
		}
		// runsc writes a regular file from offset 0. Attached, relay
		// through a pipe into our own descriptor, so the output lands at
		// the caller's offset, shared with whatever else writes there.
		// Detached (nobody stays to relay), hand runsc an O_APPEND copy.
		if attached {
			pr, pw, err := os.Pipe()
			if err != nil {
				closeAll()
				return files, nil, err
			}
			dst := files[i]
			copiers.Add(1)
			go func() {
				defer copiers.Done()
				_, _ = io.Copy(dst, pr)
				pr.Close()
			}()
			files[i] = pw
			toClose = append(toClose, pw)
			continue
		}
		// Append mode goes on the caller's own open file description,
		// not a reopened copy: the caller (a shell's `{ create; start;
		// echo x; } > file`) keeps writing through it, at an offset
		// runsc's writes never move, so with a separate copy its next
		// line would overwrite the container's output. Shared and
		// appending, every write lands after the last, as a runc
		// container's writes through the shared offset do.
		if _, err := unix.FcntlInt(uintptr(i), unix.F_SETFL, fl|unix.O_APPEND); err == nil {
			continue
		}
		f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(i), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			closeAll()
			return files, nil, fmt.Errorf("reopen fd %d in append mode for runsc: %w", i, err)
		}
		files[i] = f
		toClose = append(toClose, f)
	}
	if attached {
		if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
			pr, pw, err := os.Pipe()
			if err != nil {
				closeAll()
				return files, nil, err
			}
			go func() { io.Copy(pw, os.Stdin); pw.Close() }()
			files[0] = pr
			toClose = append(toClose, pr)
		}
	}
	return files, closeAll, nil
}

// keepOwners undoes runsc's chown of the stdio it is handed: runsc gives
// its standard descriptors to the sandbox's user (nobody, 65534), and a
// descriptor nucleus passes through is the caller's own file: the host's
// /dev/null (which every `run -d </dev/null` then gave to nobody), a
// terminal, a log file. Pipes and sockets are inodes of their own and are
// left to runsc. The owners are put back as soon as runsc changes them
// (it does so once, as it starts) and again when stop is called, after
// runsc has returned. The sandbox keeps what it opened: an open
// descriptor's access does not depend on the file's owner.
func keepOwners(files [3]*os.File) (stop func()) {
	type owner struct {
		fd       int
		uid, gid uint32
	}
	var kept []owner
	seen := map[[2]uint64]bool{}
	for _, f := range files {
		if f == nil {
			continue
		}
		fd := int(f.Fd())
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			continue
		}
		if k := st.Mode & unix.S_IFMT; k == unix.S_IFIFO || k == unix.S_IFSOCK || seen[[2]uint64{st.Dev, st.Ino}] {
			continue
		}
		seen[[2]uint64{st.Dev, st.Ino}] = true
		kept = append(kept, owner{fd, st.Uid, st.Gid})
	}
	if len(kept) == 0 {
		return func() {}
	}
	restore := func() {
		for _, o := range kept {
			var st unix.Stat_t
			if unix.Fstat(o.fd, &st) != nil || (st.Uid == o.uid && st.Gid == o.gid) {
				continue
			}
			if err := unix.Fchown(o.fd, int(o.uid), int(o.gid)); err != nil {
				logrus.Warnf("gvisor: give stdio back to %d:%d: %v", o.uid, o.gid, err)
			}
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		// runsc chowns as it starts; an attached run lives on.
		end := time.After(30 * time.Second)
		for {
			select {
			case <-done:
				return
			case <-end:
				return
			case <-tick.C:
				restore()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		restore()
	}
}

// privateNull hands runsc a null device of the container's own (dir/null)
// in place of the host's /dev/null, so that runsc's chown reaches no
// shared inode at all (keepOwners covers the other files, and this one
// when dir's filesystem allows no device nodes). close closes what it
// opened.
func privateNull(dir string, files *[3]*os.File) (close func()) {
	var host unix.Stat_t
	if unix.Stat("/dev/null", &host) != nil || host.Mode&unix.S_IFMT != unix.S_IFCHR {
		return func() {}
	}
	var own *os.File
	for i, f := range files {
		var st unix.Stat_t
		if f == nil || unix.Fstat(int(f.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != host.Rdev {
			continue
		}
		if own == nil {
			p := filepath.Join(dir, "null")
			if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(host.Rdev)); err != nil && !errors.Is(err, unix.EEXIST) {
				return func() {}
			}
			_ = unix.Chmod(p, 0o666)
			nf, err := os.OpenFile(p, os.O_RDWR|unix.O_NOFOLLOW, 0)
			if err != nil {
				return func() {} // a nodev filesystem
			}
			own = nf
		}
		files[i] = own
	}
	if own == nil {
		return func() {}
	}
	return func() { own.Close() }
}
