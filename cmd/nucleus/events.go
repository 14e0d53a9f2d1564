package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/opencontainers/runc/types"
	"github.com/urfave/cli/v2"
)

func init() { register(eventsCommand) }

var eventsCommand = &cli.Command{
	Name:      "events",
	Usage:     "print container events (OOM notifications, CPU, memory and IO statistics) as JSON lines",
	ArgsUsage: "<container-id>",
	Description: `Prints a "stats" event every --interval, and an "oom" event when the
container's cgroup reports one, until the container stops. With --stats, prints
one "stats" event and exits.`,
	Flags: []cli.Flag{
		&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "stats collection interval"},
		&cli.BoolFlag{Name: "stats", Usage: "print the container's stats once, then exit"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		id := c.Args().First()
		if c.Bool("stats") {
			e, err := r.Stats(id)
			if err != nil {
				return err
			}
			return enc.Encode(e)
		}
		return r.Events(id, c.Duration("interval"), func(e *types.Event) error { return enc.Encode(e) })
	},
}
