package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/runtime"
)

func init() { register(updateCommand) }

var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "update a container's resource limits in its live cgroup",
	ArgsUsage: "<container-id>",
	Description: `Resources come from --resources FILE ('-' for stdin), a JSON object in the
OCI linux.resources format (memory, cpu, blockIO, pids; omitted values are
unchanged), or else from the flags. With --resources the flags are ignored.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "JSON file with the resources to update, or '-' for stdin"},
		&cli.IntFlag{Name: "blkio-weight", Usage: "per-cgroup block IO weight, 10 to 1000"},
		&cli.StringFlag{Name: "cpu-period", Usage: "CPU CFS period in µs (0 for the default)"},
		&cli.StringFlag{Name: "cpu-quota", Usage: "CPU CFS quota in µs per period"},
		&cli.StringFlag{Name: "cpu-burst", Usage: "CPU CFS burst in µs"},
		&cli.StringFlag{Name: "cpu-share", Usage: "CPU shares (relative weight)"},
		&cli.StringFlag{Name: "cpu-rt-period", Usage: "CPU realtime period in µs"},
		&cli.StringFlag{Name: "cpu-rt-runtime", Usage: "CPU realtime runtime in µs"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to use"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
		&cli.StringFlag{Name: "cpu-idle", Usage: "1 for SCHED_IDLE, 0 for the default"},
		&cli.StringFlag{Name: "kernel-memory", Usage: "(obsolete; ignored)", Hidden: true},
		&cli.StringFlag{Name: "kernel-memory-tcp", Usage: "(obsolete; ignored)", Hidden: true},
		&cli.StringFlag{Name: "memory", Usage: "memory limit (bytes, or with a k/m/g suffix; -1 for none)"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
		&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap limit; -1 for unlimited swap"},
		&cli.IntFlag{Name: "pids-limit", Usage: "maximum number of pids"},
		&cli.StringFlag{Name: "l3-cache-schema", Usage: "Intel RDT/CAT L3 cache schema"},
		&cli.StringFlag{Name: "mem-bw-schema", Usage: "Intel RDT/MBA memory bandwidth schema"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		res := runtime.NewUpdateResources()
		if in := c.String("resources"); in != "" {
			f := os.Stdin
			if in != "-" {
				var err error
				if f, err = os.Open(in); err != nil {
					return fmt.Errorf("--resources: %w", err)
				}
				defer f.Close()
			}
			if err := json.NewDecoder(f).Decode(res); err != nil {
				return fmt.Errorf("--resources %s: not a JSON resources object: %w", in, err)
			}
		} else if err := updateFlags(c, res); err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		return r.Update(c.Args().First(), res, runtime.UpdateOptions{
			L3CacheSchema: c.String("l3-cache-schema"),
			MemBwSchema:   c.String("mem-bw-schema"),
		})
	},
}

// updateFlags fills res from the resource flags, as runc's update does.
func updateFlags(c *cli.Context, res *specs.LinuxResources) error {
	if v := c.Int("blkio-weight"); v != 0 {
		w := uint16(v)
		res.BlockIO.Weight = &w
	}
	res.CPU.Cpus = c.String("cpuset-cpus")
	res.CPU.Mems = c.String("cpuset-mems")
	if v := c.String("cpu-idle"); v != "" {
		idle, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid value for cpu-idle: %w", err)
		}
		res.CPU.Idle = &idle
	}
	for _, u := range []struct {
		opt  string
		dest **uint64
	}{
		{"cpu-burst", &res.CPU.Burst},
		{"cpu-period", &res.CPU.Period},
		{"cpu-rt-period", &res.CPU.RealtimePeriod},
		{"cpu-share", &res.CPU.Shares},
	} {
		if v := c.String(u.opt); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %w", u.opt, err)
			}
			*u.dest = &n
		}
	}
	for _, s := range []struct {
		opt  string
		dest **int64
	}{
		{"cpu-quota", &res.CPU.Quota},
		{"cpu-rt-runtime", &res.CPU.RealtimeRuntime},
	} {
		if v := c.String(s.opt); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %w", s.opt, err)
			}
			*s.dest = &n
		}
	}
	for _, m := range []struct {
		opt  string
		dest **int64
	}{
		{"memory", &res.Memory.Limit},
		{"memory-swap", &res.Memory.Swap},
		//lint:ignore SA1019 runc's update takes it (and ignores it); so do we
		{"kernel-memory", &res.Memory.Kernel},
		{"kernel-memory-tcp", &res.Memory.KernelTCP},
		{"memory-reservation", &res.Memory.Reservation},
	} {
		if v := c.String(m.opt); v != "" {
			n := int64(-1)
			if v != "-1" {
				var err error
				if n, err = units.RAMInBytes(v); err != nil {
					return fmt.Errorf("invalid value for %s: %w", m.opt, err)
				}
			}
			*m.dest = &n
		}
	}
	if c.IsSet("pids-limit") {
		n := int64(c.Int("pids-limit"))
		res.Pids.Limit = &n
	}
	return nil
}
