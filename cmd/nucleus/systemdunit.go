package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/spec"
	"github.com/nucleus-run/nucleus/systemdunit"
)

func init() { register(systemdUnitCommand) }

// systemdUnitCommand takes run's flags as they are (urfave/cli parses
// none of them): it checks them with run's own flag set and writes them
// into ExecStart.
var systemdUnitCommand = &cli.Command{
	Name:            "systemd-unit",
	Usage:           "print a systemd unit that runs the container as a service (nucleus run --mode production in the foreground)",
	ArgsUsage:       "<name> [run flags...]",
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		args := c.Args().Slice()
		if len(args) == 0 || isHelp(strings.TrimLeft(args[0], "-")) {
			return cli.ShowCommandHelp(c, "systemd-unit")
		}
		name := args[0]
		if err := spec.ValidateID(name); err != nil {
			return err
		}
		runArgs, err := unitRunArgs(args[1:])
		if err != nil {
			return err
		}
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("systemd-unit: path of nucleus: %w", err)
		}
		var global []string
		for _, g := range []string{"root", "rootless", "subnet"} {
			if c.IsSet(g) {
				v := c.String(g)
				if g == "root" {
					v, _ = filepath.Abs(v)
				}
				global = append(global, "--"+g, v)
			}
		}
		if c.Bool("systemd-cgroup") {
			global = append(global, "--systemd-cgroup")
		}
		_, err = io.WriteString(c.App.Writer, systemdunit.Unit(systemdunit.Options{Name: name, Nucleus: self, Global: global, RunArgs: runArgs}))
		return err
	},
}

// unitPathFlags name files: systemd starts the service in /, so each is
// made absolute.
var unitPathFlags = map[string]bool{
	"bundle": true, "seccomp-profile": true, "caps-policy": true, "landlock-policy": true,
	"audit-log": true, "pid-file": true, "console-socket": true, "pidfd-socket": true,
}

// unitRunArgs checks args against run's flags and returns them for
// ExecStart: paths absolute, the bundle always given, --mode left out (a
// service runs in production mode).
func unitRunArgs(args []string) ([]string, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	long := map[string]string{}
	for _, f := range runCommand.Flags {
		if err := f.Apply(fs); err != nil {
			return nil, err
		}
		for _, n := range f.Names()[1:] {
			long[n] = f.Names()[0]
		}
	}
	if err := fs.Parse(args); err != nil {
		msg := strings.Replace(err.Error(), "flag provided but not defined: -", "unknown run flag --", 1)
		if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
			msg = "--" + name + ": needs a value"
		}
		return nil, &usageError{path: "systemd-unit", msg: msg}
	}
	if fs.NArg() > 0 {
		return nil, &usageError{path: "systemd-unit", msg: fmt.Sprintf("unexpected argument %q: the name comes first, run's flags after it", fs.Arg(0))}
	}
	if err := checkRunValues(args); err != nil {
		return nil, err
	}
	var out []string
	bundle := false
	for i := 0; i < len(args); i++ {
		nameVal := strings.TrimLeft(args[i], "-")
		name, value, inline := strings.Cut(nameVal, "=")
		if l, ok := long[name]; ok {
			name = l
		}
		f := fs.Lookup(name)
		isBool := false
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			isBool = true
		}
		if !isBool && !inline {
			i++
			value = args[i]
		}
		switch {
		case name == "detach" || name == "keep":
			return nil, opterr.Errorf(name, "a service runs in the foreground under systemd, which removes it when it stops")
		case name == "mode":
			if value != "production" {
				return nil, opterr.Errorf("mode", "%q: a service unit runs in production mode", value)
			}
			continue
		case name == "bundle":
			bundle = true
		}
		if unitPathFlags[name] && value != "" {
			abs, err := filepath.Abs(value)
			if err != nil {
				return nil, opterr.Errorf(name, "%s: %w", value, err)
			}
			value = abs
		}
		if name == "workspace" {
			host, rest, _ := strings.Cut(value, ":")
			if abs, err := filepath.Abs(host); err == nil {
				value = abs
				if rest != "" {
					value += ":" + rest
				}
			}
		}
		if isBool {
			if inline {
				out = append(out, "--"+name+"="+value)
			} else {
				out = append(out, "--"+name)
			}
			continue
		}
		out = append(out, "--"+name, value)
	}
	if !bundle {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		out = append([]string{"--bundle", wd}, out...)
	}
	return out, nil
}

// checkRunValues reads args as run reads its service, policy and network
// flags (in production mode), so a unit that could never start is refused
// now, with run's own one-line error.
func checkRunValues(args []string) error {
	app := &cli.App{
		Name: "run", Flags: runCommand.Flags, HideHelp: true, Writer: io.Discard, ErrWriter: io.Discard,
		DisableSliceFlagSeparator: true, OnUsageError: onUsageError,
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if _, err := healthOptions(c); err != nil {
				return err
			}
			po, err := policyOptions(c)
			if err != nil {
				return err
			}
			_, err = networkConfig(c, po.Mode)
			return err
		},
	}
	return app.Run(append([]string{"run", "--mode", "production"}, args...))
}
