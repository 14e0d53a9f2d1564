package runtime

import (
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/runtime/outcome"
	"github.com/nucleus-run/nucleus/spec"
)

// runFacts takes what classifying an exit needs from the applied plan.
func TestRunFacts(t *testing.T) {
	s, plan, err := policy.Apply(spec.Default(false), policy.Options{
		Mode: policy.ModeAgent, HostLandlockABI: 7, HostSeccomp: true, HostUserNS: true, MemoryLimit: 32 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(100, 0)
	info := engine.RunInfo{Status: 159, Pid: 42, OOMKills: 1, PeakMemoryBytes: 5}
	f := runFacts(CreateOptions{Spec: s, Policy: plan}, info, start, start.Add(time.Second))
	want := outcome.Facts{
		Status: 159, Pid: 42, Started: start, Ended: start.Add(time.Second), OOMKills: 1, PeakMemoryBytes: 5,
		MemoryLimit: 32 << 20, Mode: "agent", Seccomp: true, HostKernel: true,
		HostUIDs: []outcome.IDRange{{First: policy.HostUID, Size: 65536}},
		Landlock: &outcome.LandlockRules{Write: plan.Landlock.Write, NoExecRoot: plan.Landlock.ExecRootExcept},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("runFacts =\n%+v\nwant\n%+v", f, want)
	}

	// A user's profile, the gVisor engine; a plain config's uid.
	s, plan, err = policy.Apply(spec.Default(false), policy.Options{
		Mode: policy.ModeAgent, HostSeccomp: true, Gvisor: true, Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess},
	})
	if err != nil {
		t.Fatal(err)
	}
	f = runFacts(CreateOptions{Spec: s, Policy: plan, Engine: EngineGvisor}, info, start, start)
	if !f.SeccompCustom || f.HostKernel || f.Landlock != nil {
		t.Errorf("gVisor with a profile: %+v", f)
	}
	plain := spec.Default(false)
	plain.Process.User.UID = 7
	f = runFacts(CreateOptions{Spec: plain}, info, start, start)
	if f.Mode != "" || f.MemoryLimit != 0 || !reflect.DeepEqual(f.HostUIDs, []outcome.IDRange{{First: 7, Size: 1}}) {
		t.Errorf("plain config: %+v", f)
	}
}
