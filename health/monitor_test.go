package health

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// run drives a Monitor over scripted results (one per round) and returns
// the state changes it reported.
func run(t *testing.T, c Config, results string) []string {
	t.Helper()
	var mu sync.Mutex
	var changes []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i := 0
	m := &Monitor{
		Config: c,
		Probe: func(context.Context) Result {
			mu.Lock()
			defer mu.Unlock()
			if i >= len(results) {
				cancel()
				return Result{}
			}
			ok := results[i] == '+'
			i++
			return Result{OK: ok, Probe: "p"}
		},
		Change: func(from, to State, _ Result, failures int) {
			mu.Lock()
			changes = append(changes, string(to))
			mu.Unlock()
		},
	}
	m.Run(ctx)
	return changes
}

func TestMonitorStates(t *testing.T) {
	fast := Config{Interval: 10 * time.Millisecond, Retries: 2, Timeout: time.Second}
	for _, c := range []struct {
		results string
		want    string
	}{
		{"+", "healthy"},
		{"-+", "healthy"},
		{"--", "unhealthy"},
		{"+-+--", "healthy,unhealthy"},
		{"+--+", "healthy,unhealthy,healthy"},
		{"-", ""},
	} {
		if got := strings.Join(run(t, fast, c.results), ","); got != c.want {
			t.Errorf("%s: changes %q, want %q", c.results, got, c.want)
		}
	}
	// Within the start period failures don't count until the first
	// success.
	slow := fast
	slow.StartPeriod = time.Hour
	if got := strings.Join(run(t, slow, "-----+--"), ","); got != "healthy,unhealthy" {
		t.Errorf("start period: %q", got)
	}
}

func TestParse(t *testing.T) {
	if d, err := ParseDuration("health-interval", "90"); err != nil || d != 90*time.Second {
		t.Errorf("90: %v %v", d, err)
	}
	if _, err := ParseDuration("health-interval", "soon"); err == nil || !strings.Contains(err.Error(), "health-interval") {
		t.Errorf("soon: %v", err)
	}
	if p, port, err := ParseHTTP("readiness-http", "/a:b/c:8080"); err != nil || p != "/a:b/c" || port != 8080 {
		t.Errorf("ParseHTTP: %q %d %v", p, port, err)
	}
	for _, bad := range []string{"8080", "x:8080", "/x:0", "/x:y"} {
		if _, _, err := ParseHTTP("readiness-http", bad); err == nil {
			t.Errorf("ParseHTTP(%q) passed", bad)
		}
	}
}
