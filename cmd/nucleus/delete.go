package main

import "github.com/urfave/cli/v2"

func init() { register(deleteCommand) }

var deleteCommand = &cli.Command{
	Name:      "delete",
	Usage:     "remove a stopped container and everything it holds",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill (SIGKILL) a running container first; succeed if it does not exist"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		return r.Delete(c.Args().First(), c.Bool("force"))
	},
}
