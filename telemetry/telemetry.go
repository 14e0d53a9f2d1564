// Package telemetry records one nucleus command (create, start, exec,
// delete, run) as an OpenTelemetry span, with its audit events (the
// isolation steps) as the span's events and as log records, and hands it
// to the OTLP/HTTP exporter, nucleus-otlp (package telemetry/otlp).
//
// The exporter is a program of its own so that nucleus never links the
// OpenTelemetry SDK, its exporters and protobuf: every nucleus process,
// each container's init among them, would pay their package
// initialization. This package only records; nothing runs unless an
// endpoint is given. Export never holds up or fails a container: End waits
// for the exporter at most FlushTimeout, and its failures are ignored.
package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/nucleus-run/nucleus/opterr"
)

// EndpointEnv is the standard variable the endpoint may come from.
const EndpointEnv = "OTEL_EXPORTER_OTLP_ENDPOINT"

// Exporter is the exporter program's name, looked up next to nucleus's own
// binary, then on PATH.
const Exporter = "nucleus-otlp"

// FlushTimeout bounds what exporting costs a command at its end.
const FlushTimeout = 1500 * time.Millisecond

// ExportTimeout bounds the exporter's work (one attempt per signal).
const ExportTimeout = time.Second

// ErrEndpoint marks an endpoint that is not an http(s) URL.
var ErrEndpoint = errors.New("not an http:// or https:// URL with a host")

// Span is what the exporter receives on its stdin.
type Span struct {
	Name       string         `json:"name"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Attributes map[string]any `json:"attributes"`
	Events     []Event        `json:"events,omitempty"`
	Error      string         `json:"error,omitempty"`
	Version    string         `json:"version,omitempty"`
}

// Event is an audit event: a span event and a log record.
type Event struct {
	Name   string         `json:"name"`
	Time   time.Time      `json:"time"`
	Fields map[string]any `json:"fields,omitempty"`
	// Line is the audit log's JSON line, the log record's body.
	Line string `json:"line"`
}

// ParseEndpoint checks a base URL ("http://collector:4318"); the signals'
// paths (/v1/traces, /v1/logs) are appended to its path.
func ParseEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, opterr.Errorf("otlp-endpoint", "%q: %w", raw, ErrEndpoint)
	}
	return u, nil
}

// Session records one command's span.
type Session struct {
	endpoint string
	mu       sync.Mutex
	span     Span
	ended    bool
}

// Start begins the span of command for container id.
func Start(endpoint, version, command, id string) (*Session, error) {
	if _, err := ParseEndpoint(endpoint); err != nil {
		return nil, err
	}
	return &Session{endpoint: endpoint, span: Span{
		Name: command, Start: time.Now(), Version: version,
		Attributes: map[string]any{"container.id": id, "nucleus.command": command},
	}}, nil
}

// AuditSink records an audit event.
func (s *Session) AuditSink(name string, line []byte) {
	if s == nil {
		return
	}
	var fields map[string]any
	_ = json.Unmarshal(line, &fields)
	for _, k := range []string{"event", "time", "id"} {
		delete(fields, k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.span.Events = append(s.span.Events, Event{Name: name, Time: time.Now(), Fields: fields, Line: string(bytes.TrimRight(line, "\n"))})
	}
}

// SetAttribute records a fact of the command (its exit status).
func (s *Session) SetAttribute(key string, value any) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.span.Attributes[key] = value
	s.mu.Unlock()
}

// End ends the span (failed, if err) and hands it to the exporter, waiting
// for it at most FlushTimeout. Only the first call counts. It reports
// whether the exporter finished in time (false also when it is missing).
func (s *Session) End(err error) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return false
	}
	s.ended = true
	s.span.End = time.Now()
	if err != nil {
		s.span.Error = err.Error()
	}
	data, jerr := json.Marshal(s.span)
	s.mu.Unlock()
	path := exporterPath()
	if jerr != nil || path == "" {
		return false
	}
	cmd := exec.Command(path, s.endpoint)
	cmd.Stdin = bytes.NewReader(data)
	// Its own limits apply to the exporter, whatever the caller set.
	cmd.Env = []string{}
	if cmd.Start() != nil {
		return false
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.Success()
	case <-time.After(FlushTimeout):
		_ = cmd.Process.Kill()
		return false
	}
}

func exporterPath() string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), Exporter)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	p, _ := exec.LookPath(Exporter)
	return p
}

// Available reports whether the exporter can be found.
func Available() bool { return exporterPath() != "" }
