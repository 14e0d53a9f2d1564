package runtime

import (
	"time"

	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/runtime/outcome"
)

// Exit is how a run ended and, when something killed it, who: see
// package outcome. Exit.Line is the one line to show the user.
type Exit = outcome.Exit

// ExitReasonEvent is the audit event RunResult and Sandbox write
// when they know who ended the run (seccomp, OOM, Landlock, timeout).
const ExitReasonEvent = "exit_reason"

// RunResult is Run that also says how the run ended: for an attached run,
// its status, the signal, who killed it (seccomp naming the syscall, the
// OOM killer, a Landlock denial), its duration and peak memory. When it
// knows who, it writes an exit_reason event to the run's audit log. A
// detached run reports status 0 and nothing else.
func (r *Runtime) RunResult(o CreateOptions) (Exit, error) {
	if err := o.Normalize(); err != nil {
		return outcome.Plain(-1), err
	}
	if err := checkNetwork(o); err != nil {
		return outcome.Plain(-1), err
	}
	e := r.engineOf(o.Engine)
	// The one thing the start path pays for: the kernel log is read
	// after an exit that needs explaining, for records since now.
	started := time.Now()
	var info engine.RunInfo
	var err error
	if rep, ok := e.(engine.RunReporter); ok && !o.Detach {
		info, err = rep.RunReport(o)
	} else {
		info.Status, err = e.Run(o)
	}
	if err != nil || !o.Detach && !o.Keep {
		// The container is gone: its network goes with it.
		if nerr := r.releaseNetwork(o.ID); nerr != nil && err == nil {
			err = nerr
		}
	}
	if err != nil || o.Detach {
		return outcome.Plain(info.Status), r.explainFull(err)
	}
	ex := outcome.Classify(runFacts(o, info, started, time.Now()))
	if ex.Line() != "" {
		o.Audit.Event(ExitReasonEvent, ex.Fields())
	}
	return ex, nil
}

// runFacts are what classifying the run's end needs from its options.
func runFacts(o CreateOptions, info engine.RunInfo, started, ended time.Time) outcome.Facts {
	f := outcome.Facts{
		Status: info.Status, Pid: info.Pid, Started: started, Ended: ended,
		OOMKills: info.OOMKills, PeakMemoryBytes: info.PeakMemoryBytes,
		HostKernel: o.Engine != EngineGvisor,
	}
	if p := o.Policy; p != nil {
		f.Mode, f.SeccompCustom = string(p.Mode), p.SeccompCustom
		if lp := p.Landlock; lp != nil {
			f.Landlock = &outcome.LandlockRules{Write: lp.Write, Exec: lp.Exec, NoExecRoot: lp.ExecRootExcept}
		}
	}
	if s := o.Spec; s != nil && s.Linux != nil {
		l := s.Linux
		f.Seccomp = l.Seccomp != nil
		if l.Resources != nil && l.Resources.Memory != nil && l.Resources.Memory.Limit != nil && *l.Resources.Memory.Limit > 0 {
			f.MemoryLimit = *l.Resources.Memory.Limit
		}
		for _, m := range l.UIDMappings {
			f.HostUIDs = append(f.HostUIDs, outcome.IDRange{First: m.HostID, Size: m.Size})
		}
	}
	if len(f.HostUIDs) == 0 && o.Spec != nil && o.Spec.Process != nil {
		f.HostUIDs = []outcome.IDRange{{First: o.Spec.Process.User.UID, Size: 1}}
	}
	return f
}
