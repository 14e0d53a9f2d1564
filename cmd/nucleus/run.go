package main

import (
	"os"

	"github.com/urfave/cli/v2"
)

func init() { register(runCommand) }

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "create and start a container; exit with its process's status",
	ArgsUsage: "<container-id>",
	Flags: append(append(createFlags(), policyFlags("")...),
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the process has started"},
		&cli.BoolFlag{Name: "keep", Usage: "keep the stopped container's state (delete it later)"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "do not reap the container's process as a subreaper"},
	),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		r, opts, err := createOptions(c)
		if err != nil {
			return err
		}
		opts.Detach = c.Bool("detach")
		opts.Keep = c.Bool("keep")
		opts.NoSubreaper = c.Bool("no-subreaper")
		ex, err := r.RunResult(opts)
		if err != nil {
			return err
		}
		reportExit(ex)
		finish(nil, ex.Status)
		os.Exit(ex.Status)
		return nil
	},
}
