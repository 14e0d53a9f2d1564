package main

import (
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/runtime"
)

func init() { register(checkpointCommand) }

// criuFlags are the CRIU flags checkpoint and restore share.
func criuFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "image-path", Usage: "directory of the CRIU image files (default: ./checkpoint)"},
		&cli.StringFlag{Name: "work-path", Usage: "directory for CRIU's work files and logs"},
		&cli.BoolFlag{Name: "tcp-established", Usage: "allow open TCP connections"},
		&cli.BoolFlag{Name: "ext-unix-sk", Usage: "allow external unix sockets"},
		&cli.BoolFlag{Name: "shell-job", Usage: "allow shell jobs"},
		&cli.BoolFlag{Name: "file-locks", Usage: "handle file locks"},
		&cli.BoolFlag{Name: "lazy-pages", Usage: "use userfaultfd to restore memory pages lazily"},
		&cli.BoolFlag{Name: "auto-dedup", Usage: "deduplicate memory images automatically"},
		&cli.StringFlag{Name: "manage-cgroups-mode", Usage: "cgroups mode: soft, full, strict or ignore (default: soft)"},
		&cli.StringSliceFlag{Name: "empty-ns", Usage: "create a namespace but don't restore its properties"},
	}
}

func checkpointOptions(c *cli.Context) runtime.CheckpointOptions {
	return runtime.CheckpointOptions{
		ImagePath:         c.String("image-path"),
		WorkPath:          c.String("work-path"),
		ParentPath:        c.String("parent-path"),
		LeaveRunning:      c.Bool("leave-running"),
		TCPEstablished:    c.Bool("tcp-established"),
		TCPSkipInFlight:   c.Bool("tcp-skip-in-flight"),
		LinkRemap:         c.Bool("link-remap"),
		ExtUnixSk:         c.Bool("ext-unix-sk"),
		ShellJob:          c.Bool("shell-job"),
		FileLocks:         c.Bool("file-locks"),
		PreDump:           c.Bool("pre-dump"),
		AutoDedup:         c.Bool("auto-dedup"),
		LazyPages:         c.Bool("lazy-pages"),
		StatusFd:          c.Int("status-fd"),
		PageServer:        c.String("page-server"),
		ManageCgroupsMode: c.String("manage-cgroups-mode"),
		EmptyNs:           c.StringSlice("empty-ns"),
		LsmProfile:        c.String("lsm-profile"),
		LsmMountContext:   c.String("lsm-mount-context"),
	}
}

// checkpointCommand's --help also serves as podman's probe for
// checkpoint support.
var checkpointCommand = &cli.Command{
	Name:      "checkpoint",
	Usage:     "checkpoint a running container with CRIU",
	ArgsUsage: "<container-id>",
	Flags: append(criuFlags(),
		&cli.StringFlag{Name: "parent-path", Usage: "previous CRIU images (pre-dump), relative to --image-path"},
		&cli.BoolFlag{Name: "leave-running", Usage: "leave the process running after checkpointing"},
		&cli.BoolFlag{Name: "tcp-skip-in-flight", Usage: "skip in-flight TCP connections"},
		&cli.BoolFlag{Name: "link-remap", Usage: "link unlinked files back when possible"},
		&cli.IntFlag{Name: "status-fd", Value: -1, Usage: "CRIU writes \\0 to this fd once lazy-pages is ready"},
		&cli.StringFlag{Name: "page-server", Usage: "ADDRESS:PORT of the page server"},
		&cli.BoolFlag{Name: "pre-dump", Usage: "dump memory only and leave the container running"},
	),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		return r.Checkpoint(c.Args().First(), checkpointOptions(c))
	},
}
