package outcome

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Records as this kernel (6.18) printed them to /dev/kmsg.
const (
	kmsgSeccomp = "5,263,8317838267,-;audit: type=1326 audit(1796013640.156:263): auid=4294967295 uid=1073741824 gid=1073741824 ses=4294967295 pid=18630 comm=\"exe\" exe=\"/bin/probe\" sig=31 arch=c000003e syscall=300 compat=0 ip=0x408b4e code=0x80000000\n"
	kmsgAccess  = "5,352,9230714557,-;audit: type=1423 audit(1796014553.032:352): domain=10e8a533d blockers=fs.make_reg path=\"/dev\" dev=\"tmpfs\" ino=1\n"
	kmsgDomain  = "5,353,9230714567,-;audit: type=1424 audit(1796014553.032:352): domain=10e8a533d status=allocated mode=enforcing pid=30548 uid=1073741824 exe=\"/nucleus\" comm=\"3\"\n"
	kmsgOther   = "6,3192,5772823895,-;[  11444]     0 11444      567      428        0      428         0    40960        0             0 sleep\n"
	// A path with a space is hex-encoded, unquoted; the record has
	// dictionary continuation lines.
	kmsgHexPath = "5,400,9300000000,c;audit: type=1423 audit(1796014553.500:400): domain=10e8a533d blockers=fs.write_file path=2F746D702F6120622E747874 dev=\"tmpfs\" ino=5\n SUBSYSTEM=x\n"
)

func TestParseKmsgAndAudit(t *testing.T) {
	seq, msg, ok := ParseKmsg(kmsgSeccomp)
	if !ok || seq != 263 || !strings.HasPrefix(msg, "audit: type=1326 ") || strings.HasSuffix(msg, "\n") {
		t.Fatalf("ParseKmsg = %d %q %v", seq, msg, ok)
	}
	r, ok := ParseAudit(msg)
	if !ok {
		t.Fatalf("ParseAudit(%q) failed", msg)
	}
	if r.Type != 1326 || r.Serial != 263 || !r.Time.Equal(time.Unix(1796013640, 156e6)) {
		t.Errorf("header: type %d serial %d time %v", r.Type, r.Serial, r.Time)
	}
	for k, want := range map[string]string{"pid": "18630", "uid": "1073741824", "comm": "exe", "exe": "/bin/probe", "sig": "31", "arch": "c000003e", "syscall": "300"} {
		if r.Fields[k] != want {
			t.Errorf("field %s = %q, want %q", k, r.Fields[k], want)
		}
	}
	if r.Int("syscall") != 300 || r.Int("nosuch") != -1 || r.Int("comm") != -1 {
		t.Errorf("Int: %d %d %d", r.Int("syscall"), r.Int("nosuch"), r.Int("comm"))
	}

	_, msg, _ = ParseKmsg(kmsgHexPath)
	r, ok = ParseAudit(msg)
	if !ok || r.Fields["path"] != "/tmp/a b.txt" || r.Fields["ino"] != "5" || r.Fields["SUBSYSTEM"] != "" {
		t.Errorf("hex path record: %v %+v", ok, r.Fields)
	}

	_, msg, ok = ParseKmsg(kmsgOther)
	if !ok {
		t.Fatal("ParseKmsg of a plain record failed")
	}
	if _, ok := ParseAudit(msg); ok {
		t.Errorf("ParseAudit accepted %q", msg)
	}
	for _, bad := range []string{"", "no header", "6,x,1,-;msg", "6;msg"} {
		if _, _, ok := ParseKmsg(bad); ok {
			t.Errorf("ParseKmsg accepted %q", bad)
		}
	}
	for _, bad := range []string{"audit: type=x audit(1.2:3): a=b", "audit: type=1326 audit(1.2): a=b", "audit: type=1326 audit(x.2:3): a=b", "audit: type=1326 a=b"} {
		if _, ok := ParseAudit(bad); ok {
			t.Errorf("ParseAudit accepted %q", bad)
		}
	}
}

// fakeLog serves kmsg records as the kernel log.
type fakeLog struct {
	records []string
	on      bool
	reads   int
}

func (l *fakeLog) audit(types []int, wait time.Duration, visit func(AuditRecord) bool, enough func() bool) error {
	l.reads++
	for _, raw := range l.records {
		_, msg, ok := ParseKmsg(raw)
		if !ok {
			continue
		}
		r, ok := ParseAudit(msg)
		if !ok || !containsInt(types, r.Type) {
			continue
		}
		if visit(r) {
			return nil
		}
	}
	enough()
	return nil
}

func (l *fakeLog) auditOn() bool { return l.on }

// seccompRecord is a kill record of pid, uid and syscall nr at t.
func seccompRecord(t time.Time, pid, uid, nr int) string {
	return "5,1,1,-;audit: type=1326 audit(" + stamp(t) + ":1): auid=4294967295 uid=" + itoa(uid) + " gid=0 ses=1 pid=" + itoa(pid) +
		" comm=\"x\" exe=\"/bin/x\" sig=31 arch=c000003e syscall=" + itoa(nr) + " compat=0 ip=0x1 code=0x80000000\n"
}

func stamp(t time.Time) string {
	return fmt.Sprintf("%d.%03d", t.Unix(), t.Nanosecond()/1e6)
}

func itoa(n int) string { return strconv.Itoa(n) }

func agentFacts(start time.Time) Facts {
	return Facts{
		Status: 159, Pid: 1000, Started: start, Ended: start.Add(2 * time.Second),
		Mode: "agent", Seccomp: true, HostKernel: true,
		HostUIDs: []IDRange{{First: 1 << 30, Size: 65536}},
	}
}

func TestClassifySeccomp(t *testing.T) {
	start := time.Unix(1796013640, 0)
	uid := 1 << 30
	in := start.Add(time.Second)
	cases := []struct {
		name    string
		records []string
		facts   func(Facts) Facts
		want    string
	}{
		{"init's own kill", []string{seccompRecord(in, 1000, uid, 139)}, nil,
			"killed by seccomp: syscall sysfs (139) is not in the agent allowlist (see nucleus policy show; --seccomp-profile to extend)"},
		// The init's record wins over a later one of another process
		// with the same host uid (another sandbox).
		{"init over same uid", []string{seccompRecord(in, 1000, uid, 139), seccompRecord(in.Add(time.Millisecond), 1005, uid, 312)}, nil,
			"killed by seccomp: syscall sysfs (139) is not in the agent allowlist (see nucleus policy show; --seccomp-profile to extend)"},
		// A child: matched by uid, after the init's pid, latest wins.
		{"child by uid", []string{seccompRecord(in, 1001, uid, 139), seccompRecord(in.Add(time.Millisecond), 1002, uid+5, 312)}, nil,
			"killed by seccomp: syscall kcmp (312) is not in the agent allowlist (see nucleus policy show; --seccomp-profile to extend)"},
		{"other uid, older pid, outside the window", []string{
			seccompRecord(in, 1001, 0, 139),                         // not the container's uid
			seccompRecord(in, 999, uid, 139),                        // started before the init
			seccompRecord(start.Add(-time.Second), 1001, uid, 139),  // before the run
			seccompRecord(start.Add(5*time.Second), 1001, uid, 139), // after it
		}, nil,
			"killed by seccomp: a syscall not in the agent allowlist (the kernel's record naming it was not found in /dev/kmsg; see nucleus policy show; --seccomp-profile to extend)"},
		{"custom profile", []string{seccompRecord(in, 1000, uid, 29)}, func(f Facts) Facts { f.Mode, f.SeccompCustom = "production", true; return f },
			"killed by seccomp: syscall shmget (29) is not in the production profile (--seccomp-profile)"},
		{"no mode", []string{seccompRecord(in, 1000, uid, 29)}, func(f Facts) Facts { f.Mode = ""; return f },
			"killed by seccomp: syscall shmget (29) is not allowed by the container's seccomp profile"},
		{"gvisor", []string{seccompRecord(in, 1000, uid, 29)}, func(f Facts) Facts { f.HostKernel = false; return f },
			"killed by seccomp: a syscall not in the agent allowlist (gVisor does not say which; see nucleus policy show; --seccomp-profile to extend)"},
		{"no seccomp: just a signal", []string{seccompRecord(in, 1000, uid, 29)}, func(f Facts) Facts { f.Seccomp = false; return f }, ""},
	}
	for _, c := range cases {
		f := agentFacts(start)
		if c.facts != nil {
			f = c.facts(f)
		}
		e := classify(f, &fakeLog{records: c.records})
		if e.Line() != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, e.Line(), c.want)
		}
		if e.Signal != "SIGSYS" || e.Status != 159 || e.Duration != 2*time.Second {
			t.Errorf("%s: signal %q status %d duration %v", c.name, e.Signal, e.Status, e.Duration)
		}
	}
	e := classify(agentFacts(start), &fakeLog{records: []string{seccompRecord(in, 1000, uid, 139)}})
	if e.Reason != Seccomp || e.Syscall != "sysfs" || e.SyscallNr != 139 {
		t.Errorf("exit %+v", e)
	}
	var j map[string]any
	data, _ := json.Marshal(e)
	if err := json.Unmarshal(data, &j); err != nil || j["reason"] != "seccomp" || j["syscall"] != "sysfs" || j["syscall_nr"] != 139.0 || j["signal"] != "SIGSYS" || j["duration_ms"] != 2000.0 {
		t.Errorf("JSON %s", data)
	}
	var back Exit
	if err := json.Unmarshal(data, &back); err != nil || back != e {
		t.Errorf("JSON round trip: %+v, %v; want %+v", back, err, e)
	}
}

func TestClassifyOthers(t *testing.T) {
	start := time.Unix(1796014553, 0)
	log := &fakeLog{}
	// A plain failure reads nothing.
	e := classify(Facts{Status: 1, Mode: "agent", Seccomp: true, HostKernel: true, Landlock: &LandlockRules{}}, log)
	if e.Reason != Exited || e.Line() != "" || log.reads != 0 {
		t.Errorf("exit 1 with audit off: %+v, %d reads", e, log.reads)
	}
	e = classify(Facts{Status: 137, OOMKills: 1, MemoryLimit: 32 << 20, PeakMemoryBytes: 33554432}, log)
	if e.Reason != OOM || e.Line() != "killed by the kernel's OOM killer: memory limit 32M reached (--memory to raise it)" || e.PeakMemoryBytes != 32<<20 {
		t.Errorf("OOM: %+v %q", e, e.Line())
	}
	e = classify(Facts{Status: 137}, log)
	if e.Reason != Signaled || e.Signal != "SIGKILL" || e.Line() != "" {
		t.Errorf("SIGKILL: %+v", e)
	}
	e = e.TimedOut(30 * time.Second)
	if e.Reason != Timeout || e.Status != 124 || e.Line() != "killed by nucleus: --timeout 30s expired" {
		t.Errorf("timeout: %+v %q", e, e.Line())
	}

	ll := &LandlockRules{Write: []string{"/tmp", "/dev/shm", "/workspace"}, NoExecRoot: []string{"/tmp", "/dev"}}
	f := Facts{Status: 1, Pid: 30548, Started: start, Ended: start.Add(time.Second), Mode: "agent", HostKernel: true, Landlock: ll}
	log = &fakeLog{on: true, records: []string{kmsgAccess, kmsgDomain}}
	e = classify(f, log)
	if e.Reason != Landlock || e.Line() != "landlock denied: creating a file in /dev (agent mode allows writes beneath /tmp, /dev/shm, /workspace)" {
		t.Errorf("landlock: %+v %q", e, e.Line())
	}
	// The last denial of the init's domain; another domain's is not ours.
	other := strings.Replace(strings.Replace(kmsgAccess, "10e8a533d", "99", 1), "fs.make_reg", "fs.execute", 1)
	log.records = []string{kmsgAccess, kmsgDomain, kmsgHexPath, other}
	if e = classify(f, log); e.Line() != "landlock denied: write to /tmp/a b.txt (agent mode allows writes beneath /tmp, /dev/shm, /workspace)" {
		t.Errorf("landlock, last denial: %q", e.Line())
	}
	// Another init's domain, audit off, exit 0: nothing.
	for _, g := range []Facts{{Pid: 4}, {Status: 0}} {
		ff := f
		ff.Pid, ff.Status = g.Pid, g.Status
		if ff.Pid == 0 {
			ff.Pid = f.Pid
		}
		if e := classify(ff, log); e.Reason != Exited || e.Line() != "" {
			t.Errorf("landlock with %+v: %+v", g, e)
		}
	}
	log.on = false
	if e := classify(f, log); e.Reason != Exited {
		t.Errorf("landlock with audit off: %+v", e)
	}
	exec := strings.Replace(kmsgAccess, "fs.make_reg path=\"/dev\"", "fs.execute path=\"/tmp/bb\"", 1)
	log = &fakeLog{on: true, records: []string{exec, kmsgDomain}}
	if e := classify(f, log); e.Line() != "landlock denied: exec of /tmp/bb (agent mode allows no exec beneath /tmp, /dev)" {
		t.Errorf("landlock exec: %q", e.Line())
	}
}

func TestFormatBytesAndKeyed(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1G", 32 << 20: "32M", 1536 << 20: "1536M", 4096: "4K", 1000: "1000B", 3 << 40: "3T"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
	v1 := []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
	v2 := []byte("low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n")
	if ParseKeyed(v1, "oom_kill") != 2 || ParseKeyed(v2, "oom_kill") != 1 || ParseKeyed(v2, "nosuch") != 0 {
		t.Errorf("ParseKeyed: %d %d", ParseKeyed(v1, "oom_kill"), ParseKeyed(v2, "oom_kill"))
	}
}
