package policy

import (
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/nucleus-run/nucleus/opterr"
)

// Audit writes one JSON line per isolation step and lifecycle change.
// A nil *Audit discards events, so callers need no checks.
type Audit struct {
	mu      sync.Mutex
	file    *os.File
	id      string
	posture string
	debug   bool
	// sinks receive every event too (the journal, OpenTelemetry).
	sinks []func(name string, line []byte)
}

// OpenAudit appends to path ("" for none). With debug, events also go to
// stderr.
func OpenAudit(path, id, posture string, debug bool) (*Audit, error) {
	a := &Audit{id: id, posture: posture, debug: debug}
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, opterr.Errorf("audit-log", "%s: %w", path, err)
		}
		a.file = f
	}
	if a.file == nil && !debug {
		return nil, nil
	}
	return a, nil
}

// WithSink returns a, or a new Audit for id when a is nil, that also hands
// every event (its name and JSON line) to sink.
func (a *Audit) WithSink(id string, sink func(name string, line []byte)) *Audit {
	if a == nil {
		a = &Audit{id: id}
	}
	a.mu.Lock()
	a.sinks = append(a.sinks, sink)
	a.mu.Unlock()
	return a
}

// File is the log's descriptor, handed to the pre-exec step so it can log
// from inside the container (nil if no file).
func (a *Audit) File() *os.File {
	if a == nil {
		return nil
	}
	return a.file
}

// SetPosture changes the posture recorded in later events.
func (a *Audit) SetPosture(p string) {
	if a != nil {
		a.mu.Lock()
		a.posture = p
		a.mu.Unlock()
	}
}

// Event records one event with extra fields.
func (a *Audit) Event(name string, fields map[string]any) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "event": name, "id": a.id, "posture": a.posture}
	for k, v := range fields {
		e[k] = v
	}
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	line = append(line, '\n')
	if a.file != nil {
		_, _ = a.file.Write(line)
	}
	if a.debug {
		_, _ = os.Stderr.Write(line)
	}
	for _, s := range a.sinks {
		s(name, line)
	}
}

// PlanEvents writes container_created and one event per step of the plan,
// as every engine does before the workload starts. created adds fields to
// container_created; annotate, if set, may add fields to a step's event or
// drop it (false) when the engine logs that step itself.
func (a *Audit) PlanEvents(bundle string, plan *Plan, created map[string]any, annotate func(Step, map[string]any) bool) {
	if a == nil || plan == nil {
		return
	}
	fields := map[string]any{"bundle": bundle, "mode": plan.Mode}
	for k, v := range created {
		fields[k] = v
	}
	a.Event("container_created", fields)
	for _, st := range plan.Steps {
		fields := map[string]any{"applied": st.Applied, "detail": st.Detail}
		if st.Name == "seccomp_applied" {
			fields["syscalls"] = plan.SeccompSyscalls
		}
		if annotate != nil && !annotate(st, fields) {
			continue
		}
		a.Event(st.Name, fields)
	}
}

// Close closes the log file.
func (a *Audit) Close() {
	if a != nil && a.file != nil {
		a.file.Close()
	}
}
