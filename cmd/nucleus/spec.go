package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/spec"
)

func init() { register(specCommand) }

var specCommand = &cli.Command{
	Name:  "spec",
	Usage: "write a starting config.json into a bundle directory",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "bundle directory to write config.json into"},
		&cli.BoolFlag{Name: "rootless", Usage: "write a config for a container run by an unprivileged user"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		file := filepath.Join(c.String("bundle"), spec.ConfigName)
		if _, err := os.Stat(file); err == nil {
			return fmt.Errorf("%s already exists; remove it first", file)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", file, err)
		}
		data, err := json.MarshalIndent(spec.Default(c.Bool("rootless")), "", "\t")
		if err != nil {
			return err
		}
		if err := os.WriteFile(file, data, 0o666); err != nil {
			return fmt.Errorf("write %s: %w", file, err)
		}
		return nil
	},
}
