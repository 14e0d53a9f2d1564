package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const journaldBin = "/lib/systemd/systemd-journald"

// TestServiceJournald runs a real systemd-journald in a mount namespace of
// the test's own (its /run/systemd/journal and /run/log a tmpfs there, so
// the host's journal, if any, is never touched), runs a foreground and a
// detached service with --log-driver journald in that namespace, and
// reads the entries back with journalctl.
func TestServiceJournald(t *testing.T) {
	r := newRunner(t)
	_, err := os.Stat(journaldBin)
	need(t, err == nil, "needs systemd-journald (apt-get install systemd)")
	requireCmd(t, "journalctl")
	requireCmd(t, "unshare")
	machineID, err := os.ReadFile("/etc/machine-id")
	need(t, err == nil && len(strings.TrimSpace(string(machineID))) == 32, "needs /etc/machine-id (journald names its directory after it)")

	bad := newBundle(t, "true")
	badID := svID(t, r, "jbad")
	r.Fail([]string{"--log-driver", "syslog", "journald"}, "run", "--log-driver", "syslog", "--bundle", bad.Dir, badID)
	if _, err := os.Stat("/run/systemd/journal/socket"); err != nil {
		// This host has no journal: a clear refusal, not output lost.
		r.Fail([]string{"--log-driver", "journal"}, "run", "--log-driver", "journald", "--bundle", bad.Dir, badID)
	}
	assertNoLeftovers(t, r.Root, badID, bad.Dir)

	fg := newBundle(t, "sh", "-c", "echo fg-out-line; echo fg-err-line >&2; exit 3")
	bg := newBundle(t, "sh", "-c", "sleep 1; echo bg-out-line; echo bg-err-line >&2")
	fgID, bgID := svID(t, r, "jfg"), svID(t, r, "jbg")
	dir := t.TempDir()
	prod := strings.Join(productionArgs(t, r), " ")
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	n := fmt.Sprintf("%s --root %s", q(r.Bin), q(r.Root))
	jdir := "/run/log/journal/" + strings.TrimSpace(string(machineID))
	script := fmt.Sprintf(`set -u
mount -t tmpfs -o size=64m tmpfs /run/systemd
mount -t tmpfs -o size=64m tmpfs /run/log
mkdir -p /run/systemd/journal
# Not PID 1's journald: it logs to the console (our file) instead.
SYSTEMD_LOG_TARGET=console %[1]s >%[2]s/journald.log 2>&1 &
jp=$!
trap 'kill $jp' EXIT
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
%[3]s run --log-driver journald %[4]s --bundle %[5]s %[6]s >%[2]s/fg.out 2>%[2]s/fg.err
echo $? >%[2]s/fg.status
%[3]s run -d --log-driver journald %[4]s --bundle %[7]s %[8]s >%[2]s/bg.out 2>%[2]s/bg.err || echo "run -d failed: $?" >>%[2]s/bg.err
for i in $(seq 100); do
	journalctl --directory=%[9]s -o json --no-pager CONTAINER_ID=%[8]s 2>/dev/null | grep -q bg-err-line &&
	journalctl --directory=%[9]s -o json --no-pager CONTAINER_ID=%[8]s 2>/dev/null | grep -q bg-out-line && break
	sleep 0.1
done
%[3]s delete --force %[8]s
journalctl --directory=%[9]s -o json --no-pager >%[2]s/journal.json
`, journaldBin, dir, n, prod, q(fg.Dir), fgID, q(bg.Dir), bgID, jdir)
	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		jl, _ := os.ReadFile(filepath.Join(dir, "journald.log"))
		t.Fatalf("journald script: %v: %s\njournald: %s", err, out, jl)
	}
	read := func(name string) string {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(data))
	}
	if s := read("fg.status"); s != "3" {
		t.Errorf("foreground run: exit %s, want the workload's 3; stderr: %s", s, read("fg.err"))
	}
	for _, f := range []string{"fg.out", "bg.err"} {
		if s := read(f); s != "" {
			t.Errorf("%s: want nothing (it goes to the journal), got %q", f, s)
		}
	}
	type entry map[string]string
	var entries []entry
	f, err := os.Open(filepath.Join(dir, "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		s := entry{}
		for k, v := range e {
			if str, ok := v.(string); ok {
				s[k] = str
			}
		}
		entries = append(entries, s)
	}
	find := func(msg string) entry {
		for _, e := range entries {
			if e["MESSAGE"] == msg {
				return e
			}
		}
		return nil
	}
	for _, c := range []struct{ msg, id, pri string }{
		{"fg-out-line", fgID, "6"}, {"fg-err-line", fgID, "3"},
		{"bg-out-line", bgID, "6"}, {"bg-err-line", bgID, "3"},
	} {
		e := find(c.msg)
		if e == nil {
			t.Errorf("%q is not in the journal (%d entries)", c.msg, len(entries))
			continue
		}
		if e["CONTAINER_ID"] != c.id || e["SYSLOG_IDENTIFIER"] != c.id || e["PRIORITY"] != c.pri {
			t.Errorf("%q: CONTAINER_ID=%s SYSLOG_IDENTIFIER=%s PRIORITY=%s; want %s, %s, %s", c.msg,
				e["CONTAINER_ID"], e["SYSLOG_IDENTIFIER"], e["PRIORITY"], c.id, c.id, c.pri)
		}
	}
	events := map[string]bool{}
	for _, e := range entries {
		if e["CONTAINER_ID"] == fgID && e["SYSLOG_IDENTIFIER"] == "nucleus" && e["NUCLEUS_EVENT"] != "" {
			events[e["NUCLEUS_EVENT"]] = true
			if !strings.Contains(e["MESSAGE"], `"event":"`+e["NUCLEUS_EVENT"]+`"`) {
				t.Errorf("audit entry %s: message %q is not its JSON event", e["NUCLEUS_EVENT"], e["MESSAGE"])
			}
		}
	}
	for _, ev := range []string{"container_created", "seccomp_applied", "container_started", "container_exited"} {
		if !events[ev] {
			t.Errorf("audit event %s of %s not in the journal (have %v)", ev, fgID, events)
		}
	}
	assertNoLeftovers(t, r.Root, fgID, fg.Dir)
	assertNoLeftovers(t, r.Root, bgID, bg.Dir)
}
