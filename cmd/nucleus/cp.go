package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

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
		&cli.StringFlag{Name: "max-bytes", Usage: "most the copy may write (e.g. 512M, 10G; file data in 4 KiB blocks plus a block per entry); default no bound"},
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
		if maxBytes < 0 {
			maxBytes = 0 // max: no bound
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		o := runtime.CopyOptions{Archive: c.Bool("archive"), MaxBytes: maxBytes, Warn: func(p, why string) {
			fmt.Fprintf(os.Stderr, "nucleus cp: warning: %s: %s\n", p, why)
		}}
		if sIn {
			o.ContainerPath = spath
			if dest == "-" {
				o.Writer = os.Stdout
			} else {
				o.HostPath = dest
			}
			return r.CopyOut(sid, o)
		}
		o.ContainerPath = dpath
		if src == "-" {
			o.Reader = os.Stdin
		} else {
			o.HostPath = src
		}
		return r.CopyIn(did, o)
	},
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
