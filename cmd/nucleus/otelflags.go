package main

import (
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/telemetry"
)

func otlpFlag() cli.Flag {
	return &cli.StringFlag{Name: "otlp-endpoint", EnvVars: []string{telemetry.EndpointEnv},
		Usage: "export create, start, exec, delete and run as OpenTelemetry spans (isolation steps as events, audit events as logs) to this OTLP/HTTP base URL; never blocks the container for more than 1.5 s"}
}

// session is the running command's telemetry (nil: no endpoint, and no
// OpenTelemetry code runs at all).
var session *telemetry.Session

// The commands that make a span.
func init() {
	for _, cmd := range []*cli.Command{createCommand, runCommand, startCommand, execCommand, deleteCommand} {
		traced(cmd)
	}
}

func traced(cmd *cli.Command) {
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if ep := c.String("otlp-endpoint"); ep != "" {
			s, err := telemetry.Start(ep, version, cmd.Name, c.Args().First())
			if err != nil {
				return err
			}
			if !telemetry.Available() {
				logrus.Warnf("--otlp-endpoint: %s is not next to nucleus nor on PATH: nothing is exported", telemetry.Exporter)
			}
			session = s
		}
		err := action(c)
		session.End(err)
		return err
	}
}
