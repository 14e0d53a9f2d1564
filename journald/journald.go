// Package journald sends a container's output and nucleus's audit events to
// the systemd journal, through go-systemd's native protocol client, with
// the fields a service's operator filters on: CONTAINER_ID,
// SYSLOG_IDENTIFIER and PRIORITY (stdout at info, stderr at err).
//
// A detached container outlives the nucleus that started it, so its
// output is relayed by a small process of its own (Relay, run by the CLI
// as a hidden command) that holds the read ends of its stdout and stderr
// pipes and ends at their EOF.
package journald

import (
	"bufio"
	"errors"
	"io"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// ErrUnavailable marks a host whose journal socket is not there.
var ErrUnavailable = errors.New("the journal's socket (/run/systemd/journal/socket) is not there")

// Priorities of the two streams and of audit events.
const (
	StdoutPriority = journal.PriInfo
	StderrPriority = journal.PriErr
	AuditPriority  = journal.PriInfo
)

// AuditIdentifier is the SYSLOG_IDENTIFIER of nucleus's own audit events;
// the workload's lines carry the container's id.
const AuditIdentifier = "nucleus"

// maxLine is the longest line sent as one entry; a longer one is split.
const maxLine = 48 << 10

// Available reports whether the journal can be written to.
func Available() bool { return journal.Enabled() }

// Send sends one entry for container id.
func Send(id, ident, msg string, pri journal.Priority, extra map[string]string) error {
	vars := map[string]string{"CONTAINER_ID": id, "SYSLOG_IDENTIFIER": ident}
	for k, v := range extra {
		vars[k] = v
	}
	return journal.Send(msg, pri, vars)
}

// Relay sends each line read from r as an entry of container id at pri,
// until EOF. An entry the journal refuses is dropped: the workload must
// never block on its log.
func Relay(r io.Reader, id string, pri journal.Priority) error {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			msg := string(line)
			if line[len(line)-1] == '\n' {
				msg = msg[:len(msg)-1]
			}
			_ = Send(id, id, msg, pri, nil)
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// RelayAll relays stdout and stderr until both end.
func RelayAll(id string, stdout, stderr io.Reader) {
	var wg sync.WaitGroup
	for _, s := range []struct {
		r   io.Reader
		pri journal.Priority
	}{{stdout, StdoutPriority}, {stderr, StderrPriority}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = Relay(s.r, id, s.pri)
		}()
	}
	wg.Wait()
}

// AuditSink sends an audit event (its JSON line as the message) with the
// event's name in NUCLEUS_EVENT.
func AuditSink(id string) func(name string, line []byte) {
	return func(name string, line []byte) {
		msg := string(line)
		if n := len(msg); n > 0 && msg[n-1] == '\n' {
			msg = msg[:n-1]
		}
		_ = Send(id, AuditIdentifier, msg, AuditPriority, map[string]string{"NUCLEUS_EVENT": name})
	}
}
