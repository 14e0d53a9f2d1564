package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/spec"
)

func init() { register(restoreCommand) }

var restoreCommand = &cli.Command{
	Name:      "restore",
	Usage:     "restore a container from a CRIU checkpoint; exit with its process's status",
	ArgsUsage: "<container-id>",
	Flags: append(criuFlags(),
		&cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket that receives the pty master when process.terminal is true"},
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "path to the bundle directory (holds config.json)"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the process is restored"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the restored init's host pid to this file"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "do not reap the container's process as a subreaper"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot_root to jail the process (for ramfs roots)"},
		&cli.StringFlag{Name: "lsm-profile", Usage: "LSM profile for the restored container (TYPE:NAME)"},
		&cli.StringFlag{Name: "lsm-mount-context", Usage: "LSM mount context for the restore"},
	),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		id := c.Args().First()
		if err := spec.ValidateID(id); err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		bundle := c.String("bundle")
		s, err := spec.Load(bundle)
		if err != nil {
			return err
		}
		opts := runtime.CreateOptions{
			ID:            id,
			Bundle:        bundle,
			Spec:          s,
			PidFile:       c.String("pid-file"),
			ConsoleSocket: c.String("console-socket"),
			NoPivot:       c.Bool("no-pivot"),
			Detach:        c.Bool("detach"),
			NoSubreaper:   c.Bool("no-subreaper"),
		}
		status, err := r.Restore(opts, checkpointOptions(c))
		if err != nil {
			return err
		}
		os.Exit(status)
		return nil
	},
}
