package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func init() { register(runCommand) }

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "create and start a container; exit with its process's status",
	ArgsUsage: "<container-id>",
	Flags: append(append(append(createFlags(), policyFlags("")...), healthFlags()...),
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once the process has started"},
		&cli.BoolFlag{Name: "keep", Usage: "keep the stopped container's state (delete it later)"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "do not reap the container's process as a subreaper"},
	),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		so, err := healthOptions(c)
		if err != nil {
			return err
		}
		r, opts, err := createOptions(c)
		if err != nil {
			return err
		}
		opts.Detach = c.Bool("detach")
		opts.Keep = c.Bool("keep")
		opts.NoSubreaper = c.Bool("no-subreaper")
		ex, svc, err := runService(r, opts, so)
		if err != nil {
			return err
		}
		reportExit(ex)
		if line := svc.Line(opts.ID); line != "" {
			fmt.Fprintln(os.Stderr, "nucleus: "+line)
			if ex.Status == 0 {
				ex.Status = 1
			}
		}
		finish(nil, ex.Status)
		os.Exit(ex.Status)
		return nil
	},
}
