package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/nixbundle"
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
		&cli.StringFlag{Name: "flake", Usage: "FLAKEREF#ATTR to bundle with Nix (cached) and run instead of --bundle"},
		&cli.StringFlag{Name: "id", Usage: "container id (default: a random sbx-… id)"},
		&cli.DurationFlag{Name: "timeout", Usage: "kill the sandbox after this long (exit status 124)"},
		&cli.StringFlag{Name: "workspace-max-bytes", Usage: "most a copy-in-out workspace's write-back may write on the host (e.g. 512M, 10G; max: none); default 4G"},
		engineFlag(""),
	}, policyFlags(string(policy.ModeAgent))...),
	Action: func(c *cli.Context) error {
		args := c.Args().Slice()
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		bundle := c.String("bundle")
		if ref := c.String("flake"); ref != "" {
			if bundle != "" {
				return errors.New("sandbox: give --flake or --bundle, not both")
			}
			var err error
			if bundle, err = flakeBundle(ref); err != nil {
				return err
			}
		}
		if bundle == "" {
			return errors.New("sandbox: --bundle DIR or --flake REF is required")
		}
		r, err := newRuntime(c)
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
		engine, err := engineOption(c)
		if err != nil {
			return err
		}
		maxBytes, err := parseLimit(c, "workspace-max-bytes", parseBytes)
		if err != nil {
			return err
		}
		o := runtime.SandboxOptions{
			Engine: engine,
			ID:     c.String("id"), Bundle: bundle, Spec: s, Args: args, Timeout: c.Duration("timeout"),
			AuditLog: c.String("audit-log"), Debug: c.Bool("debug"), Policy: po, WorkspaceMaxBytes: maxBytes,
		}
		status, err := r.Sandbox(o)
		if err != nil {
			return err
		}
		os.Exit(status)
		return nil
	},
}

// flakeBundle is the cached bundle of ref (see nixbundle.SandboxBundle),
// kept in use until this process exits.
func flakeBundle(ref string) (string, error) {
	// The lock is released when the process exits: after the sandbox.
	dir, _, err := nixbundle.SandboxBundle(context.Background(), ref, os.Stderr)
	if err != nil {
		return "", fmt.Errorf("--flake %s: %w", ref, err)
	}
	return dir, nil
}
