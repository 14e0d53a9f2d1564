package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/cachedir"
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
		ex, err := r.SandboxResult(o)
		if err != nil {
			return err
		}
		reportExit(ex)
		os.Exit(ex.Status)
		return nil
	},
}

// flakeBundle keeps one bundle per flake reference in sandbox/ of the
// cache dir ($NUCLEUS_CACHE_DIR/sandbox, /var/cache/nucleus/sandbox), so
// repeated sandboxes of an unchanged flake skip Nix entirely. The dirs must
// be ours alone (a bundle found there is run as is) and searchable by
// others: the sandbox's unprivileged root must reach the rootfs.
func flakeBundle(ref string) (string, error) {
	sandboxBundles, err := cachedir.Sub("sandbox")
	if err != nil {
		return "", fmt.Errorf("--flake %s: %w", ref, err)
	}
	sum := sha256.Sum256([]byte(ref))
	dir := filepath.Join(sandboxBundles, hex.EncodeToString(sum[:8]))
	for _, d := range []string{filepath.Dir(sandboxBundles), sandboxBundles} {
		_ = os.Chmod(d, 0o711)
	}
	if _, err := nixbundle.Bundle(context.Background(), nixbundle.Options{Ref: ref, Dir: dir}); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return "", fmt.Errorf("--flake %s: %w", ref, err)
	}
	return dir, nil
}
