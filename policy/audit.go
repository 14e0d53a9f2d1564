package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Audit writes one JSON line per isolation step and lifecycle change.
// A nil *Audit discards events, so callers need no checks.
type Audit struct {
	mu      sync.Mutex
	file    *os.File
	id      string
	posture string
	debug   bool
}

// OpenAudit appends to path ("" for none). With debug, events also go to
// stderr.
func OpenAudit(path, id, posture string, debug bool) (*Audit, error) {
	a := &Audit{id: id, posture: posture, debug: debug}
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("--audit-log %s: %w", path, err)
		}
		a.file = f
	}
	if a.file == nil && !debug {
		return nil, nil
	}
	return a, nil
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
		a.posture = p
	}
}

// Event records one event with extra fields.
func (a *Audit) Event(name string, fields map[string]any) {
	if a == nil {
		return
	}
	e := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "event": name, "id": a.id, "posture": a.posture}
	for k, v := range fields {
		e[k] = v
	}
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file != nil {
		_, _ = a.file.Write(line)
	}
	if a.debug {
		_, _ = os.Stderr.Write(line)
	}
}

// Close closes the log file.
func (a *Audit) Close() {
	if a != nil && a.file != nil {
		a.file.Close()
	}
}
