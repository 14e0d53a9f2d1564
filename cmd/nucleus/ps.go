package main

import (
	"fmt"
	"os"

	"github.com/nucleus-run/nucleus/runtime"
	"github.com/urfave/cli/v2"
)

func init() { register(psCommand) }

var psCommand = &cli.Command{
	Name:      "ps",
	Usage:     "show the processes running in a container",
	ArgsUsage: "<container-id> [ps options]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, minArgs); err != nil {
			return err
		}
		format := c.String("format")
		if format != "table" && format != "json" {
			return fmt.Errorf("--format %q: want table or json", format)
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		return r.Ps(c.Args().First(), runtime.PsOptions{Format: format, Args: c.Args().Slice()[1:]}, os.Stdout)
	},
}
