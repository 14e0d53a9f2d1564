package main

import (
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/runtime"
)

func init() { register(killCommand) }

var killCommand = &cli.Command{
	Name:      "kill",
	Usage:     "send a signal (default SIGTERM) to a container's init, or with --all to all its processes",
	ArgsUsage: "<container-id> [signal]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "signal every process in the container"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		if err := checkArgs(c, 2, maxArgs); err != nil {
			return err
		}
		raw := c.Args().Get(1)
		if raw == "" {
			raw = "SIGTERM"
		}
		sig, err := runtime.ParseSignal(raw)
		if err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		return r.Kill(c.Args().First(), sig, c.Bool("all"))
	},
}
