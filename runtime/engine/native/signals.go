package native

import (
	"os"
	"os/signal"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/system"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// signalHandler forwards every signal nucleus receives to the container's
// process and reaps exits, like runc's.
type signalHandler struct {
	signals         chan os.Signal
	killOnInterrupt bool
	// interrupt is the first SIGINT, SIGTERM or SIGHUP a killOnInterrupt
	// run received; kill is the SIGKILL that follows it.
	interrupt unix.Signal
	kill      *time.Timer
}

// interruptGrace is how long a sandbox's command has to end on the
// interrupt forwarded to it before it is killed.
const interruptGrace = time.Second

func newSignalHandler(subreaper bool) *signalHandler {
	if subreaper {
		// The container's init is a grandchild (libcontainer double-forks);
		// as a subreaper it is reparented to us and we reap it the moment it
		// exits instead of waiting for the host's PID 1.
		if err := system.SetSubreaper(1); err != nil {
			logrus.Warnf("become subreaper: %v", err)
		}
	}
	s := make(chan os.Signal, 2048)
	// Registering for every signal costs ~65 sigaction calls; only SIGCHLD
	// must be in place before the container starts, the rest can follow
	// while it is being set up (as runc does).
	signal.Notify(s, unix.SIGCHLD)
	go signal.Notify(s)
	return &signalHandler{signals: s}
}

// forward relays signals until the process exits and returns its status.
func (h *signalHandler) forward(process *libcontainer.Process, io *stdio) (int, error) {
	pid1, err := process.Pid()
	if err != nil {
		return -1, err
	}
	_ = io.resize()
	// The process may have exited before signal.Notify saw its SIGCHLD
	// being queued for us; check once before blocking.
	if status, done := h.reapUntil(pid1, process); done {
		return status, nil
	}
	defer func() {
		if h.kill != nil {
			h.kill.Stop()
		}
	}()
	for s := range h.signals {
		switch s {
		case unix.SIGWINCH:
			_ = io.resize()
		case unix.SIGCHLD:
			if status, done := h.reapUntil(pid1, process); done {
				if h.interrupt != 0 && status == 128+int(unix.SIGKILL) {
					// Killed because we were interrupted: the status
					// says by what, as a shell's would.
					status = 128 + int(h.interrupt)
				}
				return status, nil
			}
		case unix.SIGURG:
			// Go's scheduler preempts with SIGURG; it is not for the container.
		case unix.SIGINT, unix.SIGTERM, unix.SIGHUP:
			h.forwardSignal(process, s, pid1)
			if h.killOnInterrupt && h.interrupt == 0 {
				// A container's init ignores signals it has no handler
				// for; a sandbox must end when its caller is told to.
				h.interrupt = s.(unix.Signal)
				h.kill = time.AfterFunc(interruptGrace, func() { _ = process.Signal(unix.SIGKILL) })
			}
		default:
			h.forwardSignal(process, s, pid1)
		}
	}
	return -1, nil
}

func (h *signalHandler) forwardSignal(process *libcontainer.Process, s os.Signal, pid1 int) {
	us := s.(unix.Signal)
	logrus.Debugf("forwarding signal %d (%s) to %d", int(us), unix.SignalName(us), pid1)
	if err := process.Signal(s); err != nil {
		logrus.Debugf("forward signal %s: %v", unix.SignalName(us), err)
	}
}

// reapUntil reaps every exited child and reports pid1's status once it has
// exited.
func (h *signalHandler) reapUntil(pid1 int, process *libcontainer.Process) (int, bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid == pid1 {
			// Wait lets libcontainer finish its own bookkeeping (pipes).
			_, _ = process.Wait()
			return utils.ExitStatus(ws), true
		}
	}
}
