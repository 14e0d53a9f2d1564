package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/spec"
)

func init() { register(execCommand) }

var execCommand = &cli.Command{
	Name:      "exec",
	Usage:     "run a new process inside a running container",
	ArgsUsage: "<container-id> <command> [args...]  |  --process process.json <container-id>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket that receives the pty master (with --tty --detach)"},
		&cli.StringFlag{Name: "pidfd-socket", Usage: "AF_UNIX socket that receives a pidfd of the process"},
		&cli.StringFlag{Name: "cwd", Usage: "working directory in the container"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (KEY=VALUE)"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "uid[:gid] to run as"},
		&cli.Int64SliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional gids"},
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "path to a process.json describing the whole process"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the process has started"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the process's host pid to this file"},
		&cli.StringFlag{Name: "process-label", Usage: "SELinux label for the process"},
		&cli.StringFlag{Name: "apparmor", Usage: "AppArmor profile for the process"},
		&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs for the process"},
		&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability to the process"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N extra file descriptors (from fd 3 on) to the process"},
		&cli.StringSliceFlag{Name: "cgroup", Usage: "run in an existing sub-cgroup: [controller:]path"},
		&cli.BoolFlag{Name: "ignore-paused", Usage: "allow exec in a paused container"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		status, err := execAction(c)
		if err != nil {
			// runc's exit code for a failed exec, which conmon and the shim
			// tell apart from the process's own status.
			fatalWithCode(fmt.Errorf("exec failed: %w", err), 255)
		}
		finish(nil, status)
		os.Exit(status)
		return nil
	},
}

func execAction(c *cli.Context) (int, error) {
	r, err := newRuntime(c)
	if err != nil {
		return -1, err
	}
	o := runtime.ExecOptions{
		Args:          c.Args().Slice()[1:],
		Env:           c.StringSlice("env"),
		Cwd:           c.String("cwd"),
		User:          c.String("user"),
		Tty:           c.Bool("tty"),
		Caps:          c.StringSlice("cap"),
		Detach:        c.Bool("detach"),
		PidFile:       c.String("pid-file"),
		ConsoleSocket: c.String("console-socket"),
		PidfdSocket:   c.String("pidfd-socket"),
		PreserveFDs:   c.Int("preserve-fds"),
		IgnorePaused:  c.Bool("ignore-paused"),
		SubCgroups:    c.StringSlice("cgroup"),
	}
	for _, g := range c.Int64Slice("additional-gids") {
		if g < 0 || g > 1<<32-1 {
			return -1, fmt.Errorf("--additional-gids %d: out of range", g)
		}
		o.AdditionalGids = append(o.AdditionalGids, uint32(g))
	}
	if c.IsSet("no-new-privs") {
		v := c.Bool("no-new-privs")
		o.NoNewPrivs = &v
	}
	if path := c.String("process"); path != "" {
		p, err := spec.LoadProcess(path)
		if err != nil {
			return -1, err
		}
		o.Process = p
	}
	return r.Exec(c.Args().First(), o)
}
