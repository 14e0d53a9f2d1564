package main

import (
	"fmt"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/health"
	"github.com/nucleus-run/nucleus/lockdown"
	"github.com/nucleus-run/nucleus/nixbundle"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/service"
)

// productionFlags are checks a service's start must pass; create and run.
func productionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "require-lockdown", Usage: "refuse to start unless the kernel's lockdown is at least integrity or confidentiality"},
	}
}

// healthFlags run a container as a service (probes, sd_notify); run only.
func healthFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "health-cmd", Usage: "command (/bin/sh -c) run in the container to check its health; exit 0 is healthy"},
		&cli.StringFlag{Name: "health-interval", Usage: "time between health checks (default 30s)"},
		&cli.StringFlag{Name: "health-timeout", Usage: "time a health check may take (default 30s)"},
		&cli.StringFlag{Name: "health-retries", Usage: "failures in a row that make the service unhealthy (default 3)"},
		&cli.StringFlag{Name: "health-start-period", Usage: "time after start during which failures don't count"},
		&cli.StringFlag{Name: "readiness-tcp", Usage: "PORT that must accept TCP connections in the container"},
		&cli.StringFlag{Name: "readiness-http", Usage: "PATH:PORT that must answer GET with 2xx or 3xx in the container"},
		&cli.StringFlag{Name: "on-unhealthy", Value: "kill", Usage: "kill (stop the service, exit non-zero) or ignore"},
		&cli.StringFlag{Name: "sd-notify", Value: "nucleus", Usage: "with NOTIFY_SOCKET: nucleus (nucleus sends READY=1) or passthrough (the workload does)"},
	}
}

// checkProduction runs the checks of --require-lockdown and, for a
// production start of a Nix bundle, --verify-attestation.
func checkProduction(c *cli.Context, bundle string, s *specs.Spec, mode policy.Mode) error {
	if v := c.String("require-lockdown"); c.IsSet("require-lockdown") {
		want, err := lockdown.Parse(v)
		if err != nil {
			return err
		}
		if err := lockdown.Require(lockdown.Path, want); err != nil {
			return err
		}
	}
	if mode == policy.ModeProduction && !c.Bool("verify-attestation") && nixbundle.IsNixBundle(bundle, s) {
		return opterr.Errorf("verify-attestation", "bundle %s is a Nix bundle: production mode runs it only verified against its %s; add --verify-attestation", bundle, nixbundle.AttestationName)
	}
	return nil
}

// healthOptions reads run's health and sd_notify flags.
func healthOptions(c *cli.Context) (service.Options, error) {
	var so service.Options
	h := &so.Health
	h.Cmd = c.String("health-cmd")
	var err error
	for name, d := range map[string]*time.Duration{"health-interval": &h.Interval, "health-timeout": &h.Timeout, "health-start-period": &h.StartPeriod} {
		if v := c.String(name); v != "" {
			if *d, err = health.ParseDuration(name, v); err != nil {
				return so, err
			}
		}
	}
	if v := c.String("health-retries"); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &h.Retries); err != nil || h.Retries < 1 || fmt.Sprint(h.Retries) != v {
			return so, opterr.Errorf("health-retries", "%q: want a count of 1 or more", v)
		}
	}
	if v := c.String("readiness-tcp"); v != "" {
		if h.TCPPort, err = health.ParsePort("readiness-tcp", v); err != nil {
			return so, err
		}
	}
	if v := c.String("readiness-http"); v != "" {
		if h.HTTPPath, h.HTTPPort, err = health.ParseHTTP("readiness-http", v); err != nil {
			return so, err
		}
	}
	if !h.Enabled() {
		for _, f := range []string{"health-interval", "health-timeout", "health-retries", "health-start-period"} {
			if c.IsSet(f) {
				return so, opterr.Errorf(f, "needs a probe: --health-cmd, --readiness-tcp or --readiness-http")
			}
		}
	}
	if so.OnUnhealthy, err = service.ParseOnUnhealthy(c.String("on-unhealthy")); err != nil {
		return so, err
	}
	if so.Notify, err = service.ParseNotify(c.String("sd-notify")); err != nil {
		return so, err
	}
	so.ProbeCommand = probeCommand(c)
	return so, nil
}

// probeCommand is this binary's probe child with the global flags that
// find the container.
func probeCommand(c *cli.Context) []string {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	args := []string{self, "--root", c.String("root"), "--rootless", c.String("rootless")}
	if c.Bool("systemd-cgroup") {
		args = append(args, "--systemd-cgroup")
	}
	return append(args, healthProbeCommand.Name)
}

// runService is run's foreground (or detached) run with its service side.
func runService(r *runtime.Runtime, opts runtime.CreateOptions, so service.Options) (runtime.Exit, *service.Outcome, error) {
	if !so.Active() {
		ex, err := r.RunResult(opts)
		return ex, nil, err
	}
	return service.Run(r, opts, so)
}

func init() { register(healthProbeCommand) }

// healthProbeCommand is the probe child a service's run starts for each
// round: it prints one JSON result.
var healthProbeCommand = &cli.Command{
	Name:      "health-probe",
	Usage:     "run one round of a service's health probes (internal)",
	ArgsUsage: "<container-id> <probe-config-json>",
	Hidden:    true,
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 2, exactArgs); err != nil {
			return err
		}
		r, err := newRuntime(c)
		if err != nil {
			return err
		}
		out, err := service.Probe(r, c.Args().Get(0), c.Args().Get(1))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.App.Writer, string(out))
		return err
	},
}
