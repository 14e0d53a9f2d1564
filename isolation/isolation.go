// Package isolation prepares a container's isolation in one place, for the
// CLI and the Go sandbox API alike: it turns a bundle's config, the
// caller's policy options and the facts of the host (or of the fixed host
// a bundle is planned for) into the config an engine runs, the plan the
// runtime carries out, and the audit log. It is the only caller of
// policy.Apply.
package isolation

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/nucleus-run/nucleus/isolation/host"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
)

// Options are what the caller asks for: the mode and its inputs (flags or
// API fields) and where audit events go.
type Options struct {
	policy.Options
	// AuditLog is a file to append audit events to ("" for none); Debug
	// mirrors them on stderr.
	AuditLog string
	Debug    bool
}

// Target is where the config will run.
type Target struct {
	// ID is the container's id (audit events carry it).
	ID     string
	Engine engine.Kind
	// Rootfs is the path the container's rootfs will have, for the user
	// namespace's reach (Runtime.RootfsFor).
	Rootfs string
}

// Prepared is a config ready for an engine. Plan and Audit are nil for a
// plain OCI bundle run as runc would.
type Prepared struct {
	Spec  *specs.Spec
	Plan  *policy.Plan
	Audit *policy.Audit
}

// Plain reports whether o asks for nothing: the bundle's config runs as it
// is, exactly as under runc.
func (o *Options) Plain() bool {
	return o.Mode == policy.ModeNone && o.Seccomp == nil && len(o.Workspaces) == 0 &&
		o.MemoryLimit <= 0 && o.Pids <= 0 && o.CPUs <= 0 && o.LandlockRules == nil
}

// Prepare applies o to s for t, against this host's facts (probed now),
// and opens the audit log. Steps the host cannot take are logged as
// warnings (and in the audit log), or refused in the strict modes.
func Prepare(s *specs.Spec, o Options, t Target) (*Prepared, error) {
	if o.Plain() {
		return &Prepared{Spec: s}, nil
	}
	if o.LandlockRules != nil && o.Mode == policy.ModeNone {
		return nil, opterr.Errorf("landlock-policy", "needs an isolation mode (agent, strict-agent or production)")
	}
	po := o.Options
	po.Gvisor = t.Engine == engine.Gvisor
	setFacts(&po, host.Probe())
	po.UserNSBlocker = host.UserNSBlocker(t.Rootfs)
	out, plan, err := policy.Apply(s, po)
	if err != nil {
		return nil, err
	}
	audit, err := policy.OpenAudit(o.AuditLog, t.ID, plan.Posture(), o.Debug)
	if err != nil {
		return nil, err
	}
	for _, w := range plan.Warnings {
		logrus.Warnf("%s mode: isolation step not applied: %s", o.Mode, w)
	}
	return &Prepared{Spec: out, Plan: plan, Audit: audit}, nil
}

// Plan applies a mode for a config written ahead of time (nucleus bundle,
// nucleus export): against host.Fixed, never the facts of the machine it
// happens to be written on, so the same flake gives the same attested
// config everywhere. The host that runs it is checked at start
// (host.Probe().Covers).
func Plan(s *specs.Spec, mode policy.Mode, kind engine.Kind) (*specs.Spec, error) {
	if mode == policy.ModeProduction {
		return nil, fmt.Errorf("production mode needs pinned profiles and limits given at run time; write the config with agent or strict-agent and run it with --mode production")
	}
	if mode == policy.ModeNone {
		return s, nil
	}
	po := policy.Options{Mode: mode, Gvisor: kind == engine.Gvisor}
	setFacts(&po, host.Fixed)
	out, _, err := policy.Apply(s, po)
	return out, err
}

func setFacts(o *policy.Options, f host.Facts) {
	o.HostLandlockABI, o.HostSeccomp, o.HostUserNS = f.LandlockABI, f.Seccomp, f.UserNS
}
