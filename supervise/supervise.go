// Package supervise is the host side of a held sandbox's supervisor (the
// C loop in preexec/supervise.c, the sandbox's pid 1): the socket it
// serves, and the client `nucleus exec` uses to run a command through it
// without starting a Go init in the container.
//
// A request is one SOCK_SEQPACKET message: a header of seven
// little-endian uint32 (magic "NXS1", total length, argc, envc, uid, gid,
// flags=0), then the working directory, the arguments and the
// environment, each NUL-terminated, with the command's stdin, stdout and
// stderr attached (SCM_RIGHTS). The supervisor answers with 12-byte
// replies (magic "NXSR", kind, value): started (pid), then exited (code)
// or signaled (signal), or an error (errno). While the command runs the
// client may send a signal message (magic "NXSG", signal).
package supervise

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Drain is how long a client copies a command's outputs once the command
// has ended (what it left running may hold them; fastexec's DRAIN_MS).
const Drain = time.Second

// SocketName is the socket's name in a sandbox's state dir.
const SocketName = "supervisor.sock"

const (
	reqMagic = 0x3153584e
	sigMagic = 0x4753584e
	repMagic = 0x5253584e
	hdrLen   = 7 * 4
	// MaxRequest bounds an encoded request (supervise.h's SV_MAX_REQ); a
	// larger one goes through the runtime's own exec.
	MaxRequest  = 128 << 10
	maxStrings  = 8192
	kindStarted = 1
	kindExited  = 2
	kindSignal  = 3
	kindError   = 4
)

var (
	// ErrUnavailable: no supervisor answers (none was started, or the
	// sandbox has ended); the runtime's exec decides what to report.
	ErrUnavailable = errors.New("no supervisor serves this sandbox")
	// ErrUnsupported: the request is one the supervisor does not run
	// (another user, too large); the runtime's exec runs it instead.
	ErrUnsupported = errors.New("not run by the supervisor")
)

// Request is a command to run in the sandbox.
type Request struct {
	Args []string
	Env  []string
	Cwd  string
	// UID and GID must be the supervisor's own (the sandbox's user).
	UID, GID uint32
}

// Encode is the request's message, without its descriptors.
func (r Request) Encode() ([]byte, error) {
	if len(r.Args) == 0 || r.Args[0] == "" {
		return nil, errors.New("supervise: no command")
	}
	if len(r.Args) > maxStrings || len(r.Env) > maxStrings {
		return nil, fmt.Errorf("supervise: %d arguments, %d variables: %w", len(r.Args), len(r.Env), ErrUnsupported)
	}
	if !strings.HasPrefix(r.Cwd, "/") {
		return nil, fmt.Errorf("supervise: working directory %q is not absolute", r.Cwd)
	}
	strs := append(append([]string{r.Cwd}, r.Args...), r.Env...)
	n := hdrLen
	for i, s := range strs {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("supervise: string %d holds a NUL byte", i)
		}
		n += len(s) + 1
	}
	for _, e := range r.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return nil, fmt.Errorf("supervise: environment entry %q is not KEY=VALUE", e)
		}
	}
	if n > MaxRequest {
		return nil, fmt.Errorf("supervise: request of %d bytes: %w", n, ErrUnsupported)
	}
	b := make([]byte, hdrLen, n)
	for i, v := range []uint32{reqMagic, uint32(n), uint32(len(r.Args)), uint32(len(r.Env)), r.UID, r.GID, 0} {
		binary.LittleEndian.PutUint32(b[i*4:], v)
	}
	for _, s := range strs {
		b = append(append(b, s...), 0)
	}
	return b, nil
}

// Listen makes the listening socket at path, for the supervisor to be
// handed: only root may connect (0600, in the root-only state dir).
func Listen(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("supervisor socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), path)
	// umask 0177 for the bind alone would race other goroutines; the dir
	// is root-only, so the chmod right after closes nothing open.
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		f.Close()
		return nil, fmt.Errorf("supervisor socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("supervisor socket %s: %w", path, err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("supervisor socket %s: %w", path, err)
	}
	return f, nil
}

// Conn is one command's connection, from the request to its end.
type Conn struct {
	c   *net.UnixConn
	Pid int // in the sandbox's pid namespace, once started
}

// Start connects to the supervisor at path and starts req with the given
// stdin, stdout and stderr, which the command holds as they are (pass
// pipes or /dev/null, never the caller's terminal or files).
func Start(path string, req Request, stdio [3]*os.File) (*Conn, error) {
	msg, err := req.Encode()
	if err != nil {
		return nil, err
	}
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("supervisor %s: %w", path, err)
	}
	fds := make([]int, 3)
	for i, f := range stdio {
		fds[i] = int(f.Fd())
	}
	if _, _, err := c.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("supervisor %s: send: %w", path, err)
	}
	kind, val, err := readReply(c)
	if err != nil {
		c.Close()
		// The supervisor ended (the sandbox with it) before answering.
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	switch kind {
	case kindStarted:
		return &Conn{c: c, Pid: int(val)}, nil
	case kindError:
		c.Close()
		if syscall.Errno(val) == syscall.EPERM {
			return nil, fmt.Errorf("%w: another user than the sandbox's", ErrUnsupported)
		}
		return nil, fmt.Errorf("supervisor refused the command: %w", syscall.Errno(val))
	}
	c.Close()
	return nil, fmt.Errorf("supervisor: unexpected reply %d", kind)
}

// Signal forwards sig to the command.
func (c *Conn) Signal(sig syscall.Signal) error {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], sigMagic)
	binary.LittleEndian.PutUint32(b[4:], uint32(sig))
	_, err := c.c.Write(b[:])
	return err
}

// Wait returns the command's status: its exit code, or 128 plus the
// signal that ended it, as a shell reports it.
func (c *Conn) Wait() (int, error) {
	defer c.c.Close()
	kind, val, err := readReply(c.c)
	if err != nil {
		return -1, fmt.Errorf("supervisor ended before the command (the sandbox was stopped): %w", err)
	}
	switch kind {
	case kindExited:
		return int(val), nil
	case kindSignal:
		return 128 + int(val), nil
	}
	return -1, fmt.Errorf("supervisor: unexpected reply %d", kind)
}

// Close drops the connection; the command runs on.
func (c *Conn) Close() error { return c.c.Close() }

func readReply(c *net.UnixConn) (kind, val int32, err error) {
	var b [12]byte
	n, err := c.Read(b[:])
	if err != nil {
		return 0, 0, err
	}
	if n != len(b) || binary.LittleEndian.Uint32(b[0:]) != repMagic {
		return 0, 0, fmt.Errorf("malformed reply of %d bytes", n)
	}
	return int32(binary.LittleEndian.Uint32(b[4:])), int32(binary.LittleEndian.Uint32(b[8:])), nil
}
