package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/isolation"
	"github.com/nucleus-run/nucleus/isolation/host"
	"github.com/nucleus-run/nucleus/nixbundle"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
)

func init() { register(bundleCommand) }

var bundleCommand = &cli.Command{
	Name:      "bundle",
	Usage:     "build a Nix flake output and write an OCI bundle of its closure",
	ArgsUsage: "FLAKEREF#ATTR -o DIR [--entrypoint PATH] [-- ARGS...]",
	Description: `Builds FLAKEREF#ATTR with Nix and writes DIR/config.json, DIR/rootfs (empty
mount points; each store path of the closure is bind-mounted read-only at its
/nix/store path), DIR/attestation.json and DIR/gcroot (a GC root).
process.args is the entrypoint followed by ARGS (after --), as
'docker run --entrypoint PROG IMAGE ARGS' runs PROG ARGS; 'nucleus sandbox
--bundle DIR -- CMD' later replaces all of process.args (with --entrypoint,
sandbox too puts its args after PROG). Flags may come before or after
FLAKEREF#ATTR. An unchanged local flake is bundled from the cache without
running Nix (see README). On a terminal Nix shows its progress and build
logs; a Nix failure is printed as Nix printed it, then one nucleus line.`,
	Flags: bundleFlags(),
	Action: func(c *cli.Context) error {
		o, err := parseBundleArgs(c)
		if err != nil {
			return err
		}
		// Nix's errors reach the user as Nix printed them, and its
		// progress too on a terminal; nucleus adds one summary line.
		o.NixStderr = os.Stderr
		res, err := nixbundle.Bundle(context.Background(), o)
		if err != nil {
			return err
		}
		how := "built with nix"
		if res.CacheHit {
			how = "cached"
		}
		fmt.Fprintf(c.App.Writer, "%s: %s (%d store paths, entrypoint %s, %s)\n",
			res.Dir, res.Plan.Output, len(res.Plan.Closure), res.Plan.Entrypoint, how)
		return nil
	},
}

func bundleFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle directory to write (replaced atomically if it is a bundle)"},
		&cli.StringFlag{Name: "entrypoint", Usage: "program to run: a path in the closure, or relative to the output (bin/sh)"},
		&cli.BoolFlag{Name: "no-cache", Usage: "always run Nix (the cache is still refreshed)"},
		&cli.StringFlag{Name: "cache-dir", Usage: "bundle cache directory (default bundle/ in $NUCLEUS_CACHE_DIR or /var/cache/nucleus)"},
		&cli.StringFlag{Name: "mode", Value: string(policy.ModeAgent), Usage: "isolation mode written into config.json: agent, strict-agent, or \"\" for a plain config"},
	}
}

// parseBundleArgs reads FLAKEREF#ATTR and the ARGS after -- (main's
// flagsFirst has moved the flags given after FLAKEREF before it).
func parseBundleArgs(c *cli.Context) (nixbundle.Options, error) {
	o := nixbundle.Options{
		Dir:        c.String("output"),
		Entrypoint: c.String("entrypoint"),
		NoCache:    c.Bool("no-cache"),
		CacheDir:   c.String("cache-dir"),
	}
	mode := c.String("mode")
	pos := c.Args().Slice()
	if i := slices.Index(pos, "--"); i >= 0 {
		o.Args = append([]string{}, pos[i+1:]...)
		pos = pos[:i]
	}
	if len(pos) != 1 {
		return o, &usageError{path: "bundle", msg: fmt.Sprintf("requires exactly 1 argument FLAKEREF#ATTR, got %d", len(pos))}
	}
	o.Ref = pos[0]
	var err error
	if o.Transform, o.Planned, err = bundleMode(mode); err != nil {
		return o, err
	}
	if o.Dir == "" {
		return o, errors.New("bundle: no output directory: pass -o DIR")
	}
	return o, nil
}

// bundleMode returns the transform that writes an isolation mode's config
// into the bundle, so runc and runsc running it enforce the same seccomp,
// capabilities, namespaces and masks (Landlock is nucleus's own step at
// run time), and what the attestation records of it. Production needs
// pinned profiles and limits given at run time, so it is not a bundle mode.
func bundleMode(name string) (func(*specs.Spec, string) (*specs.Spec, error), *nixbundle.Planned, error) {
	mode, err := policy.ParseMode(name)
	if err != nil || mode == policy.ModeNone {
		return nil, nil, err
	}
	if mode == policy.ModeProduction {
		return nil, nil, errors.New("bundle --mode production: production needs pinned profiles and limits at run time; bundle with agent or strict-agent and run with --mode production")
	}
	transform := func(s *specs.Spec, _ string) (*specs.Spec, error) {
		return isolation.Plan(s, mode, engine.Native)
	}
	return transform, &nixbundle.Planned{Mode: string(mode), Host: host.Fixed}, nil
}
