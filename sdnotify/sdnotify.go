// Package sdnotify speaks systemd's notification protocol for a service
// run in a container: nucleus's own messages (MAINPID, READY, STATUS,
// WATCHDOG) through go-systemd's daemon package, and a relay that takes the
// workload's own messages from a socket bind-mounted into the container
// and passes on only those a service may send about itself.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Env is the variable systemd sets for a Type=notify service.
const Env = "NOTIFY_SOCKET"

// Enabled reports whether systemd (or another supervisor) listens.
func Enabled() bool { return os.Getenv(Env) != "" }

// Send sends one datagram of state lines ("READY=1", "MAINPID=42"); with
// no NOTIFY_SOCKET it does nothing.
func Send(lines ...string) error {
	if !Enabled() {
		return nil
	}
	if _, err := daemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		return fmt.Errorf("sd_notify %s: %w", strings.Join(lines, " "), err)
	}
	return nil
}

// WatchdogInterval is how often systemd wants WATCHDOG=1 (0: it does
// not); WATCHDOG_PID, when set, must be this process.
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}

// ContainerSocket is where a passthrough container finds its socket.
const ContainerSocket = "/run/nucleus-notify/notify.sock"

// relayed are the lines a workload may have passed on: what it says of
// its own state. MAINPID (a host pid of the workload's choosing), the fd
// store and anything unknown are dropped: nucleus alone names the main
// process.
var relayed = []string{"READY=", "STATUS=", "RELOADING=", "STOPPING=", "ERRNO=", "BUSERROR=", "EXTEND_TIMEOUT_USEC=", "MONOTONIC_USEC="}

// Filter keeps the lines of msg that may be relayed.
func Filter(msg []byte) []string {
	var out []string
	for _, l := range strings.Split(string(msg), "\n") {
		for _, p := range relayed {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// RelayDir is where the relay of container id under the state root
// keeps its socket (removed with the container).
func RelayDir(root, id string) string { return filepath.Join(root, "@notify-"+id) }

// Relay is the socket a passthrough container sends to.
type Relay struct {
	// Dir holds the socket; it is bind-mounted at
	// filepath.Dir(ContainerSocket).
	Dir  string
	conn *net.UnixConn
}

// Listen makes dir (which must not exist) and a datagram socket in it
// that anyone in the container may send to: the workload runs as a user
// namespace's unprivileged root.
func Listen(dir string) (*Relay, error) {
	if err := os.Mkdir(dir, 0o711); err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	path := filepath.Join(dir, filepath.Base(ContainerSocket))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	conn.SetReadBuffer(64 << 10)
	if err := os.Chmod(path, 0o777); err != nil {
		conn.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	return &Relay{Dir: dir, conn: conn}, nil
}

// Serve hands every message's relayable lines to relay until Close.
func (r *Relay) Serve(relay func(lines []string)) {
	buf := make([]byte, 4096)
	for {
		n, err := r.conn.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		if lines := Filter(buf[:n]); len(lines) > 0 {
			relay(lines)
		}
	}
}

// Close stops Serve and removes the socket's directory.
func (r *Relay) Close() error {
	err := r.conn.Close()
	if rerr := os.RemoveAll(r.Dir); err == nil {
		err = rerr
	}
	return err
}
