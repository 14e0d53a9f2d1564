package main

import "github.com/urfave/cli/v2"

func init() { register(versionCommand) }

// versionCommand prints what --version prints.
var versionCommand = &cli.Command{
	Name:  "version",
	Usage: "print the version (same as --version)",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		printVersion(c)
		return nil
	},
}
