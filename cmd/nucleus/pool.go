package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/pool"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/spec"
)

func init() { register(poolCommand) }

var poolCommand = &cli.Command{
	Name:  "pool",
	Usage: "keep warm pools of started sandboxes (nucleus sandbox --pool NAME -- CMD takes one)",
	Subcommands: []*cli.Command{
		{
			Name:      "create",
			Usage:     "create a pool and start filling it",
			ArgsUsage: "NAME",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "OCI bundle whose rootfs to use"},
				&cli.StringFlag{Name: "flake", Usage: "FLAKEREF#ATTR to bundle with Nix (cached) instead of --bundle"},
				&cli.IntFlag{Name: "size", Value: 1, Usage: "sandboxes to keep ready"},
				&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (KEY=VALUE)"},
				&cli.StringSliceFlag{Name: "env-file", Usage: "read KEY=VALUE lines from a file"},
				&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID] the sandboxes' commands run as"},
				&cli.BoolFlag{Name: "no-fill", Usage: "don't start filling (nucleus pool fill NAME does)"},
			}, policyFlags(string(policy.ModeAgent))...),
			Action: poolCreate,
		},
		{
			Name:   "ls",
			Usage:  "list the pools",
			Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "one JSON object per line"}},
			Action: poolList,
		},
		{
			Name:      "rm",
			Usage:     "remove a pool and all its sandboxes",
			ArgsUsage: "NAME",
			Action: func(c *cli.Context) error {
				p, name, err := poolArg(c)
				if err != nil {
					return err
				}
				return p.Remove(name)
			},
		},
		{
			Name:      "fill",
			Usage:     "start sandboxes until the pool is full (returns at once if a fill runs)",
			ArgsUsage: "NAME",
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "fill in the background"}},
			Action: func(c *cli.Context) error {
				p, name, err := poolArg(c)
				if err != nil {
					return err
				}
				if c.Bool("detach") {
					if _, err := p.Load(name); err != nil {
						return err
					}
					return p.Refill(name)
				}
				return p.Fill(name)
			},
		},
		{
			// Run detached by sandbox --pool once its command's status is
			// out: destroys the used sandbox.
			Name:      "release",
			Hidden:    true,
			ArgsUsage: "NAME ID",
			Action: func(c *cli.Context) error {
				if err := checkArgs(c, 2, exactArgs); err != nil {
					return err
				}
				r, err := newRuntime(c)
				if err != nil {
					return err
				}
				p := &pool.Pools{R: r}
				return p.Release(c.Args().Get(0), c.Args().Get(1), false)
			},
		},
	},
}

func poolArg(c *cli.Context) (*pool.Pools, string, error) {
	if err := checkArgs(c, 1, exactArgs); err != nil {
		return nil, "", err
	}
	r, err := newRuntime(c)
	if err != nil {
		return nil, "", err
	}
	return &pool.Pools{R: r}, c.Args().First(), nil
}

func poolCreate(c *cli.Context) error {
	p, name, err := poolArg(c)
	if err != nil {
		return err
	}
	bundle, err := bundleOrFlake(c, "pool create")
	if err != nil {
		return err
	}
	s, err := spec.Load(bundle)
	if err != nil {
		return err
	}
	po, err := policyOptions(c)
	if err != nil {
		return err
	}
	env, err := envFlags(c)
	if err != nil {
		return err
	}
	netc, err := networkConfig(c, po.Mode)
	if err != nil {
		return err
	}
	o := runtime.SandboxOptions{Bundle: bundle, Spec: s, Env: env, User: c.String("user"), Policy: po, Network: netc,
		AuditLog: c.String("audit-log")}
	if err := p.Create(pool.Config{Name: name, Size: c.Int("size"), Options: o, WorkspaceExec: c.Bool("workspace-exec")}); err != nil {
		return err
	}
	if c.Bool("no-fill") {
		return nil
	}
	return p.Refill(name)
}

func poolList(c *cli.Context) error {
	r, err := newRuntime(c)
	if err != nil {
		return err
	}
	list, err := (&pool.Pools{R: r}).List()
	if err != nil {
		return err
	}
	if c.Bool("json") {
		for _, s := range list {
			data, _ := json.Marshal(s)
			fmt.Println(string(data))
		}
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSIZE\tREADY\tTAKEN\tFILLING")
	for _, s := range list {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%v\n", s.Name, s.Size, s.Ready, s.Taken, s.Filling)
	}
	return w.Flush()
}
