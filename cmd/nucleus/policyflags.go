package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/isolation"
	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/seccomp"
)

// policyFlags select an isolation mode and its inputs; shared by create,
// run and sandbox.
func policyFlags(defaultMode string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "mode", Value: defaultMode, Usage: "isolation mode: agent, strict-agent or production (empty: the bundle's config as is)"},
		&cli.StringFlag{Name: "audit-log", Usage: "append JSON audit events to this file"},
		&cli.StringFlag{Name: "seccomp-profile", Usage: "OCI seccomp profile (JSON) replacing the built-in allowlist"},
		&cli.StringFlag{Name: "seccomp-profile-sha256", Usage: "refuse --seccomp-profile unless its SHA-256 is this"},
		&cli.StringFlag{Name: "caps-policy", Usage: "capability policy (JSON {\"keep\": [...]}) for production mode"},
		&cli.StringFlag{Name: "caps-policy-sha256", Usage: "refuse --caps-policy unless its SHA-256 is this"},
		&cli.StringFlag{Name: "landlock-policy", Usage: "Landlock rules (JSON: read, write, exec, no_exec_root paths) added to the mode's"},
		&cli.StringFlag{Name: "landlock-policy-sha256", Usage: "refuse --landlock-policy unless its SHA-256 is this"},
		&cli.StringSliceFlag{Name: "workspace", Usage: "HOST[:/workspace][:bind-rw|bind-ro|copy-in-out] directory to offer the sandbox (repeatable, each at its own destination)"},
		&cli.BoolFlag{Name: "workspace-exec", Usage: "allow executing files from the workspace"},
		&cli.StringFlag{Name: "net", Value: "none", Usage: "network: none, host or bridge (a plain run or create without it keeps the bundle's namespaces)"},
		&cli.StringFlag{Name: "bridge", Usage: "host bridge holding the gateway addresses (--net bridge; default " + network.DefaultBridge + ")"},
		&cli.StringSliceFlag{Name: "allow", Usage: "allow egress to CIDR[:PORT[/tcp|udp]] or NAME[:PORT] (*.example.com ok); repeatable (--net bridge)"},
		&cli.StringSliceFlag{Name: "publish", Usage: "[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp] to forward to the container; repeatable (--net bridge)"},
		&cli.StringSliceFlag{Name: "dns", Usage: "DNS server the resolver forwards allowed names to; repeatable (default: the host's resolv.conf)"},
		&cli.StringFlag{Name: "memory", Usage: "memory limit (e.g. 512M, 2G; max: none); agent modes default to 1G"},
		&cli.StringFlag{Name: "pids", Usage: "maximum number of processes (max: none); agent modes default to 512"},
		&cli.StringFlag{Name: "cpus", Usage: "CPU limit in cores (e.g. 1.5; max: none); agent modes default to 1"},
	}
}

// policyOptions reads the policy flags of create, run and sandbox.
func policyOptions(c *cli.Context) (policy.Options, error) {
	mode, err := policy.ParseMode(modeFlag(c))
	if err != nil {
		return policy.Options{}, err
	}
	o := policy.Options{Mode: mode, Net: netFlag(c)}
	if o.Pids, err = parseLimit(c, "pids", func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }); err != nil {
		return o, err
	}
	cpus, err := parseLimit(c, "cpus", func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
	if err != nil {
		return o, err
	}
	o.CPUs = cpus
	for _, arg := range c.StringSlice("workspace") {
		ws, err := policy.ParseWorkspace(arg)
		if err != nil {
			return o, err
		}
		ws.Exec = c.Bool("workspace-exec")
		o.Workspaces = append(o.Workspaces, ws)
	}
	if err := policy.CheckWorkspaces(o.Workspaces); err != nil {
		return o, err
	}
	if o.MemoryLimit, err = parseLimit(c, "memory", parseBytes); err != nil {
		return o, err
	}
	if o.Seccomp, o.KeepCaps, o.LandlockRules, err = pinnedPolicies(c, mode); err != nil {
		return o, err
	}
	if o.Seccomp != nil {
		o.SeccompSHA256 = c.String("seccomp-profile-sha256")
	}
	return o, nil
}

// networkConfig reads --net, --bridge, --allow, --publish and --dns:
// nil when none was given to a plain run or create (the bundle's
// namespaces decide, as in runc), else the checked config.
func networkConfig(c *cli.Context, mode policy.Mode) (*network.Config, error) {
	given := false
	for _, f := range []string{"net", "bridge", "allow", "publish", "dns", "default-net"} {
		given = given || c.IsSet(f)
	}
	if !given && mode == policy.ModeNone {
		return nil, nil
	}
	n := &network.Config{Mode: netFlag(c), Bridge: c.String("bridge"), DNS: c.StringSlice("dns")}
	for _, a := range c.StringSlice("allow") {
		r, err := network.ParseAllow(a)
		if err != nil {
			return nil, err
		}
		n.Allow = append(n.Allow, r)
	}
	for _, a := range c.StringSlice("publish") {
		p, err := network.ParsePublish(a)
		if err != nil {
			return nil, err
		}
		n.Publish = append(n.Publish, p)
	}
	return n, n.Check()
}

// prepare readies s for the engine: unchanged for a plain OCI bundle (so
// it runs exactly as under runc), else the isolation mode applied by
// isolation.Prepare against this host, for the rootfs path the container
// will have.
func prepare(c *cli.Context, r *runtime.Runtime, id, bundle string, s *specs.Spec, o policy.Options, kind runtime.Engine) (*isolation.Prepared, error) {
	rootfs, err := r.RootfsFor(id, bundle, s, o.Mode, kind)
	if err != nil {
		return nil, err
	}
	return isolation.Prepare(s, isolation.Options{Options: o, AuditLog: c.String("audit-log"), Debug: c.Bool("debug")},
		isolation.Target{ID: id, Engine: kind, Rootfs: rootfs})
}

// parseLimit reads a limit flag: unset is 0 (the mode's default),
// "max", "unlimited" or -1 is policy.Unlimited, anything else must parse
// as a positive number.
func parseLimit[T int64 | float64](c *cli.Context, name string, parse func(string) (T, error)) (T, error) {
	v := strings.TrimSpace(c.String(name))
	switch v {
	case "":
		return 0, nil
	case "max", "unlimited", "-1":
		return policy.Unlimited, nil
	}
	n, err := parse(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--%s %q: want a positive value, or max for no limit", name, v)
	}
	return n, nil
}

// parseBytes reads a size such as 512M or 2GiB (binary units, as runc).
func parseBytes(s string) (int64, error) { return units.RAMInBytes(s) }

// pinnedPolicies reads --seccomp-profile, --caps-policy and
// --landlock-policy, each checked against its pinned SHA-256 when given.
func pinnedPolicies(c *cli.Context, mode policy.Mode) (*specs.LinuxSeccomp, []string, *policy.LandlockRules, error) {
	var sc *specs.LinuxSeccomp
	var keep []string
	var ll *policy.LandlockRules
	read := func(name string) ([]byte, string, error) {
		f := c.String(name)
		if f == "" {
			if c.String(name+"-sha256") != "" {
				return nil, "", fmt.Errorf("--%s-sha256 given without --%s", name, name)
			}
			return nil, "", nil
		}
		data, err := policy.ReadPinned("--"+name, f, c.String(name+"-sha256"))
		return data, f, err
	}
	data, f, err := read("seccomp-profile")
	if err != nil {
		return nil, nil, nil, err
	}
	if data != nil {
		if sc, err = seccomp.ParseProfile(f, data); err != nil {
			return nil, nil, nil, err
		}
	}
	if data, f, err = read("caps-policy"); err != nil {
		return nil, nil, nil, err
	}
	if data != nil {
		cp, err := policy.ParseCapsPolicy(f, data)
		if err != nil {
			return nil, nil, nil, err
		}
		if mode != policy.ModeProduction {
			return nil, nil, nil, fmt.Errorf("--caps-policy %s: only production mode keeps capabilities", f)
		}
		keep = cp.Keep
	}
	if data, f, err = read("landlock-policy"); err != nil {
		return nil, nil, nil, err
	}
	if data != nil {
		if ll, err = policy.ParseLandlockRules(f, data); err != nil {
			return nil, nil, nil, err
		}
	}
	return sc, keep, ll, nil
}

// modeFlag is --mode, or the global --default-mode ($NUCLEUS_MODE) when the
// command was not given one.
func modeFlag(c *cli.Context) string {
	if c.IsSet("mode") {
		return c.String("mode")
	}
	if m := c.String("default-mode"); m != "" {
		return m
	}
	return c.String("mode")
}

// netFlag is --net, or the global --default-net ($NUCLEUS_NET) when the
// command was not given one.
func netFlag(c *cli.Context) string {
	if c.IsSet("net") {
		return c.String("net")
	}
	if n := c.String("default-net"); n != "" {
		return n
	}
	return c.String("net")
}
