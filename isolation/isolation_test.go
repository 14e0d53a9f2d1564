package isolation

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/isolation/host"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
)

func baseSpec() *specs.Spec {
	s := spec.Default(false)
	s.Process.Terminal = false
	return s
}

// A config written ahead of time is planned for host.Fixed, whatever the
// machine writing it lacks: the same input gives the same config anywhere.
func TestPlanIsForTheFixedHost(t *testing.T) {
	t.Setenv("NUCLEUS_DISABLE", "userns,landlock,seccomp")
	out, err := Plan(baseSpec(), policy.ModeAgent, engine.Native)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Linux.UIDMappings) == 0 || out.Linux.Seccomp == nil {
		t.Errorf("plan depends on this machine: uid mappings %v, seccomp %v", out.Linux.UIDMappings, out.Linux.Seccomp != nil)
	}
	if _, err := Plan(baseSpec(), policy.ModeProduction, engine.Native); err == nil {
		t.Error("production planned ahead of time")
	}
	plain := baseSpec()
	if got, _ := Plan(plain, policy.ModeNone, engine.Native); got != plain {
		t.Error("mode none changed the config")
	}
}

func TestPreparePlainAndRefusals(t *testing.T) {
	s := baseSpec()
	p, err := Prepare(s, Options{}, Target{ID: "x", Engine: engine.Native, Rootfs: "/"})
	if err != nil || p.Spec != s || p.Plan != nil || p.Audit != nil {
		t.Errorf("plain options: %+v %v", p, err)
	}
	_, err = Prepare(s, Options{Options: policy.Options{LandlockRules: &policy.LandlockRules{}}}, Target{ID: "x", Rootfs: "/"})
	if err == nil || !strings.Contains(err.Error(), "isolation mode") {
		t.Errorf("landlock rules without a mode: %v", err)
	}
	// Option errors name the option, for the CLI to name its flag.
	_, err = Prepare(s, Options{Options: policy.Options{Mode: policy.ModeAgent, Net: "wifi"}}, Target{ID: "x", Rootfs: "/"})
	var oe *opterr.Error
	if !errors.As(err, &oe) || oe.Option != "net" {
		t.Errorf("bad --net: %v", err)
	}
}

func TestCovers(t *testing.T) {
	if err := (host.Facts{LandlockABI: 7, Seccomp: true, UserNS: true}).Covers(host.Fixed); err != nil {
		t.Errorf("a fully featured host: %v", err)
	}
	if err := (host.Facts{LandlockABI: 7, Seccomp: true}).Covers(host.Fixed); err == nil || !strings.Contains(err.Error(), "user namespaces") {
		t.Errorf("no userns: %v", err)
	}
	if err := (host.Facts{LandlockABI: 0, Seccomp: true, UserNS: true}).Covers(host.Fixed); err != nil {
		t.Errorf("no Landlock (not in the config; the mode decides at run time): %v", err)
	}
}
