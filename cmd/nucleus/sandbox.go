package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/nixbundle"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/sandbox"
	"github.com/nucleus-run/nucleus/spec"
)

func init() { register(sandboxCommand) }

var sandboxCommand = &cli.Command{
	Name:  "sandbox",
	Usage: "run a command in a fresh isolated container and remove every trace, or (--detach) start a long-lived sandbox",
	Description: `Runs CMD ARGS (after --) in place of the bundle's process.args, as
'docker run IMAGE CMD' replaces an image's command; without them the bundle's
process.args run. With --entrypoint PROG the words after -- are PROG's
arguments, as with 'docker run --entrypoint PROG IMAGE ARGS' and as
'nucleus bundle --entrypoint PROG -- ARGS' writes them. Everything after --
is the command's, flag-like words included.

With --detach the sandbox keeps running: nucleus exec ID CMD runs more
commands in it, nucleus cp copies files in and out, and nucleus delete ID
ends it (writing copy-in-out workspaces back). Without a command a detached
sandbox holds itself open until deleted or its --ttl passes.`,
	ArgsUsage: "[flags] [-- CMD [ARGS...]]",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "OCI bundle whose rootfs to use"},
		&cli.StringFlag{Name: "flake", Usage: "FLAKEREF#ATTR to bundle with Nix (cached) and run instead of --bundle"},
		&cli.StringFlag{Name: "entrypoint", Usage: "program to run with the arguments after -- (default: the first word after --)"},
		&cli.StringFlag{Name: "id", Usage: "sandbox id (default: a random sbx-… id)"},
		&cli.DurationFlag{Name: "timeout", Usage: "kill the sandbox after this long (exit status 124)"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "start a long-lived sandbox, print its id and return"},
		&cli.DurationFlag{Name: "ttl", Usage: "with --detach: remove the sandbox after this long (e.g. 30m)"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (KEY=VALUE, or KEY to take it from nucleus's environment)"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "read KEY=VALUE lines from a file (# comments and blank lines skipped)"},
		&cli.StringFlag{Name: "cwd", Aliases: []string{"w"}, Usage: "working directory in the sandbox (default: the first workspace, else the bundle's)"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID] to run as"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a pseudo-terminal"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open (otherwise the command's stdin is empty)"},
		&cli.BoolFlag{Name: "json", Usage: "after the command's output, print its result as one JSON line on stdout"},
		&cli.StringFlag{Name: "pool", Usage: "take a started sandbox from this warm pool (nucleus pool create) and run the command in it"},
		&cli.StringFlag{Name: "workspace-max-bytes", Usage: "most a copy-in-out workspace's write-back may write on the host (e.g. 512M, 10G; max: none); default 4G"},
		engineFlag(""),
	}, policyFlags(string(policy.ModeAgent))...),
	Action: func(c *cli.Context) error {
		args := c.Args().Slice()
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		if ep := c.String("entrypoint"); ep != "" {
			args = append([]string{ep}, args...)
		}
		if c.IsSet("pool") {
			return sandboxFromPool(c, args)
		}
		bundle, err := bundleOrFlake(c, "sandbox")
		if err != nil {
			return err
		}
		detach := c.Bool("detach")
		switch {
		case c.IsSet("ttl") && !detach:
			return errors.New("--ttl: applies to a detached sandbox (--detach); a one-shot sandbox takes --timeout")
		case c.Bool("json") && (detach || c.Bool("tty")):
			return errors.New("--json: reports a one-shot sandbox's result; not with --detach or --tty")
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
		env, err := envFlags(c)
		if err != nil {
			return err
		}
		netc, err := networkConfig(c, po.Mode)
		if err != nil {
			return err
		}
		o := sandbox.Options{
			Root: c.String("root"), Bundle: bundle, Spec: s, ID: c.String("id"), Engine: string(engine),
			Env: env, Cwd: c.String("cwd"), User: c.String("user"), TTL: c.Duration("ttl"), Timeout: c.Duration("timeout"),
			AuditLog: c.String("audit-log"), Debug: c.Bool("debug"), Policy: &po, WorkspaceMaxBytes: maxBytes,
			Network: netc,
		}
		ctx := context.Background()
		if detach {
			if len(args) > 0 {
				o.Command = args
			}
			if c.Bool("tty") {
				return errors.New("--tty: a detached sandbox has no terminal; use nucleus exec -t ID CMD")
			}
			sb, err := sandbox.New(ctx, o)
			if err != nil {
				return err
			}
			fmt.Println(sb.ID())
			return nil
		}
		out := &lastByteWriter{w: os.Stdout}
		cmd := sandbox.Cmd{Args: args, Stdout: out, Stderr: os.Stderr, Tty: c.Bool("tty")}
		// A terminal, or runsc (which takes only nucleus's own streams),
		// gets nucleus's stdio as it is.
		cmd.Inherit = cmd.Tty || engine == runtime.EngineGvisor
		if c.Bool("interactive") {
			cmd.Stdin = os.Stdin
		}
		stopDNS := serveDNSHere()
		res, err := sandbox.Run(ctx, o, cmd)
		stopDNS()
		if err != nil {
			return err
		}
		reportExit(res)
		if c.Bool("json") {
			if out.last != 0 && out.last != '\n' {
				fmt.Println()
			}
			if err := printResultJSON(res); err != nil {
				return err
			}
		}
		os.Exit(res.Status)
		return nil
	},
}

// printResultJSON prints a sandbox's result as one JSON line: the exit's
// fields, its status as exit_code.
func printResultJSON(res runtime.Exit) error {
	fields := res.Fields()
	fields["exit_code"] = fields["status"]
	delete(fields, "status")
	return printJSONLine(fields)
}

func printJSONLine(fields map[string]any) error {
	data, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	fmt.Println(string(data))
	return nil
}

// lastByteWriter remembers the last byte written, so that --json's line
// starts on a line of its own.
type lastByteWriter struct {
	w    io.Writer
	last byte
}

func (l *lastByteWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.last = p[n-1]
	}
	return n, err
}

// envFlags reads --env-file (in order) then --env: KEY=VALUE entries, a
// bare KEY taking nucleus's own value, as podman does.
func envFlags(c *cli.Context) ([]string, error) {
	var env []string
	for _, file := range c.StringSlice("env-file") {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--env-file %s: %w", file, err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			kv, err := envEntry(line)
			if err != nil {
				return nil, fmt.Errorf("--env-file %s: line %d: %w", file, i+1, err)
			}
			env = append(env, kv)
		}
	}
	for _, e := range c.StringSlice("env") {
		kv, err := envEntry(e)
		if err != nil {
			return nil, fmt.Errorf("--env %q: %w", e, err)
		}
		env = append(env, kv)
	}
	return env, nil
}

func envEntry(e string) (string, error) {
	k, _, hasValue := strings.Cut(e, "=")
	if k == "" || strings.ContainsAny(k, " \t\x00") {
		return "", fmt.Errorf("want KEY=VALUE")
	}
	if !hasValue {
		return k + "=" + os.Getenv(k), nil
	}
	return e, nil
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

// bundleOrFlake is the bundle a command's --bundle or --flake names (the
// flake built into the cache); exactly one of them is required.
func bundleOrFlake(c *cli.Context, cmd string) (string, error) {
	bundle := c.String("bundle")
	if ref := c.String("flake"); ref != "" {
		if bundle != "" {
			return "", fmt.Errorf("%s: give --flake or --bundle, not both", cmd)
		}
		return flakeBundle(ref)
	}
	if bundle == "" {
		return "", fmt.Errorf("%s: --bundle DIR or --flake REF is required", cmd)
	}
	return bundle, nil
}
