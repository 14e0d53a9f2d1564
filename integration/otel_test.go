package integration

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP receiver on loopback that decodes what it
// gets with the OTLP protobuf types.
type otlpReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	traces []*coltrace.ExportTraceServiceRequest
	logs   []*collogs.ExportLogsServiceRequest
	bad    []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rcv := &otlpReceiver{}
	rcv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			rcv.bad = append(rcv.bad, req.URL.Path+": content type "+ct)
		}
		switch req.URL.Path {
		case "/v1/traces":
			m := &coltrace.ExportTraceServiceRequest{}
			if err := proto.Unmarshal(body, m); err != nil {
				rcv.bad = append(rcv.bad, "traces: "+err.Error())
			}
			rcv.traces = append(rcv.traces, m)
			out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Write(out)
		case "/v1/logs":
			m := &collogs.ExportLogsServiceRequest{}
			if err := proto.Unmarshal(body, m); err != nil {
				rcv.bad = append(rcv.bad, "logs: "+err.Error())
			}
			rcv.logs = append(rcv.logs, m)
			out, _ := proto.Marshal(&collogs.ExportLogsServiceResponse{})
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Write(out)
		default:
			rcv.bad = append(rcv.bad, "path "+req.URL.Path)
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(rcv.Close)
	return rcv
}

// span is what a test checks of one exported span.
type span struct {
	name   string
	id     string
	events []string
	error  bool
}

func (rcv *otlpReceiver) spans() []span {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var out []span
	for _, req := range rcv.traces {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					sp := span{name: s.Name, error: s.Status != nil && s.Status.Code == 2}
					for _, a := range s.Attributes {
						if a.Key == "container.id" {
							sp.id = a.Value.GetStringValue()
						}
					}
					for _, e := range s.Events {
						sp.events = append(sp.events, e.Name)
					}
					out = append(out, sp)
				}
			}
		}
	}
	return out
}

// logEvents lists the audit events exported as log records, by container.
func (rcv *otlpReceiver) logEvents() map[string][]string {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	out := map[string][]string{}
	for _, req := range rcv.logs {
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					var id, ev string
					for _, a := range r.Attributes {
						switch a.Key {
						case "container.id":
							id = a.Value.GetStringValue()
						case "nucleus.event":
							ev = a.Value.GetStringValue()
						}
					}
					if !strings.Contains(r.Body.GetStringValue(), `"event":"`+ev+`"`) {
						ev = "BAD BODY " + ev
					}
					out[id] = append(out[id], ev)
				}
			}
		}
	}
	return out
}

// TestServiceOpenTelemetry: create, start, exec and delete of a production
// container each arrive at a real OTLP/HTTP receiver as a span, the
// isolation steps as the create span's events, and the audit events as
// log records.
func TestServiceOpenTelemetry(t *testing.T) {
	r := newRunner(t)
	rcv := newOTLPReceiver(t)
	b := newBundle(t, "sleep", "30")
	id := svID(t, r, "otel")
	tr := *r
	tr.Global = []string{"--otlp-endpoint", rcv.URL}
	tr.t = t
	args := append([]string{"create"}, productionArgs(t, r)...)
	if res, err := tr.coreExec(nil, append(args, "--bundle", b.Dir, id)...); err != nil || res.Code != 0 {
		t.Fatalf("create: %v %+v", err, res)
	}
	tr.OK("start", id)
	tr.OK("exec", id, "true")
	tr.OK("delete", "--force", id)
	if len(rcv.bad) > 0 {
		t.Errorf("receiver: %v", rcv.bad)
	}
	got := map[string]span{}
	for _, s := range rcv.spans() {
		if s.id == id {
			got[s.name] = s
		}
	}
	for _, name := range []string{"create", "start", "exec", "delete"} {
		s, ok := got[name]
		if !ok {
			t.Errorf("no %s span for %s (got %v)", name, id, rcv.spans())
		} else if s.error {
			t.Errorf("%s span has an error status", name)
		}
	}
	ev := strings.Join(got["create"].events, " ")
	for _, want := range []string{"container_created", "userns_mapped", "capabilities_dropped", "seccomp_applied"} {
		if !strings.Contains(ev, want) {
			t.Errorf("create span's events %q lack %s", ev, want)
		}
	}
	logs := strings.Join(rcv.logEvents()[id], " ")
	if !strings.Contains(logs, "container_created") || strings.Contains(logs, "BAD BODY") {
		t.Errorf("audit log records for %s: %q", id, logs)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// A bad endpoint is a one-line error naming the flag.
	r.Fail([]string{"--otlp-endpoint", "ftp://"}, "--otlp-endpoint", "ftp://collector", "delete", "--force", "sv-nothing")
}

// TestServiceOpenTelemetryBlackHole: an endpoint that accepts connections
// and never answers (from $OTEL_EXPORTER_OTLP_ENDPOINT) neither fails nor
// holds up a run past the export bound.
func TestServiceOpenTelemetryBlackHole(t *testing.T) {
	r := newRunner(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); held.Wait() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held.Add(1)
			go func() {
				defer held.Done()
				<-stop
				c.Close()
			}()
		}
	}()
	b := newBundle(t, "sh", "-c", "echo served")
	id := svID(t, r, "otelbh")
	cmd := r.Cmd("run", "--bundle", b.Dir, id)
	cmd.Env = append(cmd.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+ln.Addr().String())
	started := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(started)
	if err != nil || strings.TrimSpace(string(out)) != "served" {
		t.Fatalf("run with a black-hole endpoint: %v: %q", err, out)
	}
	// Not a speed test: the bound is 1.5 s; a hang would be minutes.
	if took > 20*time.Second {
		t.Errorf("run with a black-hole endpoint took %s", took)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}
