// Command nucleus is a daemonless OCI container runtime with runc's command
// line. This package only parses flags and calls the libraries.
package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	goruntime "runtime"
	"sort"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of `nucleus init`
	"github.com/opencontainers/runc/libcontainer/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	_ "github.com/nucleus-run/nucleus/fastexec" // `nucleus exec` into a supervised sandbox, before Go starts
	"github.com/nucleus-run/nucleus/network/ipam"
	"github.com/nucleus-run/nucleus/pool"
	"github.com/nucleus-run/nucleus/preexec"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/runtime/confine"
	"github.com/nucleus-run/nucleus/runtime/engine/native"
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
	// A prestart or createRuntime hook runs through this binary, which
	// hands it the state with the runtime-spec's status.
	if len(os.Args) > 1 && os.Args[1] == native.HookStateCommand {
		native.HookStateMain(os.Args[2:])
	}
	// A warm pool's detached release or refill (pool.Pools.Release).
	pool.Main()
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
	args, err := canonicalFlags(app, os.Args)
	if err != nil {
		fatal(err)
	}
	if err := app.Run(args); err != nil {
		fatal(err)
	}
}

// runcCommands parse as runc's do (urfave/cli v1): a flag the command
// knows is taken anywhere before `--`, also after the container id
// (`update ID --memory X`, `delete ID --force`), since callers and scripts
// rely on v1 moving such flags first; a word it does not know stays an
// argument where it is. runcNoReorder are the two runc commands that skip
// the reordering (SkipArgReorder): what follows exec's id is the command,
// what follows ps's id are ps's options, flags or not. Every other command
// is nucleus's own and takes its flags before or after its arguments; only
// `--` ends them. A new command is nucleus's own unless it is added here.
var (
	runcCommands = map[string]bool{
		"checkpoint": true, "create": true, "delete": true, "events": true, "exec": true,
		"features": true, "kill": true, "list": true, "pause": true, "ps": true,
		"restore": true, "resume": true, "run": true, "spec": true, "start": true,
		"state": true, "update": true,
	}
	runcNoReorder = map[string]bool{"exec": true, "ps": true}
)

// errUsage marks a command line nucleus cannot parse.
var errUsage = errors.New("usage")

// usageError is the one line a usage error prints (urfave/cli would print
// the whole help): the command, what is wrong, and where to read more.
type usageError struct {
	path string // "policy check"; "" for the global flags
	msg  string
	bare bool // msg says it all
}

func (e *usageError) Error() string {
	if e.bare {
		return e.msg
	}
	if e.path == "" {
		return e.msg + " (see nucleus --help)"
	}
	return fmt.Sprintf("%s: %s (see nucleus %s --help)", e.path, e.msg, e.path)
}

func (e *usageError) Unwrap() error { return errUsage }

// canonicalFlags finds the command a command line names, refuses a command
// that does not exist, and rewrites the flags so urfave/cli parses them as
// documented: short aliases (-e, -u, -t, ...) become their long names
// (runc takes `exec -e A=1 --env B=2`; urfave/cli refuses two forms of one
// flag), and a nucleus command's flags after its arguments move before
// them.
func canonicalFlags(app *cli.App, args []string) ([]string, error) {
	out := append([]string(nil), args...)
	// Skip the global flags (and their values) to find the command.
	i := 1
	for i < len(out) && strings.HasPrefix(out[i], "-") {
		if out[i] == "--" {
			return out, nil
		}
		name := strings.TrimLeft(out[i], "-")
		i++
		if !strings.Contains(name, "=") && !isBoolFlag(app.Flags, name) && i < len(out) {
			i++ // the global flag's value
		}
	}
	if i >= len(out) {
		return out, nil
	}
	var cmd *cli.Command
	var path []string
	cmds := app.Commands
	for ; i < len(out); i++ {
		if len(path) > 0 && strings.HasPrefix(out[i], "-") {
			i-- // a flag of the command found so far
			break
		}
		next := findCommand(cmds, out[i])
		if next == nil {
			if isHelp(out[i]) {
				return out, nil
			}
			return nil, unknownCommand(path, out[i], cmds)
		}
		cmd = next
		path = append(path, cmd.Name)
		if len(cmd.Subcommands) == 0 {
			break
		}
		cmds = cmd.Subcommands
	}
	if i >= len(out) {
		i = len(out) - 1
	}
	rest := out[i+1:]
	if cmd.SkipFlagParsing {
		// The command reads its arguments itself (systemd-unit).
		return out, nil
	}
	if runcCommands[cmd.Name] && len(path) == 1 {
		if runcNoReorder[cmd.Name] {
			return append(out[:i+1], runcFlags(cmd, rest)...), nil
		}
		return append(out[:i+1], runcReorder(cmd, rest)...), nil
	}
	return append(out[:i+1], flagsFirst(cmd, rest)...), nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func isHelp(name string) bool { return name == "help" || name == "h" }

// unknownCommand names the nearest command, if one is close enough to be a
// typo.
func unknownCommand(path []string, name string, cmds []*cli.Command) error {
	best, bestDist := "", 3
	for _, c := range cmds {
		for _, n := range c.Names() {
			if d := editDistance(name, n); d < bestDist || (d == bestDist && best == "" && strings.HasPrefix(n, name)) {
				best, bestDist = n, d
			}
		}
	}
	what := "command"
	if len(path) > 0 {
		what = strings.Join(path, " ") + " command"
	}
	msg := fmt.Sprintf("unknown %s %q", what, name)
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	} else {
		msg += fmt.Sprintf(" (see nucleus %s--help)", strings.Join(append(path, ""), " "))
	}
	return &usageError{msg: msg, bare: true}
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// longNames maps a command's flag aliases to their long names.
func longNames(cmd *cli.Command) map[string]string {
	long := map[string]string{}
	for _, f := range cmd.Flags {
		names := f.Names()
		for _, alias := range names[1:] {
			long[alias] = names[0]
		}
	}
	return long
}

// canonical rewrites one flag argument to its long name and says whether
// the next argument is its value.
func canonical(cmd *cli.Command, long map[string]string, a string) (string, bool) {
	name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
	if l, ok := long[name]; ok {
		a = "--" + l
		if hasValue {
			a += "=" + value
		}
		name = l
	}
	takesValue := !hasValue && !isBoolFlag(cmd.Flags, name) && !isHelp(name) && knownFlag(cmd.Flags, name)
	return a, takesValue
}

// runcFlags rewrites aliases in the flags before the first argument, as
// urfave/cli (and runc) parse them.
func runcFlags(cmd *cli.Command, args []string) []string {
	out := append([]string(nil), args...)
	long := longNames(cmd)
	for j := 0; j < len(out); j++ {
		a := out[j]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		var takesValue bool
		out[j], takesValue = canonical(cmd, long, a)
		if takesValue {
			j++
		}
	}
	return out
}

// runcReorder moves the flags a runc command knows (and their values)
// before its arguments, as urfave/cli v1 does for runc; a flag-like word
// the command does not know stays in place, an argument (runc's parser
// then refuses it before the id, and hands it on after it). From `--` on
// nothing is touched.
func runcReorder(cmd *cli.Command, args []string) []string {
	long := longNames(cmd)
	var flags, pos []string
	for j := 0; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			if len(flags) == 0 {
				return args
			}
			// v1 puts the `--` first, so that the parser drops it.
			return append(append(append(flags, "--"), pos...), args[j+1:]...)
		}
		if a == "--help" || a == "-h" {
			return []string{"--help"}
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" || !knownFlag(cmd.Flags, name) {
			pos = append(pos, a)
			continue
		}
		a, takesValue := canonical(cmd, long, a)
		flags = append(flags, a)
		if takesValue && j+1 < len(args) {
			j++
			flags = append(flags, args[j])
		}
	}
	return append(flags, pos...)
}

// flagsFirst moves a nucleus command's flags (and their values) before its
// arguments; everything from `--` on is the command's, untouched.
func flagsFirst(cmd *cli.Command, args []string) []string {
	long := longNames(cmd)
	var flags, pos []string
	j := 0
	for ; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		if a == "--help" || a == "-h" {
			// urfave/cli reads `cmd --help ARG` as help on a
			// subcommand ARG.
			return []string{"--help"}
		}
		a, takesValue := canonical(cmd, long, a)
		flags = append(flags, a)
		if takesValue && j+1 < len(args) {
			j++
			flags = append(flags, args[j])
		}
	}
	return append(append(flags, pos...), args[j:]...)
}

func knownFlag(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
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
			&cli.StringFlag{Name: "default-net", EnvVars: []string{"NUCLEUS_NET"}, Usage: "network for create/run/sandbox when --net is not given (none, host, bridge)"},
			&cli.StringFlag{Name: "subnet", EnvVars: []string{ipam.SubnetEnv}, Usage: "IPv4 subnet of --net bridge (default 10.90.0.0/16; the same for every nucleus on the host)"},
			otlpFlag(),
		},
		Before:   configureLogging,
		Commands: sortedCommands(),
		// --env A=1,2 is one variable, not two.
		DisableSliceFlagSeparator: true,
		OnUsageError:              onUsageError,
		// Errors are printed once, by fatal, in the format --log-format asks.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	var oneLine func([]*cli.Command)
	oneLine = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = onUsageError
			checkRequiredOurselves(c)
			oneLine(c.Subcommands)
		}
	}
	oneLine(app.Commands)
	return app
}

// checkRequiredOurselves takes over a command's Required flags: urfave/cli
// prints the whole help before its "Required flag not set" error, so the
// flags are made optional to it and checked in Before, in one line.
func checkRequiredOurselves(c *cli.Command) {
	var required []string
	for _, f := range c.Flags {
		v := reflect.ValueOf(f)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			continue
		}
		if r := v.Elem().FieldByName("Required"); r.IsValid() && r.Kind() == reflect.Bool && r.Bool() && r.CanSet() {
			r.SetBool(false)
			required = append(required, f.Names()[0])
		}
	}
	if len(required) == 0 {
		return
	}
	before := c.Before
	c.Before = func(ctx *cli.Context) error {
		for _, name := range required {
			if !ctx.IsSet(name) {
				return &usageError{path: commandPath(ctx), msg: "--" + name + " is required"}
			}
		}
		if before != nil {
			return before(ctx)
		}
		return nil
	}
}

// onUsageError replaces urfave/cli's usage error (the message, then the
// whole help) with one line.
func onUsageError(c *cli.Context, err error, _ bool) error {
	// Go's flag package writes every flag with one dash; name them as
	// --help shows them.
	msg := longFlag.ReplaceAllString(err.Error(), "$1--$2")
	return &usageError{path: commandPath(c), msg: msg}
}

var longFlag = regexp.MustCompile(`(^|\s)-([a-z0-9][a-z0-9-]+)`)

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
	if subnet := c.String("subnet"); subnet != "" {
		if err := ipam.SetSubnet4(subnet); err != nil {
			return fmt.Errorf("--subnet %w", err)
		}
		// The processes nucleus starts (the resolver) use it too.
		os.Setenv(ipam.SubnetEnv, subnet)
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
	finish(err, code)
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
