package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/seccomp"
	"github.com/nucleus-run/nucleus/spec"
)

func init() { register(policyCommand) }

var policyCommand = &cli.Command{
	Name:  "policy",
	Usage: "show, check, trace and generate isolation policies",
	Subcommands: []*cli.Command{
		{
			Name:  "show",
			Usage: "print the built-in seccomp allowlist of a mode and its syscall count",
			Flags: []cli.Flag{&cli.StringFlag{Name: "mode", Value: "agent", Usage: "agent or strict-agent"}},
			Action: func(c *cli.Context) error {
				if err := checkArgs(c, 0, exactArgs); err != nil {
					return err
				}
				mode, err := policy.ParseMode(c.String("mode"))
				if err != nil {
					return err
				}
				p := seccomp.Builtin(seccomp.Options{DenyMemfd: mode == policy.ModeStrictAgent})
				fmt.Fprintf(os.Stderr, "%s: %d syscalls allowed, default action %s\n", mode, seccomp.AllowedSyscallCount(p), p.DefaultAction)
				return writeJSON("", p)
			},
		},
		{
			Name:      "check",
			Usage:     "check a policy file (seccomp profile, caps or Landlock policy) parses and matches its pinned SHA-256",
			ArgsUsage: "FILE",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "sha256", Usage: "expected SHA-256 of FILE"},
				&cli.StringFlag{Name: "kind", Usage: "seccomp, caps or landlock (default: told by the file's fields)"},
			},
			Action: func(c *cli.Context) error {
				if err := checkArgs(c, 1, exactArgs); err != nil {
					return err
				}
				file := c.Args().First()
				data, err := policy.ReadPinned("policy", file, c.String("sha256"))
				if err != nil {
					return err
				}
				kind := c.String("kind")
				if kind == "" {
					if kind, err = policy.DetectKind(file, data); err != nil {
						return err
					}
				}
				switch kind {
				case policy.KindSeccomp:
					p, err := seccomp.ParseProfile(file, data)
					if err != nil {
						return err
					}
					fmt.Printf("%s: seccomp profile, %d syscalls allowed, default %s\n", file, seccomp.AllowedSyscallCount(p), p.DefaultAction)
				case policy.KindCaps:
					cp, err := policy.ParseCapsPolicy(file, data)
					if err != nil {
						return err
					}
					fmt.Printf("%s: capability policy keeping %v\n", file, cp.Keep)
				case policy.KindLandlock:
					r, err := policy.ParseLandlockRules(file, data)
					if err != nil {
						return err
					}
					fmt.Printf("%s: Landlock policy: read %v, write %v, exec %v, no_exec_root %v\n", file, r.Read, r.Write, r.Exec, r.NoExecRoot)
				default:
					return &usageError{path: "policy check", msg: fmt.Sprintf("--kind %q: want %s", kind, strings.Join(policy.Kinds, ", "))}
				}
				sum := sha256.Sum256(data)
				fmt.Printf("sha256 %s\n", hex.EncodeToString(sum[:]))
				return nil
			},
		},
		{
			Name:      "trace",
			Usage:     "run a command in a sandbox and record exactly the syscalls it uses",
			ArgsUsage: "--bundle DIR [-o FILE] -- CMD [ARGS...]",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "OCI bundle whose rootfs to use"},
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the trace here (default stdout)"},
			}, &cli.StringFlag{Name: "workspace", Usage: "HOST[:/workspace][:bind-rw|bind-ro|copy-in-out]"}),
			Action: func(c *cli.Context) error {
				args := c.Args().Slice()
				if len(args) > 0 && args[0] == "--" {
					args = args[1:]
				}
				if c.String("bundle") == "" || len(args) == 0 {
					return errors.New("policy trace: want --bundle DIR -- CMD [ARGS...]")
				}
				// Relative paths are the caller's: resolve every path
				// the command was given against the caller's directory
				// first.
				bundle, err := absFlag("--bundle", c.String("bundle"))
				if err != nil {
					return err
				}
				output, err := absFlag("--output", c.String("output"))
				if err != nil {
					return err
				}
				r, err := newRuntime(c)
				if err != nil {
					return err
				}
				s, err := spec.Load(bundle)
				if err != nil {
					return err
				}
				o := runtime.SandboxOptions{Bundle: bundle, Spec: s, Args: args, Policy: policy.Options{Mode: policy.ModeAgent}}
				if arg := c.String("workspace"); arg != "" {
					ws, err := policy.ParseWorkspace(arg)
					if err != nil {
						return err
					}
					if ws.Source, err = absFlag("--workspace", ws.Source); err != nil {
						return err
					}
					o.Policy.Workspaces = []*policy.Workspace{ws}
				}
				t, err := r.Trace(o)
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "traced %d syscalls; the command exited %d\n", len(t.Syscalls), t.Status)
				if len(t.Refused) > 0 {
					fmt.Fprintf(os.Stderr, "refused (by the built-in allowlist, or not among the syscalls a profile may gain from a trace; never allowed in a generated profile): %s\n", strings.Join(t.Refused, " "))
				}
				return writeJSON(output, t)
			},
		},
		{
			Name:      "generate",
			Usage:     "turn traces into a minimal seccomp allowlist (kill by default)",
			ArgsUsage: "TRACE... [-o FILE]",
			Flags:     []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the profile here (default stdout)"}},
			Description: "The profile is the built-in agent allowlist cut down to the traced syscalls: its argument\n" +
				"filters (clone, socket, socketpair, ioctl, prctl, personality, memfd_create) and refusals\n" +
				"(mount, ptrace, bpf, unshare, ...) stay whatever the traces say. Of the traced syscalls\n" +
				"the allowlist does not mention, only those on a curated list of ordinary, low-risk calls\n" +
				"(xattr reads, inotify, timerfd, splice, sync, ...; see seccomp/extension.go) are added;\n" +
				"any other is left out with a warning (the tracer refuses them, so only an edited trace\n" +
				"lists one): edit the profile by hand to allow it. Everything else kills the process.",
			Action: func(c *cli.Context) error {
				if err := checkArgs(c, 1, minArgs); err != nil {
					return err
				}
				var traces []*seccomp.Trace
				for _, f := range c.Args().Slice() {
					data, err := os.ReadFile(f)
					if err != nil {
						return fmt.Errorf("read trace %s: %w", f, err)
					}
					t, err := seccomp.ParseTrace(f, data)
					if err != nil {
						return err
					}
					traces = append(traces, t)
				}
				p, leftOut := seccomp.Generate(traces)
				for _, n := range leftOut {
					fmt.Fprintf(os.Stderr, "policy generate: %s is not added: not among the syscalls a profile may gain from a trace; edit the profile by hand to allow it\n", n)
				}
				fmt.Fprintf(os.Stderr, "profile allows %d syscalls\n", seccomp.AllowedSyscallCount(p))
				return writeJSON(c.String("output"), p)
			},
		},
	},
}

// absFlag makes a path given to flag absolute against the current
// directory ("" stays "").
func absFlag(flag, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", flag, p, err)
	}
	return abs, nil
}

func writeJSON(file string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if file == "" {
		_, err = os.Stdout.Write(data)
		return err
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
