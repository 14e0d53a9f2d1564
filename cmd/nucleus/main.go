// Command nucleus is a daemonless OCI container runtime with runc's command
// line. This package only parses flags and calls the libraries.
package main

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"sort"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of `nucleus init`
	"github.com/opencontainers/runc/libcontainer/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/preexec"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/runtime/confine"
)

// version and gitCommit are set by the Makefile with -X.
var (
	version   = "0.1.0-dev"
	gitCommit = ""
)

func init() {
	// libcontainer re-executes this binary as `nucleus init` inside the new
	// namespaces; nsenter's C constructor has already run by now.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
	}
	// A process exec'd into a gVisor container in a mode starts as this
	// binary inside the sandbox, which confines it and execs the command.
	if len(os.Args) > 1 && os.Args[1] == confine.Command {
		confine.Main(os.Args[2:])
	}
	// The Landlock step of an isolation mode runs from a C constructor
	// (preexec/preexec.c) and never reaches Go; getting here means it was
	// not linked in, and the workload must not run unconfined.
	if len(os.Args) > 1 && os.Args[1] == preexec.Command {
		fmt.Fprintln(os.Stderr, "nucleus: landlock-exec: this binary was built without its pre-exec step (cgo); refusing to run the workload")
		os.Exit(126)
	}
}

func main() {
	app := newApp()
	if err := app.Run(canonicalFlags(app, os.Args)); err != nil {
		fatal(err)
	}
}

// canonicalFlags rewrites a command's short flag aliases (-e, -u, -t, ...)
// to their long names in the flags before the first argument. runc takes
// `exec -e A=1 --env B=2`; urfave/cli refuses two forms of one flag.
func canonicalFlags(app *cli.App, args []string) []string {
	out := append([]string(nil), args...)
	// Skip the global flags (and their values) to find the command.
	i := 1
	for i < len(out) && strings.HasPrefix(out[i], "-") {
		name := strings.TrimLeft(out[i], "-")
		i++
		if !strings.Contains(name, "=") && !isBoolFlag(app.Flags, name) && i < len(out) {
			i++ // the global flag's value
		}
	}
	if i >= len(out) {
		return out
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(out[i]) {
			cmd = c
		}
	}
	if cmd == nil {
		return out
	}
	long := map[string]string{}
	for _, f := range cmd.Flags {
		names := f.Names()
		for _, alias := range names[1:] {
			long[alias] = names[0]
		}
	}
	for j := i + 1; j < len(out); j++ {
		a := out[j]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break // flags end at the first argument, as urfave/cli parses them
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if l, ok := long[name]; ok {
			out[j] = "--" + l
			if hasValue {
				out[j] += "=" + value
			}
			name = l
		}
		if !hasValue && !isBoolFlag(cmd.Flags, name) {
			j++ // skip the flag's value
		}
	}
	return out
}

func isBoolFlag(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, ok := f.(*cli.BoolFlag)
				return ok
			}
		}
	}
	return false
}

func newApp() *cli.App {
	cli.VersionPrinter = printVersion
	app := &cli.App{
		Name:    "nucleus",
		Usage:   "daemonless OCI container runtime for sandboxes and services",
		Version: version,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "debug", Usage: "enable debug logging"},
			&cli.StringFlag{Name: "log", Usage: "write logs to this file (default: stderr)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.StringFlag{Name: "root", Value: runtime.DefaultRoot, Usage: "directory for container state (should be on tmpfs)"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "manage cgroups through systemd (cgroupsPath is slice:prefix:name)"},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "ignore cgroup permission errors: true, false or auto"},
			engineFlag(runtime.EngineEnv),
			&cli.StringFlag{Name: "default-mode", EnvVars: []string{"NUCLEUS_MODE"}, Usage: "isolation mode for create/run when --mode is not given (agent, strict-agent, production)"},
		},
		Before:   configureLogging,
		// --env A=1,2 is one variable, not two.
		DisableSliceFlagSeparator: true,
		Commands: sortedCommands(),
		// Errors are printed once, by fatal, in the format --log-format asks.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	return app
}

// commands holds every subcommand; each command file registers its own in
// an init function, so adding a command touches only its file.
var commands []*cli.Command

func register(c *cli.Command) { commands = append(commands, c) }

func sortedCommands() []*cli.Command {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	return commands
}

func printVersion(c *cli.Context) {
	w := c.App.Writer
	fmt.Fprintln(w, "nucleus version", c.App.Version)
	if gitCommit != "" {
		fmt.Fprintln(w, "commit:", gitCommit)
	}
	fmt.Fprintln(w, "spec:", specs.Version)
	fmt.Fprintln(w, "go:", goruntime.Version())
	if major, minor, micro := seccomp.Version(); major+minor+micro > 0 {
		fmt.Fprintf(w, "libseccomp: %d.%d.%d\n", major, minor, micro)
	}
}

var logToStderr = true

func configureLogging(c *cli.Context) error {
	if c.Bool("debug") {
		logrus.SetLevel(logrus.DebugLevel)
	}
	switch f := c.String("log-format"); f {
	case "", "text":
	case "json":
		logrus.SetFormatter(new(logrus.JSONFormatter))
	default:
		return fmt.Errorf("--log-format %q: want text or json", f)
	}
	if file := c.String("log"); file != "" {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("--log %s: %w", file, err)
		}
		logrus.SetOutput(f)
		logToStderr = false
	}
	return nil
}

// fatal reports err and exits 1.
func fatal(err error) {
	fatalWithCode(err, 1)
}

// fatalWithCode reports err once on stderr as a single line and, when a log
// file or JSON logging is configured, as a log entry there too (containerd's
// shim and conmon show the "msg" of the last JSON line to the user).
func fatalWithCode(err error, code int) {
	msg := strings.ReplaceAll(flagError(err).Error(), "\n", " ")
	_, isJSON := logrus.StandardLogger().Formatter.(*logrus.JSONFormatter)
	if !logToStderr || isJSON {
		logrus.Error(msg)
	}
	switch {
	case !logToStderr:
		// A supervisor (conmon, the containerd shim) passed --log and
		// shows our stderr under its own "nucleus:" label.
		fmt.Fprintln(os.Stderr, msg)
	case !isJSON:
		fmt.Fprintln(os.Stderr, "nucleus: "+msg)
	}
	os.Exit(code)
}

// newRuntime builds the runtime from the global flags.
func newRuntime(c *cli.Context) (*runtime.Runtime, error) {
	return runtime.New(c.String("root"), c.Bool("systemd-cgroup"), c.String("rootless"))
}

// flagError names the flag behind a library option error (the library says
// "root", the user typed --root), for every command's error.
func flagError(err error) error {
	var oe *runtime.OptionError
	if !errors.As(err, &oe) || strings.HasPrefix(oe.Option, "--") {
		return err
	}
	// The outer errors' text was formatted with the option's own name.
	msg, inner := err.Error(), oe.Error()
	oe.Option = "--" + oe.Option
	if msg == inner {
		return err
	}
	return errors.New(strings.Replace(msg, inner, oe.Error(), 1))
}

const (
	exactArgs = iota
	minArgs
	maxArgs
)

// idCommand is a command that takes exactly one container id and calls fn.
func idCommand(name, usage string, fn func(*runtime.Runtime, string) error) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "<container-id>",
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, 1, exactArgs); err != nil {
				return err
			}
			r, err := newRuntime(c)
			if err != nil {
				return err
			}
			return fn(r, c.Args().First())
		},
	}
}

// commandPath is the command as typed, e.g. "policy check".
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// checkArgs enforces a command's argument count with runc's wording.
func checkArgs(c *cli.Context, expected, kind int) error {
	n := c.NArg()
	name := commandPath(c)
	switch {
	case kind == exactArgs && n != expected:
		return fmt.Errorf("%q requires exactly %d argument(s), got %d (see 'nucleus %s --help')", name, expected, n, name)
	case kind == minArgs && n < expected:
		return fmt.Errorf("%q requires a minimum of %d argument(s), got %d (see 'nucleus %s --help')", name, expected, n, name)
	case kind == maxArgs && n > expected:
		return fmt.Errorf("%q requires a maximum of %d argument(s), got %d (see 'nucleus %s --help')", name, expected, n, name)
	}
	return nil
}
