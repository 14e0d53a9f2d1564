package health

import (
	"context"
	"time"
)

// State is a service's health.
type State string

const (
	Starting  State = "starting"
	Healthy   State = "healthy"
	Unhealthy State = "unhealthy"
)

// Result is one probe round's outcome.
type Result struct {
	OK bool `json:"ok"`
	// Probe names what was checked ("cmd", "tcp 8080", ...); Detail says
	// why it failed (or the command's last output).
	Probe  string `json:"probe,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Monitor runs probe rounds and follows Docker's state rules: starting
// until the first success; healthy after a success; unhealthy after
// Retries failures in a row, where failures within StartPeriod of the start
// don't count as long as the service never was healthy.
type Monitor struct {
	Config Config
	// Probe runs one round (every configured probe); it must return by
	// the context's deadline.
	Probe func(ctx context.Context) Result
	// Change is called on every state change, with the result that
	// caused it and the failures in a row so far.
	Change func(from, to State, r Result, failures int)
}

// Run probes until ctx is done; the first round runs at once, so that a
// service that is ready early is reported ready early.
func (m *Monitor) Run(ctx context.Context) {
	c := m.Config.WithDefaults()
	state := Starting
	failures := 0
	start := time.Now()
	set := func(to State, r Result) {
		if to != state {
			from := state
			state = to
			if m.Change != nil {
				m.Change(from, to, r, failures)
			}
		}
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, c.Timeout+5*time.Second)
		r := m.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if r.OK {
			failures = 0
			set(Healthy, r)
		} else if state != Starting || time.Since(start) >= c.StartPeriod {
			failures++
			if failures >= c.Retries {
				set(Unhealthy, r)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.Interval):
		}
	}
}
