package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/nixbundle"
)

func init() { register(verifyCommand) }

var verifyCommand = &cli.Command{
	Name:      "verify",
	Usage:     "check a bundle against its attestation.json (config.json and every store path)",
	ArgsUsage: "<bundle-dir>",
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		a, err := nixbundle.Verify(c.Args().First())
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s: ok (config.json and %d store paths match %s)\n",
			c.Args().First(), len(a.StorePaths), nixbundle.AttestationName)
		return nil
	},
}
