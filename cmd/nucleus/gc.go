package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func init() { register(gcCommand) }

var gcCommand = &cli.Command{
	Name:      "gc",
	Usage:     "remove long-lived sandboxes past their --ttl or whose command has exited (writing their workspaces back)",
	ArgsUsage: " ",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		removed, err := r.Gc()
		for _, id := range removed {
			fmt.Println(id)
		}
		return err
	},
}
