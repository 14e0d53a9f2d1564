package main

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/isolation/host"
	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/nixbundle"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/spec"
)

// createFlags are shared by create and run.
func createFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "path to the bundle directory (holds config.json)"},
		&cli.StringFlag{Name: "console-socket", Usage: "AF_UNIX socket that receives the pty master when process.terminal is true"},
		&cli.StringFlag{Name: "pidfd-socket", Usage: "AF_UNIX socket that receives a pidfd of the container's init"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the container init's host pid to this file"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot_root to jail the process (for ramfs roots)"},
		&cli.BoolFlag{Name: "no-new-keyring", Usage: "do not create a new session keyring for the container"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N extra file descriptors (from fd 3 on) to the container"},
		engineFlag(""),
		&cli.BoolFlag{Name: "verify-attestation", Usage: "refuse a bundle whose attestation.json (from 'nucleus bundle') does not match"},
	}, append(serviceFlags(), productionFlags()...)...)
}

func init() { register(createCommand) }

var createCommand = &cli.Command{
	Name:      "create",
	Usage:     "create a container whose process waits for 'start'",
	ArgsUsage: "<container-id>",
	Flags:     append(createFlags(), policyFlags("")...),
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 1, exactArgs); err != nil {
			return err
		}
		r, opts, err := createOptions(c)
		if err != nil {
			return err
		}
		err = r.Create(opts)
		if err == nil {
			finish(nil, 0)
		}
		return err
	},
}

func createOptions(c *cli.Context) (*runtime.Runtime, runtime.CreateOptions, error) {
	id := c.Args().First()
	if err := spec.ValidateID(id); err != nil {
		return nil, runtime.CreateOptions{}, err
	}
	engine, err := engineOption(c)
	if err != nil {
		return nil, runtime.CreateOptions{}, err
	}
	r, err := newRuntime(c)
	if err != nil {
		return nil, runtime.CreateOptions{}, err
	}
	bundle := c.String("bundle")
	var s *specs.Spec
	if c.Bool("verify-attestation") {
		// Run exactly the bytes that were verified.
		a, config, err := nixbundle.VerifyConfig(bundle)
		if err != nil {
			return nil, runtime.CreateOptions{}, err
		}
		// The config was planned for a fixed host: this one must cover it.
		if a.Planned != nil {
			if err := host.Probe().Covers(a.Planned.Host); err != nil {
				return nil, runtime.CreateOptions{}, fmt.Errorf("bundle %s (%s mode): %w", bundle, a.Planned.Mode, err)
			}
		}
		s, err = spec.LoadData(bundle, config)
		if err != nil {
			return nil, runtime.CreateOptions{}, err
		}
	} else if s, err = spec.Load(bundle); err != nil {
		return nil, runtime.CreateOptions{}, err
	}
	po, err := policyOptions(c)
	if err != nil {
		return nil, runtime.CreateOptions{}, err
	}
	if err := checkProduction(c, bundle, s, po.Mode); err != nil {
		return nil, runtime.CreateOptions{}, err
	}
	for _, ws := range po.Workspaces {
		if ws.Kind == policy.WorkspaceCopyInOut {
			return nil, runtime.CreateOptions{}, fmt.Errorf("--workspace %s: copy-in-out needs a sandbox, which writes it back when it ends: use 'nucleus sandbox' (--detach for a long-lived one)", ws.Source)
		}
		if err := runtime.PrepareWorkspace(ws); err != nil {
			return nil, runtime.CreateOptions{}, err
		}
	}
	// A Kubernetes pod's container in a mode joins the pod's network
	// (and IPC and UTS), unless --net says otherwise.
	pod := po.Mode != policy.ModeNone && !c.IsSet("net") && c.String("default-net") == "" && policy.CRIPod(s)
	if pod {
		po.Net = policy.NetPod
	}
	netc, err := networkConfig(c, po.Mode)
	if err != nil {
		return nil, runtime.CreateOptions{}, err
	}
	if pod {
		netc.Mode = network.ModePod
	}
	prep, err := prepare(c, r, id, bundle, s, po, engine)
	if err != nil {
		return nil, runtime.CreateOptions{}, err
	}
	opts := runtime.CreateOptions{
		ID:            id,
		Bundle:        bundle,
		Spec:          prep.Spec,
		Policy:        prep.Plan,
		Audit:         prep.Audit,
		PidFile:       c.String("pid-file"),
		ConsoleSocket: c.String("console-socket"),
		PidfdSocket:   c.String("pidfd-socket"),
		NoPivot:       c.Bool("no-pivot"),
		NoNewKeyring:  c.Bool("no-new-keyring"),
		PreserveFDs:   c.Int("preserve-fds"),
		Engine:        engine,
		Network:       netc,
	}
	return r, opts, serviceOptions(c, &opts)
}
