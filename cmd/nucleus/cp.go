package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/containerfs"
	"github.com/nucleus-run/nucleus/runtime"
)

func init() { register(cpCommand) }

var cpCommand = &cli.Command{
	Name:  "cp",
	Usage: "copy files between a running container and the host (as podman cp), or a tar stream with -",
	ArgsUsage: "[-a] <container-id>:<path> <host-path|->  |  [-a] <host-path|-> <container-id>:<path>\n\n" +
		"A host path containing ':' must start with / or ./",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "archive", Aliases: []string{"a"}, Usage: "keep owners (uid:gid), mapped by the container's user namespace"},
		&cli.StringFlag{Name: "max-bytes", Usage: "most the copy may write (e.g. 512M, 10G; max: none): data blocks written plus a block per entry, a file's full size into a tar stream; default 4G"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 2, exactArgs); err != nil {
			return err
		}
		src, dest := c.Args().Get(0), c.Args().Get(1)
		sid, spath, sIn := splitCpArg(src)
		did, dpath, dIn := splitCpArg(dest)
		if sIn == dIn {
			return errors.New("cp: exactly one of SRC and DEST must be CONTAINER:PATH")
		}
		maxBytes, err := parseLimit(c, "max-bytes", parseBytes)
		if err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		o := runtime.CopyOptions{Archive: c.Bool("archive"), MaxBytes: maxBytes, Interrupt: onInterrupt(), Warn: func(p, why string) {
			fmt.Fprintf(os.Stderr, "nucleus cp: warning: %s: %s\n", p, why)
		}}
		if sIn {
			o.ContainerPath = spath
			if dest == "-" {
				o.Writer = os.Stdout
			} else {
				o.HostPath = dest
			}
			err = r.CopyOut(sid, o)
		} else {
			o.ContainerPath = dpath
			if src == "-" {
				o.Reader = os.Stdin
			} else {
				o.HostPath = src
			}
			err = r.CopyIn(did, o)
		}
		if err != nil && o.Interrupt.Stopped() {
			select {} // the signal's handler exits, with its status
		}
		return err
	},
}

// onInterrupt makes SIGINT and SIGTERM stop the copy: what it half-wrote
// is removed, then nucleus exits 128+signal (130, 143).
func onInterrupt() *containerfs.Interrupt {
	in := new(containerfs.Interrupt)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	go func() {
		sig := (<-sigs).(unix.Signal)
		in.Now()
		fmt.Fprintf(os.Stderr, "nucleus cp: %s: stopped, nothing half-written left\n", unix.SignalName(sig))
		os.Exit(128 + int(sig))
	}()
	return in
}

// splitCpArg reads "ID:PATH" as podman does: a colon before any slash
// names a container; a host path with a colon starts with / or ./.
func splitCpArg(arg string) (id, path string, ok bool) {
	i := strings.IndexByte(arg, ':')
	if i <= 0 || strings.Contains(arg[:i], "/") {
		return "", arg, false
	}
	p := arg[i+1:]
	if p == "" {
		p = "/"
	}
	return arg[:i], p, true
}
