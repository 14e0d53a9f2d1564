package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/spec"
)

func init() { register(sandboxCommand) }

var sandboxCommand = &cli.Command{
	Name:      "sandbox",
	Usage:     "run one command in a fresh isolated container, start to finish, and remove every trace",
	ArgsUsage: "[flags] -- CMD [ARGS...]",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "OCI bundle whose rootfs to use"},
		&cli.StringFlag{Name: "id", Usage: "container id (default: a random sbx-… id)"},
		&cli.DurationFlag{Name: "timeout", Usage: "kill the sandbox after this long (exit status 124)"},
	}, policyFlags(string(policy.ModeAgent))...),
	Action: func(c *cli.Context) error {
		args := c.Args().Slice()
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		bundle := c.String("bundle")
		if bundle == "" {
			return errors.New("sandbox: --bundle DIR is required")
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		s, err := spec.Load(bundle)
		if err != nil {
			return err
		}
		mode, err := policy.ParseMode(c.String("mode"))
		if err != nil {
			return err
		}
		o := runtime.SandboxOptions{
			ID: c.String("id"), Bundle: bundle, Spec: s, Args: args, Timeout: c.Duration("timeout"),
			AuditLog: c.String("audit-log"), Debug: c.Bool("debug"),
			Policy: policy.Options{Mode: mode, Net: c.String("net"), Pids: c.Int64("pids"), CPUs: c.Float64("cpus")},
		}
		if arg := c.String("workspace"); arg != "" {
			if o.Policy.Workspace, err = policy.ParseWorkspace(arg); err != nil {
				return err
			}
			o.Policy.Workspace.Exec = c.Bool("workspace-exec")
		}
		if m := c.String("memory"); m != "" {
			if o.Policy.MemoryLimit, err = parseBytes(m); err != nil {
				return fmt.Errorf("--memory %q: %w", m, err)
			}
		}
		if o.Policy.Seccomp, o.Policy.KeepCaps, err = pinnedPolicies(c, mode); err != nil {
			return err
		}
		status, err := r.Sandbox(o)
		if err != nil {
			return err
		}
		os.Exit(status)
		return nil
	},
}
