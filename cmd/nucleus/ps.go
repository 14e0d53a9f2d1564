package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

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
		if ok, err := r.GvisorPs(c.Args().First(), format, c.Args().Slice()[1:], os.Stdout); ok {
			return err
		}
		pids, err := r.Processes(c.Args().First())
		if err != nil {
			return err
		}
		if format == "json" {
			if pids == nil {
				pids = []int{}
			}
			return json.NewEncoder(os.Stdout).Encode(pids)
		}
		psArgs := c.Args().Slice()[1:]
		if len(psArgs) == 0 {
			psArgs = []string{"-ef"}
		}
		out, err := exec.Command("ps", psArgs...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ps %s: %w: %s", strings.Join(psArgs, " "), err, out)
		}
		lines := strings.Split(string(out), "\n")
		pidIndex := slices.Index(strings.Fields(lines[0]), "PID")
		if pidIndex < 0 {
			return errors.New("ps output has no PID column")
		}
		fmt.Println(lines[0])
		for _, line := range lines[1:] {
			fields := strings.Fields(line)
			if len(fields) <= pidIndex {
				continue
			}
			if p, err := strconv.Atoi(fields[pidIndex]); err == nil && slices.Contains(pids, p) {
				fmt.Println(line)
			}
		}
		return nil
	},
}
