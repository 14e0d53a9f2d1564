// Package service runs a container as a long-lived service under a
// supervisor such as systemd: it reports the workload's pid and readiness
// over sd_notify, keeps the watchdog fed while the service is healthy,
// runs the health probes and records their states (in the container's
// state, the audit log and systemd's STATUS=), and stops an unhealthy
// service so that the supervisor's restart policy takes over.
package service

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/health"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/sdnotify"
)

// OnUnhealthy is what happens to a service found unhealthy.
type OnUnhealthy string

const (
	// Kill stops the service: the run ends with a non-zero status.
	Kill OnUnhealthy = "kill"
	// Ignore records the state and keeps the service running.
	Ignore OnUnhealthy = "ignore"
)

// ParseOnUnhealthy accepts kill, ignore and "" (kill).
func ParseOnUnhealthy(s string) (OnUnhealthy, error) {
	switch OnUnhealthy(s) {
	case "", Kill:
		return Kill, nil
	case Ignore:
		return Ignore, nil
	}
	return "", opterr.Errorf("on-unhealthy", "%q: want kill or ignore", s)
}

// Notify is how readiness reaches systemd.
type Notify string

const (
	// NotifyNucleus: nucleus sends READY=1 itself, once the workload
	// runs (and its probes pass).
	NotifyNucleus Notify = "nucleus"
	// NotifyPassthrough: the workload gets a socket and sends READY=1
	// itself; nucleus relays it.
	NotifyPassthrough Notify = "passthrough"
)

// ParseNotify accepts nucleus, passthrough and "" (nucleus).
func ParseNotify(s string) (Notify, error) {
	switch Notify(s) {
	case "", NotifyNucleus:
		return NotifyNucleus, nil
	case NotifyPassthrough:
		return NotifyPassthrough, nil
	}
	return "", opterr.Errorf("sd-notify", "%q: want nucleus or passthrough", s)
}

// Options describe the service side of a run.
type Options struct {
	Health      health.Config
	OnUnhealthy OnUnhealthy
	Notify      Notify
	// ProbeCommand is the probe child's command line (the nucleus binary
	// and its hidden probe command with the global flags), without the
	// container id and config, which Run appends.
	ProbeCommand []string
}

// Active reports whether the run needs anything of this package.
func (so Options) Active() bool {
	return so.Health.Enabled() || so.Notify == NotifyPassthrough || sdnotify.Enabled()
}

// Outcome is what the service side saw of a run.
type Outcome struct {
	// Unhealthy: the service was found unhealthy and stopped.
	Unhealthy bool
	Last      health.Result
}

// Line is the one line to tell the user about an unhealthy stop.
func (out *Outcome) Line(id string) string {
	if out == nil || !out.Unhealthy {
		return ""
	}
	l := fmt.Sprintf("container %s: unhealthy (%s", id, out.Last.Probe)
	if out.Last.Detail != "" {
		l += ": " + out.Last.Detail
	}
	return l + "); stopped"
}

// Check refuses options that cannot work for this run.
func Check(so Options, o runtime.CreateOptions) error {
	if err := so.Health.Check(); err != nil {
		return err
	}
	if !so.Health.Enabled() && so.Notify != NotifyPassthrough {
		return nil
	}
	flag := "health-cmd"
	if so.Notify == NotifyPassthrough && !so.Health.Enabled() {
		flag = "sd-notify"
	}
	if o.Detach {
		return opterr.Errorf(flag, "needs a foreground run (the nucleus run process is what probes and relays); drop --detach")
	}
	if o.Engine == runtime.EngineGvisor {
		return opterr.Errorf(flag, "%w with --engine gvisor", runtime.ErrUnsupported)
	}
	return nil
}

// Run runs the container in the foreground as a service.
func Run(r *runtime.Runtime, o runtime.CreateOptions, so Options) (runtime.Exit, *Outcome, error) {
	if err := Check(so, o); err != nil {
		return runtime.Exit{Status: -1}, nil, err
	}
	if o.Detach {
		ex, err := r.RunResult(o)
		if err == nil {
			err = Started(r, o.ID)
		}
		return ex, nil, err
	}
	s := &svc{r: r, o: o, so: so, out: &Outcome{}, stateDir: engine.StateDir(r.Root, o.ID)}
	if so.Notify == NotifyPassthrough {
		relay, err := s.passthrough(&o)
		if err != nil {
			return runtime.Exit{Status: -1}, nil, err
		}
		defer relay.Close()
	}
	o.OnStart = s.started
	ex, err := r.RunResult(o)
	return ex, s.out, err
}

type svc struct {
	r        *runtime.Runtime
	o        runtime.CreateOptions
	so       Options
	stateDir string
	out      *Outcome

	mu sync.Mutex
	// state is the health state ("" without probes); waiting lists what
	// READY=1 still waits for.
	state   health.State
	waiting map[string]bool
	ready   bool
}

// passthrough gives the container a notify socket and relays what the
// workload sends on it.
func (s *svc) passthrough(o *runtime.CreateOptions) (*sdnotify.Relay, error) {
	relay, err := sdnotify.Listen(sdnotify.RelayDir(s.r.Root, o.ID))
	if err != nil {
		return nil, err
	}
	o.Spec.Mounts = append(slices.Clone(o.Spec.Mounts), specMount(relay.Dir))
	o.Spec.Process.Env = append(slices.Clone(o.Spec.Process.Env), sdnotify.Env+"="+sdnotify.ContainerSocket)
	go relay.Serve(s.relay)
	return relay, nil
}

// relay passes the workload's lines on; its READY=1 is held back until
// the probes (if any) pass too.
func (s *svc) relay(lines []string) {
	var pass []string
	for _, l := range lines {
		if l == "READY=1" {
			s.unblock("workload")
			continue
		}
		pass = append(pass, l)
	}
	if len(pass) > 0 {
		s.send(pass...)
	}
}

func (s *svc) send(lines ...string) {
	if err := sdnotify.Send(lines...); err != nil {
		logrus.Warn(err)
	}
}

// unblock marks one thing READY=1 waited for as done, and sends it once
// nothing is left.
func (s *svc) unblock(what string) {
	s.mu.Lock()
	if s.waiting == nil {
		s.waiting = map[string]bool{}
	}
	delete(s.waiting, what)
	send := len(s.waiting) == 0 && !s.ready
	if send {
		s.ready = true
	}
	s.mu.Unlock()
	if send {
		s.o.Audit.Event("service_ready", nil)
		s.send("READY=1")
	}
}

// started runs once the workload runs: MAINPID, READY=1 unless something
// must pass first, the probes and the watchdog.
func (s *svc) started(pid int) func() {
	s.mu.Lock()
	s.waiting = map[string]bool{"start": true}
	if s.so.Notify == NotifyPassthrough {
		s.waiting["workload"] = true
	}
	if s.so.Health.Enabled() {
		s.waiting["probe"] = true
		s.state = health.Starting
	}
	s.mu.Unlock()
	s.send(fmt.Sprintf("MAINPID=%d", pid))
	s.unblock("start")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if s.so.Health.Enabled() {
		s.record(health.Status{State: health.Starting, Since: time.Now()})
		s.o.Audit.Event("health_status", map[string]any{"state": health.Starting, "probes": s.so.Health.String()})
		cfg := s.so.Health.WithDefaults()
		m := &health.Monitor{Config: cfg, Probe: health.Subprocess(s.so.ProbeCommand[0], append(slices.Clone(s.so.ProbeCommand[1:]), s.o.ID, encode(cfg))), Change: s.change}
		wg.Add(1)
		go func() { defer wg.Done(); m.Run(ctx) }()
	}
	if d := sdnotify.WatchdogInterval(); d > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.watchdog(ctx, d/2) }()
	}
	return func() { cancel(); wg.Wait() }
}

// change records a health state change and acts on it.
func (s *svc) change(from, to health.State, res health.Result, failures int) {
	s.mu.Lock()
	s.state = to
	s.mu.Unlock()
	s.record(health.Status{State: to, Failures: failures, Since: time.Now(), Last: res})
	s.o.Audit.Event("health_status", map[string]any{"state": to, "previous": from, "probe": res.Probe, "detail": res.Detail, "failures": failures})
	s.send("STATUS=" + string(to))
	switch to {
	case health.Healthy:
		s.unblock("probe")
	case health.Unhealthy:
		if s.so.OnUnhealthy == Ignore {
			return
		}
		s.out.Unhealthy, s.out.Last = true, res
		s.o.Audit.Event("health_kill", map[string]any{"probe": res.Probe, "detail": res.Detail})
		s.send("STATUS=unhealthy: stopping")
		if err := s.r.Kill(s.o.ID, unix.SIGKILL, true); err != nil {
			logrus.Warnf("stop unhealthy %s: %v", s.o.ID, err)
		}
	}
}

func (s *svc) record(st health.Status) {
	if err := health.WriteStatus(s.stateDir, st); err != nil {
		logrus.Warnf("health status of %s: %v", s.o.ID, err)
	}
}

// watchdog sends WATCHDOG=1 every tick while the service is healthy (or,
// without probes, running): a stuck or unhealthy service lets systemd's
// watchdog fire.
func (s *svc) watchdog(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		s.mu.Lock()
		ok := s.state == "" || s.state == health.Healthy
		s.mu.Unlock()
		if ok {
			s.send("WATCHDOG=1")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Started tells systemd that container id, started by a command that
// returns (run --detach, start), runs: MAINPID and READY=1.
func Started(r *runtime.Runtime, id string) error {
	if !sdnotify.Enabled() {
		return nil
	}
	st, err := r.State(id)
	if err != nil {
		return err
	}
	if err := sdnotify.Send(fmt.Sprintf("MAINPID=%d", st.InitProcessPid)); err != nil {
		return err
	}
	return sdnotify.Send("READY=1")
}
