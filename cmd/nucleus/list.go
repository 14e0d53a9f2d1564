package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/runtime"
)

func init() { register(listCommand) }

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "list the containers under --root",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only container ids"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
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
		states, err := r.List()
		if err != nil {
			return err
		}
		if err := printList(states, format, c.Bool("quiet")); err != nil {
			return err
		}
		// A container whose state can't be read is listed (status
		// unknown) and named once more on stderr, and list fails, as
		// ls does for what it can't read: a caller sees the rest and
		// knows the list is not all well.
		bad := 0
		for _, s := range states {
			if s.Error != "" {
				fmt.Fprintln(os.Stderr, "nucleus: list: "+s.Error)
				bad++
			}
		}
		if bad > 0 {
			os.Exit(1)
		}
		return nil
	},
}

func printList(states []runtime.State, format string, quiet bool) error {
	if quiet {
		for _, s := range states {
			fmt.Println(s.ID)
		}
		return nil
	}
	if format == "json" {
		return json.NewEncoder(os.Stdout).Encode(states)
	}
	w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
	fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
	for _, s := range states {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.InitProcessPid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
	}
	return w.Flush()
}
