package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/isolation"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
)

// engineFlag is --engine, both global (with its environment default) and
// on create and run; the command's flag wins over the global one.
func engineFlag(env string) cli.Flag {
	f := &cli.StringFlag{Name: "engine", Usage: "engine for new containers: native (libcontainer) or gvisor (runsc)"}
	if env != "" {
		f.EnvVars = []string{env}
		f.Usage += " (default: $" + env + ", else native)"
	}
	return f
}

// engineOption returns the engine create and run use: the command's
// --engine, else the global --engine or $NUCLEUS_ENGINE, else native.
func engineOption(c *cli.Context) (runtime.Engine, error) {
	for _, ctx := range c.Lineage() {
		if v := ctx.String("engine"); v != "" {
			return runtime.ParseEngine(v)
		}
	}
	return runtime.EngineNative, nil
}

func init() { register(exportCommand) }

var exportCommand = &cli.Command{
	Name:      "export",
	Usage:     "write the bundle the gvisor engine hands to runsc, runnable with plain 'runsc run'",
	ArgsUsage: "<bundle>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "directory to write (must not exist or be empty)"},
		&cli.StringFlag{Name: "engine", Value: "gvisor", Usage: "engine the bundle is for (only gvisor has anything to export)"},
		&cli.BoolFlag{Name: "copy", Usage: "copy the rootfs (cp -a) instead of symlinking it"},
		&cli.StringFlag{Name: "mode", Usage: "isolation mode to apply for gVisor: agent or strict-agent (empty: the bundle's config as is)"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		engine, err := runtime.ParseEngine(c.String("engine"))
		if err != nil {
			return err
		}
		if engine != runtime.EngineGvisor {
			return fmt.Errorf("export --engine %s: the native engine runs the bundle as it is; export is for --engine gvisor", engine)
		}
		bundle := c.Args().First()
		s, err := spec.Load(bundle)
		if err != nil {
			return err
		}
		if s, err = exportMode(c.String("mode"), s); err != nil {
			return err
		}
		out, err := filepath.Abs(c.String("output"))
		if err != nil {
			return err
		}
		flags, err := runtime.Export(runtime.ExportOptions{Bundle: bundle, Spec: s, Dir: out, Copy: c.Bool("copy")})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "runsc --root /run/runsc %s run --bundle %s <container-id>\n", strings.Join(flags, " "), out)
		return nil
	},
}

// exportMode applies an isolation mode as the gvisor engine would: the same
// allowlist, Landlock and user namespace recorded as gVisor's own.
func exportMode(name string, s *specs.Spec) (*specs.Spec, error) {
	mode, err := policy.ParseMode(name)
	if err != nil {
		return nil, err
	}
	if mode == policy.ModeProduction {
		return nil, fmt.Errorf("export --mode production: needs pinned profiles and limits; run it with 'nucleus run --engine gvisor --mode production'")
	}
	return isolation.Plan(s, mode, engine.Gvisor)
}
