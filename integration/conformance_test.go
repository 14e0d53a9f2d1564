package integration

// Regression tests for the runtime-spec conformance fixes that
// `make conformance` (runtime-tools' validation programs) found: each
// checks one behaviour the spec's text asks for, on a real container.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cfID is a fresh container id "cf-<name>-<random>", force-deleted at the
// end of the test.
func cfID(t testing.TB, r *Runner, name string) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := "cf-" + name + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { _ = r.Cmd("delete", "--force", id).Run() })
	return id
}

// hookSh is a hook that runs script in the bundle's busybox sh.
func hookSh(b *Bundle, script string) specs.Hook {
	return specs.Hook{Path: filepath.Join(b.Rootfs, "bin", "busybox"), Args: []string{"sh", "-c", script}}
}

func readHookState(t *testing.T, path string) specs.State {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("hook state: %v", err)
	}
	var s specs.State
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("hook state %s: %v: %s", path, err, data)
	}
	return s
}

// TestConformanceHooksLifecycle: runtime.md's lifecycle (runtime-spec
// 1.3.0). Prestart runs in create (and sees the container created);
// poststart runs in start, after the user process started and before start
// returns, and sees it running; poststop runs in delete. A failing poststop
// hook is a warning: the next runs, and delete succeeds. libcontainer alone
// ran poststart inside create and failed the delete on a failing poststop
// hook.
func TestConformanceHooksLifecycle(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "echo process >> /order")
	b.Spec.Root.Readonly = false
	out := b.Rootfs
	b.Spec.Annotations = map[string]string{"org.example.cf": "hooks"}
	b.Spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 prestart is deprecated but in the spec, and what runtime-tools checks
		Prestart: []specs.Hook{hookSh(b, "cat > "+out+"/prestart.json; echo prestart >> "+out+"/order")},
		Poststart: []specs.Hook{
			hookSh(b, "echo poststart1 >> "+out+"/order"),
			hookSh(b, "cat > "+out+"/poststart.json; echo poststart2 >> "+out+"/order"),
		},
		Poststop: []specs.Hook{
			hookSh(b, "echo poststop-fails >> "+out+"/order; exit 1"),
			hookSh(b, "cat > "+out+"/poststop.json; echo poststop >> "+out+"/order"),
		},
	}
	b.Save(t)
	id := cfID(t, r, "hooks")
	order := func() string { data, _ := os.ReadFile(filepath.Join(out, "order")); return string(data) }
	// hooks is the order the hooks ran in; the process runs alongside
	// the poststart hooks, and only has to come after prestart.
	hooks := func() string {
		got := order()
		if i, j := strings.Index(got, "process\n"), strings.Index(got, "prestart\n"); i >= 0 && i < j {
			t.Errorf("the process ran before the prestart hook: %q", got)
		}
		return strings.Replace(got, "process\n", "", 1)
	}

	r.coreDetached("create", "--bundle", b.Dir, id)
	pid := r.corePid(id)
	if got := order(); got != "prestart\n" {
		t.Fatalf("after create the hooks ran %q, want only prestart (poststart belongs to start)", got)
	}
	pre := readHookState(t, filepath.Join(out, "prestart.json"))
	if pre.Status != specs.StateCreated || pre.ID != id || pre.Pid != pid || pre.Bundle != b.Dir || pre.Annotations["org.example.cf"] != "hooks" {
		t.Errorf("prestart hook's state: %+v (want created, id %s, pid %d, bundle %s, the annotation)", pre, id, pid, b.Dir)
	}

	r.OK("start", id)
	// Before start returned: both poststart hooks, in order.
	if got := hooks(); got != "prestart\npoststart1\npoststart2\n" {
		t.Errorf("after start the hooks ran %q, want both poststart hooks in order", got)
	}
	post := readHookState(t, filepath.Join(out, "poststart.json"))
	if post.Status != specs.StateRunning || post.Pid != pid || post.ID != id {
		t.Errorf("poststart hook's state: %+v (want running, pid %d)", post, pid)
	}
	r.WaitStatus(id, "stopped")

	res := r.OK("delete", id)
	if !strings.Contains(res.Stderr, "poststop hook #0 failed") {
		t.Errorf("delete: no warning for the failing poststop hook; stderr: %q", res.Stderr)
	}
	if got := order(); !strings.Contains(got, "process\n") {
		t.Errorf("the process did not run: %q", got)
	}
	if got := hooks(); got != "prestart\npoststart1\npoststart2\npoststop-fails\npoststop\n" {
		t.Errorf("hooks ran %q, want prestart, both poststart and both poststop hooks, in order", got)
	}
	stop := readHookState(t, filepath.Join(out, "poststop.json"))
	if stop.Status != specs.StateStopped || stop.ID != id {
		t.Errorf("poststop hook's state: %+v (want stopped)", stop)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// run does create, start and delete in one: the same hooks, in order.
	os.Remove(filepath.Join(out, "order"))
	id2 := cfID(t, r, "hooksrun")
	r.OK("run", "--bundle", b.Dir, id2)
	if got := hooks(); got != "prestart\npoststart1\npoststart2\npoststop-fails\npoststop\n" || !strings.Contains(order(), "process\n") {
		t.Errorf("run: hooks and process ran %q", order())
	}
	assertNoLeftovers(t, r.Root, id2, b.Dir)
}

// TestConformanceFailingPoststart: runtime.md (1.3.0), step 9: "If any
// poststart hook fails, the runtime MUST generate an error, stop the
// container, and continue the lifecycle at step 12" (destroy, then the
// poststop hooks). The hooks after the failing one do not run. For start
// and for run.
func TestConformanceFailingPoststart(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	out := b.Rootfs
	b.Spec.Hooks = &specs.Hooks{
		Poststart: []specs.Hook{
			hookSh(b, "echo poststart-fails >> "+out+"/order; exit 3"),
			hookSh(b, "echo poststart-after >> "+out+"/order"),
		},
		Poststop: []specs.Hook{hookSh(b, "echo poststop >> "+out+"/order")},
	}
	b.Save(t)
	for _, how := range []string{"start", "run"} {
		os.Remove(filepath.Join(out, "order"))
		id := cfID(t, r, "postfail")
		var res Result
		var pid int
		if how == "start" {
			r.coreDetached("create", "--bundle", b.Dir, id)
			pid = r.corePid(id)
			res = r.Run(nil, "start", id)
		} else {
			var err error
			if res, err = r.coreExec(nil, "run", "-d", "--bundle", b.Dir, id); err != nil {
				t.Fatal(err)
			}
		}
		if res.Code == 0 || !strings.Contains(res.Stderr, "poststart hook #0") {
			t.Errorf("%s with a failing poststart hook: exit %d, stderr %q; want an error naming the hook", how, res.Code, res.Stderr)
		}
		if data, _ := os.ReadFile(filepath.Join(out, "order")); string(data) != "poststart-fails\npoststop\n" {
			t.Errorf("%s: hooks ran %q, want the failing poststart hook, then poststop", how, data)
		}
		if pid > 0 && alive(pid) {
			t.Errorf("%s: the container's process %d still runs", how, pid)
		}
		if res := r.Run(nil, "state", id); res.Code == 0 {
			t.Errorf("%s: the container is still there: %s", how, res.Stdout)
		}
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}
}

// TestConformanceFailingPrestart: runtime.md: "If any prestart hook fails,
// the runtime MUST generate an error, stop the container, and continue the
// lifecycle at step 12" (destroy, then the poststop hooks).
func TestConformanceFailingPrestart(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "true")
	out := b.Rootfs
	b.Spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 prestart is deprecated but in the spec, and what runtime-tools checks
		Prestart: []specs.Hook{hookSh(b, "exit 3")},
		Poststop: []specs.Hook{hookSh(b, "echo poststop >> "+out+"/order")},
	}
	b.Save(t)
	id := cfID(t, r, "prefail")
	res, err := r.coreExec(nil, "create", "--bundle", b.Dir, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code == 0 || !strings.Contains(res.Stderr, "prestart") {
		t.Errorf("create with a failing prestart hook: exit %d, stderr %q; want an error naming the hook", res.Code, res.Stderr)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "order")); string(data) != "poststop\n" {
		t.Errorf("poststop hooks after the failed create ran %q, want once", data)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestConformanceFifoDevice: config-linux.md gives a device's major and
// minor as "REQUIRED unless type is p"; a fifo listed with numbers anyway
// is made (libcontainer 1.5 refused it: the node it made had 0:0).
func TestConformanceFifoDevice(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "stat -c '%F %a' /dev/cf-fifo /dev/cf-char")
	mode := os.FileMode(0o640)
	zero := uint32(0)
	b.Spec.Linux.Devices = append(b.Spec.Linux.Devices,
		specs.LinuxDevice{Path: "/dev/cf-fifo", Type: "p", Major: 8, Minor: 666, FileMode: &mode, UID: &zero, GID: &zero},
		specs.LinuxDevice{Path: "/dev/cf-char", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &zero, GID: &zero})
	b.Save(t)
	id := cfID(t, r, "fifo")
	res := r.OK("run", "--bundle", b.Dir, id)
	if got := strings.Fields(res.Stdout); strings.Join(got, " ") != "fifo 640 character special file 640" {
		t.Errorf("device nodes: %q, want a fifo and a character device, both 0640", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestConformanceBindMountData: a bind mount with filesystem options
// (mode=, size=) mounts, without them (the kernel ignores data on a bind
// mount, libcontainer 1.5 refused the config), with a warning; its flags
// (ro) still apply.
func TestConformanceBindMountData(t *testing.T) {
	r := newRunner(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("bound\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBundle(t, "sh", "-c", "cat /mnt/cf/f; touch /mnt/cf/g 2>/dev/null && echo writable || echo read-only")
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/mnt/cf", Type: "bind", Source: src,
		Options: []string{"rbind", "ro", "mode=755", "size=1k"}})
	b.Save(t)
	id := cfID(t, r, "binddata")
	res := r.OK("run", "--bundle", b.Dir, id)
	if res.Stdout != "bound\nread-only\n" {
		t.Errorf("bind mount with data options: %q, want the file and read-only", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "/mnt/cf") || !strings.Contains(res.Stderr, "mode=755,size=1k") {
		t.Errorf("no warning naming the mount and the ignored options; stderr: %q", res.Stderr)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestConformanceDeviceRulesOrder: config-linux.md: "The runtime MUST
// apply entries in the listed order." On cgroup v1 the kernel lists the
// rules in the order they were written: the config's come first, in its
// order, then the runtime's defaults. And the rules hold: the listed
// devices open, an unlisted one does not.
func TestConformanceDeviceRulesOrder(t *testing.T) {
	need(t, !cgroupV2(), "the devices.list order is a cgroup v1 interface")
	r := newRunner(t)
	b := newBundle(t, "sleep", "1000")
	i := func(v int64) *int64 { return &v }
	b.Spec.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i(10), Minor: i(229), Access: "rwm"},
		{Allow: true, Type: "b", Major: i(8), Minor: i(20), Access: "rw"},
		{Allow: true, Type: "b", Major: i(10), Minor: i(200), Access: "r"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(11), Access: "rw"},
		{Allow: false, Type: "c", Major: i(1), Minor: i(11), Access: "w"},
	}}
	b.Save(t)
	id := cfID(t, r, "devorder")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	data, err := os.ReadFile(cgroupFile(id, "devices", "devices.list", ""))
	if err != nil {
		t.Fatal(err)
	}
	list := strings.Split(strings.TrimSpace(string(data)), "\n")
	// The deny after the allow took w back from 1:11.
	want := []string{"c 10:229 rwm", "b 8:20 rw", "b 10:200 r", "c 1:11 r"}
	if len(list) < len(want) || strings.Join(list[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Errorf("devices.list starts %q, want the config's rules first, in order: %q", list, want)
	}
	// The runtime's default devices still work after the config's rules.
	res, err := r.coreExec(nil, "exec", id, "sh", "-c", "head -c1 /dev/urandom >/dev/null && echo x > /dev/null && echo ok")
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "ok\n" {
		t.Errorf("default devices: %q (stderr %q), want /dev/urandom readable and /dev/null writable", res.Stdout, res.Stderr)
	}
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestConformanceMountLabelWithoutSELinux: a mount label on a host without
// SELinux has nothing to label; the container runs (libcontainer passed
// context="..." to every mount, which such a kernel refuses).
func TestConformanceMountLabelWithoutSELinux(t *testing.T) {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	need(t, err != nil, "SELinux is enabled here; the label would apply")
	r := newRunner(t)
	b := newBundle(t, "true")
	b.Spec.Linux.MountLabel = "system_u:object_r:svirt_sandbox_file_t:s0:c715,c811"
	b.Save(t)
	id := cfID(t, r, "mntlabel")
	r.OK("run", "--bundle", b.Dir, id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestConformanceUnknownCapability: config.md (1.3.0) asks for a warning,
// not a failure, for a capability that "cannot be mapped to a relevant
// kernel interface, or cannot be granted otherwise"; a name that is no
// capability at all (runtime-tools' process_capabilities_fail: CAP_TEST) is
// a malformed config. create and run refuse it with one line naming the
// file and the field, and leave nothing behind; exec --cap names the flag.
// Engines' real sets (Docker's and containerd's defaults) still run.
func TestConformanceUnknownCapability(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "grep CapBnd /proc/self/status")
	docker := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	b.Spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: docker, Effective: docker, Permitted: docker}
	b.Save(t)
	id := cfID(t, r, "c38cap")
	// The 14 capabilities: bits 0, 1, 3-8, 10, 13, 18, 27, 29 and 31.
	if res := r.OK("run", "--bundle", b.Dir, id); !strings.Contains(res.Stdout, "00000000a80425fb") {
		t.Errorf("docker's default set: CapBnd %q, want 00000000a80425fb", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	b.Spec.Process.Capabilities.Bounding = []string{"CAP_CHOWN", "CAP_KILL", "CAP_TEST"}
	b.Save(t)
	file := filepath.Join(b.Dir, "config.json")
	for _, cmd := range []string{"create", "run"} {
		id := cfID(t, r, "c38cap"+cmd)
		r.Fail([]string{file + `: process.capabilities.bounding[2]: "CAP_TEST": not a capability`}, cmd, "--bundle", b.Dir, id)
		assertNoLeftovers(t, r.Root, id, b.Dir)
	}

	b.Spec.Process.Capabilities.Bounding = docker
	b.Spec.Process.Args = []string{"sleep", "1000"}
	b.Save(t)
	id = cfID(t, r, "c38capexec")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	r.Fail([]string{"--cap", `"CAP_TEST": not a capability`}, "exec", "--cap", "CAP_TEST", id, "true")
	r.OK("exec", "--cap", "CAP_NET_ADMIN", id, "true")
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestConformanceUngrantableCapability: config.md: "Runtimes SHOULD NOT
// fail if the container configuration requests capabilities that cannot be
// granted, for example, if the runtime operates in a restricted environment
// with limited capabilities." nucleus runs here with CAP_SYSLOG out of its
// bounding set (setpriv), as in a container or a VM that withholds one: a
// config asking for it (runtime-tools' process_capabilities asks for all)
// runs, without it and with a warning naming it, from run and from exec.
// libcontainer failed the create ("can't apply capabilities: operation not
// permitted").
func TestConformanceUngrantableCapability(t *testing.T) {
	setpriv := requireCmd(t, "setpriv")
	r := newRunner(t)
	wrapper := filepath.Join(t.TempDir(), "nucleus-nosyslog")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+setpriv+" --bounding-set -syslog "+r.Bin+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rr := &Runner{t: t, Bin: wrapper, Root: r.Root}
	b := newBundle(t, "sh", "-c", "grep -E 'CapBnd|CapEff' /proc/self/status")
	caps := []string{"CAP_KILL", "CAP_SYSLOG", "CAP_CHOWN"}
	b.Spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	b.Save(t)
	id := cfID(t, rr, "c38ungrant")
	res := rr.OK("run", "--bundle", b.Dir, id)
	// CAP_CHOWN and CAP_KILL (bits 0 and 5) without CAP_SYSLOG (34).
	if want := "CapEff:\t0000000000000021\nCapBnd:\t0000000000000021\n"; res.Stdout != want {
		t.Errorf("in the container: %q, want %q", res.Stdout, want)
	}
	if !strings.Contains(res.Stderr, "CAP_SYSLOG") {
		t.Errorf("no warning naming CAP_SYSLOG; stderr: %q", res.Stderr)
	}
	assertNoLeftovers(t, rr.Root, id, b.Dir)

	// The same host, nucleus with its full set: the container gets it.
	id = cfID(t, r, "c38grant")
	if res := r.OK("run", "--bundle", b.Dir, id); !strings.Contains(res.Stdout, "CapEff:\t0000000400000021") {
		t.Errorf("with CAP_SYSLOG grantable: %q, want CapEff 0000000400000021", res.Stdout)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	// exec --cap from a restricted nucleus into a container that has it.
	b.Spec.Process.Args = []string{"sleep", "1000"}
	b.Save(t)
	id = cfID(t, r, "c38grantexec")
	r.coreDetached("run", "-d", "--bundle", b.Dir, id)
	res = rr.OK("exec", "--cap", "CAP_SYSLOG", id, "grep", "CapEff", "/proc/self/status")
	if want := "CapEff:\t0000000000000021\n"; res.Stdout != want {
		t.Errorf("exec: %q, want %q", res.Stdout, want)
	}
	if !strings.Contains(res.Stderr, "CAP_SYSLOG") {
		t.Errorf("exec: no warning naming CAP_SYSLOG; stderr: %q", res.Stderr)
	}
	r.OK("delete", "--force", id)
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestConformanceSeccompDeniesInitSyscall: a profile that denies getcwd
// (runtime-tools' linux_seccomp) without noNewPrivileges: libcontainer's
// init loads the filter early and then needs getcwd itself, so the create
// failed. nucleus sets noNewPrivileges (with a warning) so the filter loads
// right before the process, which then gets the profile's errno.
func TestConformanceSeccompDeniesInitSyscall(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "grep NoNewPrivs /proc/self/status; realpath . 2>/dev/null || echo getcwd-denied")
	b.Spec.Process.NoNewPrivileges = false
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getcwd"}, Action: specs.ActErrno},
	}}
	b.Save(t)
	id := cfID(t, r, "seccwd")
	res := r.OK("run", "--bundle", b.Dir, id)
	if got := strings.Fields(res.Stdout); len(got) != 3 || got[1] != "1" || got[2] != "getcwd-denied" {
		t.Errorf("in the container: %q, want no_new_privs set and getcwd denied", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "denies getcwd") {
		t.Errorf("no warning that noNewPrivileges was set; stderr: %q", res.Stderr)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)
}

// TestConformanceRlimitAS: an RLIMIT_AS a workload lives under (1 GiB)
// is one the runtime's Go init cannot: the create failed. The process
// starts with the limit, from create+start and from run.
func TestConformanceRlimitAS(t *testing.T) {
	r := newRunner(t)
	b := newBundle(t, "sh", "-c", "ulimit -H -v; ulimit -S -v")
	b.Spec.Process.Rlimits = append(b.Spec.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_AS", Hard: 2 << 30, Soft: 1 << 30})
	// The init compiles the filter under the limit: that is where it ran
	// out of address space.
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"kexec_load", "open_by_handle_at", "getegid32"}, Action: specs.ActErrno},
	}}
	b.Save(t)
	want := "2097152\n1048576\n" // KiB
	id := cfID(t, r, "rlas")
	if res := r.OK("run", "--bundle", b.Dir, id); res.Stdout != want {
		t.Errorf("run: RLIMIT_AS hard, soft in KiB: %q, want %q", res.Stdout, want)
	}
	assertNoLeftovers(t, r.Root, id, b.Dir)

	b.Spec.Process.Args = []string{"sh", "-c", "ulimit -H -v > /tmp/as; ulimit -S -v >> /tmp/as; sleep 1000"}
	b.Spec.Root.Readonly = false
	b.Save(t)
	id2 := cfID(t, r, "rlas2")
	r.coreDetached("create", "--bundle", b.Dir, id2)
	r.OK("start", id2)
	waitFor(t, "the process to write its limits", func() bool {
		data, _ := os.ReadFile(filepath.Join(b.Rootfs, "tmp", "as"))
		return strings.Count(string(data), "\n") == 2
	})
	if data, _ := os.ReadFile(filepath.Join(b.Rootfs, "tmp", "as")); string(data) != want {
		t.Errorf("create+start: RLIMIT_AS hard, soft in KiB: %q, want %q", data, want)
	}
	r.OK("delete", "--force", id2)
	assertNoLeftovers(t, r.Root, id2, b.Dir)
}
