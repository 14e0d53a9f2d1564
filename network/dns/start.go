package dns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrStart marks a resolver that could not be started.
var ErrStart = errors.New("cannot start the resolver")

// Command builds the command line of the resolver process for a state
// root: by default this binary again, as `nucleus dns-proxy --root ROOT`.
// A program embedding the runtime that is not the nucleus binary sets it
// (and runs Run when called so).
var Command = func(root string) *exec.Cmd {
	return exec.Command("/proc/self/exe", "dns-proxy", "--root", root)
}

// readyFDEnv names the descriptor on which a resolver started by Start says
// it is listening ("ready") or why it is not.
const readyFDEnv = "NUCLEUS_DNS_READY_FD"

// rootsDirEnv replaces RootsDir in a resolver process (tests).
const rootsDirEnv = "NUCLEUS_DNS_ROOTS_DIR"

func init() {
	// A resolver Start ran has 0-2 and the ready pipe (3); whatever else
	// it inherited is its starter's caller's (a descriptor a supervisor
	// passed to `nucleus create` without close-on-exec), which a
	// long-lived resolver must not hold open: a caller waiting for EOF on
	// it would wait for the last container. This runs before main, before
	// the Go runtime or any package has a descriptor of its own to keep.
	if os.Getenv(readyFDEnv) == "3" {
		if err := unix.CloseRange(4, ^uint(0), 0); err != nil {
			closeInheritedSlowly()
		}
	}
}

// closeInheritedSlowly is CloseRange for kernels before 5.9.
func closeInheritedSlowly() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 3 {
			unix.Close(fd)
		}
	}
}

// ReadyTimeout bounds how long Start waits for the resolver to listen.
var ReadyTimeout = 10 * time.Second

func netDir(root string) string { return filepath.Join(root, "@net") }

// LogPath is the resolver's log: its stdout and stderr.
func LogPath(root string) string { return filepath.Join(netDir(root), "dns.log") }

// startLock serializes starting a resolver with one deciding to exit.
func startLock(root string) (func(), error) {
	return flock(filepath.Join(netDir(root), "dns.lock"), unix.LOCK_EX)
}

// pidPath is flocked by the running resolver for its whole life, and holds
// its pid: the lock, not the pid, says whether one runs.
func pidPath(root string) string { return filepath.Join(netDir(root), "dns.pid") }

func flock(path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Running says whether a resolver serves root now.
func Running(root string) bool {
	unlock, err := flock(pidPath(root), unix.LOCK_EX|unix.LOCK_NB)
	if err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	unlock()
	return false
}

// Start makes sure a resolver serves root, starting one if none runs: call
// it after WriteConfig. Containers starting together start one resolver.
// The resolver is detached (its own session, stdio to LogPath) and exits
// once no config remains.
func Start(root string) error {
	if err := os.MkdirAll(netDir(root), 0o700); err != nil {
		return fmt.Errorf("%w: %v", ErrStart, err)
	}
	unlock, err := startLock(root)
	if err != nil {
		return fmt.Errorf("%w: lock: %v", ErrStart, err)
	}
	defer unlock()
	if Running(root) {
		return nil
	}
	logf, err := os.OpenFile(LogPath(root), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStart, err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStart, err)
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStart, err)
	}
	defer pr.Close()
	cmd := Command(root)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, readyFDEnv+"=3")
	// Its own session: a terminal's hangup or the caller's process group
	// being killed must not take the containers' DNS with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStart, err)
	}
	// Reap it if this process outlives it (a long-lived sandbox).
	go cmd.Wait()

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(pr).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		switch {
		case s == "ready":
			return nil
		case s == "":
			return fmt.Errorf("%w: it exited (see %s)", ErrStart, LogPath(root))
		default:
			return fmt.Errorf("%w: %s (see %s)", ErrStart, s, LogPath(root))
		}
	case <-time.After(ReadyTimeout):
		return fmt.Errorf("%w: not listening after %s (see %s)", ErrStart, ReadyTimeout, LogPath(root))
	}
}

// Run is the resolver process (`nucleus dns-proxy`): it serves root until
// no config remains, putting answers into sets. A second one for the same
// root exits at once without error.
func Run(root string, sets Sets) error {
	var ready *os.File
	if fd, err := strconv.Atoi(os.Getenv(readyFDEnv)); err == nil && fd > 2 {
		ready = os.NewFile(uintptr(fd), "ready")
		os.Unsetenv(readyFDEnv)
	}
	say := func(s string) {
		if ready != nil {
			fmt.Fprintln(ready, s)
			ready.Close()
			ready = nil
		}
	}
	if err := os.MkdirAll(netDir(root), 0o700); err != nil {
		say(err.Error())
		return err
	}
	unlockPid, err := flock(pidPath(root), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		say("ready") // one is already serving this root
		return nil
	}
	if err != nil {
		say(err.Error())
		return err
	}
	os.WriteFile(pidPath(root), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	logger := log.New(os.Stderr, fmt.Sprintf("dns-proxy[%d]: ", os.Getpid()), log.LstdFlags|log.Lmsgprefix)
	logger.Printf("serving %s", root)
	if os.Geteuid() == 0 {
		if err := dropPrivileges(); err != nil {
			say(err.Error())
			return err
		}
	}
	roots := RootsDir
	if d := os.Getenv(rootsDirEnv); d != "" {
		roots = d
	}
	if err := register(roots, root); err != nil {
		logger.Printf("registering %s in %s: %v (containers of other state roots may get REFUSED here)", root, roots, err)
	}
	r := &Resolver{Root: root, Sets: sets, Log: logger, Roots: roots,
		ExitLock: func() (func(bool), error) {
			unlockStart, err := startLock(root)
			if err != nil {
				return nil, err
			}
			return func(exiting bool) {
				// The pid lock goes first: a starter that
				// then gets the start lock sees no resolver
				// and starts one.
				if exiting {
					unregister(roots, root)
					unlockPid()
				}
				unlockStart()
			}, nil
		},
	}
	err = r.Serve(context.Background(), func(err error) {
		if err != nil {
			say(err.Error())
			return
		}
		say("ready")
	})
	logger.Printf("no container config left; exiting")
	return err
}
