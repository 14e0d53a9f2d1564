package main

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/journald"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/spec"
)

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-driver", Value: "stdio", Usage: "where the process's stdout and stderr go: stdio (nucleus's own) or journald (with the audit events; CONTAINER_ID, SYSLOG_IDENTIFIER, PRIORITY fields)"},
	}
}

// journalRelayCommand holds the read ends of a container's stdout and
// stderr pipes (fds 3 and 4) and sends each line to the journal until both
// end: a detached container outlives the nucleus that started it.
var journalRelayCommand = &cli.Command{
	Name:      "journal-relay",
	Hidden:    true,
	ArgsUsage: "<container-id>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		// A terminal's or a service manager's stop signal is for the
		// container; the relay ends when the container's streams do.
		signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGPIPE)
		journald.RelayAll(c.Args().First(), os.NewFile(3, "stdout"), os.NewFile(4, "stderr"))
		return nil
	},
}

func init() { register(journalRelayCommand) }

// logOptions applies --log-driver: with journald, audit events go to the
// journal and nucleus's own stdout and stderr, which the container's
// process gets or is copied to, become pipes to a relay process. It runs
// last in create and run, once every option was checked, since from then
// on nucleus's own messages go to the journal too. The returned func, run
// before nucleus exits, lets the relay send what is left.
func logOptions(c *cli.Context, o *runtime.CreateOptions) (func(), error) {
	switch c.String("log-driver") {
	case "", "stdio":
		return func() {}, nil
	case "journald":
	default:
		return nil, opterr.Errorf("log-driver", "%q: want stdio or journald", c.String("log-driver"))
	}
	if !journald.Available() {
		return nil, opterr.Errorf("log-driver", "journald: %w", journald.ErrUnavailable)
	}
	if err := spec.ValidateID(o.ID); err != nil {
		return nil, err
	}
	if o.Spec.Process.Terminal {
		return nil, opterr.Errorf("log-driver", "journald: the process has a terminal (process.terminal); its output is not a stream to relay")
	}
	o.Audit = o.Audit.WithSink(o.ID, journald.AuditSink(o.ID))
	wait, err := startRelay(o.ID, !o.Detach)
	if err != nil {
		return nil, opterr.Errorf("log-driver", "journald: %w", err)
	}
	return wait, nil
}

// startRelay starts the relay and makes nucleus's fds 1 and 2 its pipes.
// For an attached run, the func it returns waits (briefly) for the relay
// to send the last lines: a service manager ends what is left of the
// service once its main process exits.
func startRelay(id string, attached bool) (func(), error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer outW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		return nil, err
	}
	defer errW.Close()
	cmd := exec.Command("/proc/self/exe", journalRelayCommand.Name, id)
	cmd.ExtraFiles = []*os.File{outR, errR}
	// Nothing of nucleus's environment (a secret's env:VAR among it).
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	outR.Close()
	errR.Close()
	if err != nil {
		return nil, err
	}
	if err := unix.Dup3(int(outW.Fd()), 1, 0); err != nil {
		return nil, err
	}
	if err := unix.Dup3(int(errW.Fd()), 2, 0); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		// Our ends closed, the relay ends once the container's are too
		// (at once for a detached one that still runs: it holds them).
		if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			_ = unix.Dup3(int(null.Fd()), 1, 0)
			_ = unix.Dup3(int(null.Fd()), 2, 0)
			null.Close()
		}
		if !attached {
			return
		}
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}, nil
}
