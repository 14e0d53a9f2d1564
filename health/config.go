// Package health checks a running service the way its operator declares
// it (a command, a TCP port, an HTTP path), from inside the container, and
// turns the results into the states starting, healthy and unhealthy.
//
// A probe runs in the container's confinement: a command through the
// engine's exec path (seccomp, Landlock, capabilities and user namespace of
// the container apply), a TCP or HTTP check from a thread that joined the
// container's network namespace. Both run in a short-lived child process
// (Subprocess) so that a foreground run's reaper, which reaps every child,
// never takes a probe's exit status: the child reports on its stdout.
package health

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nucleus-run/nucleus/opterr"
)

// Config is what to check and how often.
type Config struct {
	// Cmd is run with /bin/sh -c in the container.
	Cmd string
	// TCPPort: a TCP connect to 127.0.0.1:TCPPort in the container's
	// network namespace must succeed.
	TCPPort int
	// HTTPPath and HTTPPort: GET http://127.0.0.1:HTTPPort/HTTPPath must
	// answer 2xx or 3xx.
	HTTPPath string
	HTTPPort int

	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// Defaults are Docker's HEALTHCHECK defaults.
const (
	DefaultInterval = 30 * time.Second
	DefaultTimeout  = 30 * time.Second
	DefaultRetries  = 3
)

// Enabled reports whether any probe is configured.
func (c Config) Enabled() bool { return c.Cmd != "" || c.TCPPort != 0 || c.HTTPPort != 0 }

// WithDefaults fills the unset timings.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	return c
}

// ParseDuration reads a duration flag ("10s", "1m30s"; a bare number is
// seconds) named option.
func ParseDuration(option, s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, opterr.Errorf(option, "%q: want a duration such as 10s or 1m30s", s)
	}
	return d, nil
}

// ParsePort reads a TCP port named option.
func ParsePort(option, s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, opterr.Errorf(option, "%q: want a port 1-65535", s)
	}
	return p, nil
}

// ParseHTTP reads PATH:PORT ("/healthz:8080").
func ParseHTTP(option, s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, opterr.Errorf(option, "%q: want PATH:PORT (e.g. /healthz:8080)", s)
	}
	path := s[:i]
	if !strings.HasPrefix(path, "/") {
		return "", 0, opterr.Errorf(option, "%q: the path must start with /", s)
	}
	port, err := ParsePort(option, s[i+1:])
	return path, port, err
}

// Check refuses timings that cannot work.
func (c Config) Check() error {
	if c.Interval < 0 || c.Timeout < 0 || c.StartPeriod < 0 {
		return opterr.Errorf("health-interval", "durations must not be negative")
	}
	if c.Retries < 0 {
		return opterr.Errorf("health-retries", "%d: want a positive count", c.Retries)
	}
	if c.Interval > 0 && c.Interval < 10*time.Millisecond {
		return opterr.Errorf("health-interval", "%s: want at least 10ms", c.Interval)
	}
	return nil
}

// String describes the probes, for audit events.
func (c Config) String() string {
	var parts []string
	if c.Cmd != "" {
		parts = append(parts, "cmd "+strconv.Quote(c.Cmd))
	}
	if c.TCPPort != 0 {
		parts = append(parts, fmt.Sprintf("tcp %d", c.TCPPort))
	}
	if c.HTTPPort != 0 {
		parts = append(parts, fmt.Sprintf("http %s:%d", c.HTTPPath, c.HTTPPort))
	}
	return strings.Join(parts, ", ")
}
