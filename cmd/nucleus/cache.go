package main

import (
	"fmt"

	"github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/cacheprune"
	"github.com/nucleus-run/nucleus/runtime/engine/native"
)

func init() { register(cacheCommand) }

var cacheCommand = &cli.Command{
	Name:  "cache",
	Usage: "manage nucleus's cache dir ($NUCLEUS_CACHE_DIR or /var/cache/nucleus)",
	Subcommands: []*cli.Command{{
		Name:  "prune",
		Usage: "remove bundle cache entries, sandbox bundles (and their GC roots) and compiled seccomp filters",
		Description: `Keeps what is in use unless --all: the bundle of a running
'nucleus sandbox --flake', and the seccomp filters the containers in the
state root (--root) were started with. Prints what it freed.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "remove entries in use too"},
			&cli.StringFlag{Name: "cache-dir", Usage: "cache dir to prune (default $NUCLEUS_CACHE_DIR or /var/cache/nucleus)"},
		},
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, 0, exactArgs); err != nil {
				return err
			}
			inUse, err := native.SeccompInUse(c.String("root"))
			if err != nil {
				return fmt.Errorf("cache prune: %w", err)
			}
			rep, err := cacheprune.Prune(cacheprune.Options{Dir: c.String("cache-dir"), All: c.Bool("all"), SeccompInUse: inUse})
			if rep != nil {
				printPrune(c, rep)
			}
			if err != nil {
				return fmt.Errorf("cache prune: %w", err)
			}
			return nil
		},
	}},
}

func printPrune(c *cli.Context, rep *cacheprune.Report) {
	w := c.App.Writer
	for _, k := range cacheprune.Kinds {
		if n, count := rep.Freed(k.Kind); count > 0 {
			fmt.Fprintf(w, "removed %d %s (%s)\n", count, k.Kind, units.HumanSize(float64(n)))
		}
	}
	for _, e := range rep.Kept {
		fmt.Fprintf(w, "kept %s (%s): %s\n", e.Path, units.HumanSize(float64(e.Bytes)), e.Why)
	}
	n, _ := rep.Freed("")
	fmt.Fprintf(w, "freed %s in %s\n", units.HumanSize(float64(n)), rep.Dir)
}
