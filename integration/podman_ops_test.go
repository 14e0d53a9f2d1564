package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPodmanPauseUnpause(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		c := p.name("pause")
		p.ok(append(p.runArgs("-d", "--name", c), "sh", "-c", "while :; do date +%s%N > /tmp/tick; sleep 0.05; done")...)
		p.noteID(c)
		p.ok("pause", c)
		if st := strings.TrimSpace(p.ok("inspect", "--format", "{{.State.Status}}", c)); st != "paused" {
			t.Errorf("status after pause: %q", st)
		}
		rootfsTick := filepath.Join(p.rootfs, "tmp", "tick")
		before, _ := os.ReadFile(rootfsTick)
		time.Sleep(300 * time.Millisecond)
		after, _ := os.ReadFile(rootfsTick)
		if !bytes.Equal(before, after) {
			t.Errorf("paused container still runs: tick %q → %q", before, after)
		}
		p.ok("unpause", c)
		if st := strings.TrimSpace(p.ok("inspect", "--format", "{{.State.Status}}", c)); st != "running" {
			t.Errorf("status after unpause: %q", st)
		}
		waitForUpTo(t, 5*time.Second, "ticks after unpause", func() bool {
			now, _ := os.ReadFile(rootfsTick)
			return !bytes.Equal(now, after)
		})
		rt.assertCalled(t, "pause")
		rt.assertCalled(t, "resume")
		p.finish()
	})
}

func TestPodmanUpdate(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		c := p.name("update")
		p.ok(append(p.runArgs("-d", "--memory", "128m", "--name", c), "sleep", "1000")...)
		p.noteID(c)
		mem := ctrCgroupFile("memory/memory.limit_in_bytes", "memory.max")
		if got := strings.TrimSpace(p.ok("exec", c, "sh", "-c", mem)); got != "134217728" {
			t.Errorf("memory limit before update: %q", got)
		}
		p.ok("update", "--memory", "64m", "--cpu-shares", "512", c)
		if got := strings.TrimSpace(p.ok("exec", c, "sh", "-c", mem)); got != "67108864" {
			t.Errorf("memory limit after update: %q, want 67108864", got)
		}
		if got := strings.TrimSpace(p.ok("exec", c, "sh", "-c", ctrCgroupFile("cpu/cpu.shares", "cpu.weight"))); got != "512" && got != "20" {
			t.Errorf("cpu shares after update: %q", got)
		}
		rt.assertCalled(t, "update", "--resources")
		p.finish()
	})
}

func TestPodmanUserNamespace(t *testing.T) {
	tarball := busyboxTarball(t)
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		// An image, so podman shifts the layer's ownership to the mapping.
		p.ok("import", tarball, "localhost/pod-busybox:latest")
		out := p.ok("run", "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", "--name", p.name("userns"),
			"pod-busybox", "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /rootfs-writable && echo wrote")
		f := strings.Fields(out)
		if len(f) != 8 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" || f[3] != "0" || f[4] != "100000" || f[6] != "0" || f[7] != "wrote" {
			t.Errorf("uid/gid map, id and a write inside: %q", out)
		}
		p.finish()
	})
}

func TestPodmanLimitsSeenInside(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		script := strings.Join([]string{
			ctrCgroupFile("memory/memory.limit_in_bytes", "memory.max"),
			ctrCgroupFile("pids/pids.max", "pids.max"),
			"ulimit -n", "ulimit -u",
		}, "; ")
		out := p.ok(append(p.runArgs("--rm", "--memory", "32m", "--pids-limit", "42", "--name", p.name("limits")), "sh", "-c", script)...)
		if got, want := strings.Fields(out), []string{"33554432", "42", "20000", "32768"}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("memory, pids, nofile, nproc inside: %v, want %v", got, want)
		}
		// The pids limit holds: forking past it fails inside.
		res := p.cmd(nil, append(p.runArgs("--rm", "--pids-limit", "5"), "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo all-forked")...)
		if res.Code == 0 || strings.Contains(res.Stdout, "all-forked") || !strings.Contains(res.Stdout, "Resource temporarily unavailable") {
			t.Errorf("forking past --pids-limit 5 did not fail: exit %d, %q", res.Code, res.Stdout)
		}
		p.finish()
	})
}

func TestPodmanImportedImage(t *testing.T) {
	tarball := busyboxTarball(t)
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		p.ok("import", tarball, "localhost/pod-busybox:latest")
		if imgs := p.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(imgs, "localhost/pod-busybox:latest") {
			t.Fatalf("imported image not listed: %q", imgs)
		}
		out := p.ok("run", "--rm", "--name", p.name("image"), "pod-busybox", "sh", "-c", "echo from image; cat /etc/hostname >/dev/null && echo ok")
		if out != "from image\nok\n" {
			t.Errorf("run of imported image: %q", out)
		}
		p.finish()
	})
}

func TestPodmanBuild(t *testing.T) {
	tarball := busyboxTarball(t)
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		p.ok("import", tarball, "localhost/pod-busybox:latest")
		ctx := t.TempDir()
		containerfile := "FROM localhost/pod-busybox:latest\nRUN echo built-by-$(id -u) > /built.txt && echo RUN-step-ran\n"
		if err := os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte(containerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		before := len(rt.calls())
		out := p.ok("build", "--runtime", rt.Bin, "--network", "none", "--pull=never", "-t", "localhost/pod-built", ctx)
		if !strings.Contains(out, "RUN-step-ran") {
			t.Errorf("build output lacks the RUN step's output:\n%s", out)
		}
		if len(rt.calls()) <= before {
			t.Errorf("podman build did not call %s", rt.Name)
		}
		rt.assertCalled(t, "state")
		if got := p.ok("run", "--rm", "--name", p.name("built"), "localhost/pod-built", "cat", "/built.txt"); got != "built-by-0\n" {
			t.Errorf("built image: /built.txt = %q", got)
		}
		p.finish()
	})
}

// TestPodmanErrorMessages: the runtime's error reaches the user, whether
// podman reads it as JSON (runtime_supports_json) or as text.
func TestPodmanErrorMessages(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		for _, jsonLog := range []bool{true, false} {
			p := newPodman(t, rt, jsonLog)
			res := p.code(127, append(p.runArgs("--rm", "--name", p.name(fmt.Sprintf("err%v", jsonLog))), "/no/such/binary")...)
			if !strings.Contains(res.Stderr, "/no/such/binary") || !strings.Contains(res.Stderr, "no such file or directory") {
				t.Errorf("json=%v: podman's error does not carry the runtime's: %q", jsonLog, res.Stderr)
			}
			if jsonLog {
				rt.assertCalled(t, "--log-format=json")
			}
			p.finish()
		}
	})
}

// TestPodmanCheckpoint: podman probes `checkpoint --help`; where CRIU works
// a checkpoint and restore round-trip, elsewhere the failure is an error
// that comes back promptly and leaves the container running.
func TestPodmanCheckpoint(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		c := p.name("ckpt")
		p.ok(append(p.runArgs("-d", "--name", c), "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done")...)
		p.noteID(c)
		start := time.Now()
		res := p.cmd(nil, "container", "checkpoint", c)
		if time.Since(start) > 60*time.Second {
			t.Errorf("checkpoint took %s", time.Since(start))
		}
		if res.Code == 0 {
			p.ok("container", "restore", c)
		} else {
			t.Logf("checkpoint failed on this host (exit %d): %s", res.Code, strings.TrimSpace(res.Stderr))
			if strings.TrimSpace(res.Stderr) == "" {
				t.Errorf("checkpoint failed without a message")
			}
			// restore fails as promptly, and leaves no container behind.
			b := newBundle(t, "sleep", "1000")
			root := t.TempDir()
			rr := runCmd(t, 90*time.Second, nil, nil, rt.Real, "--root", root, "restore", "--detach", "--bundle", b.Dir, "--image-path", t.TempDir(), "pod-restore")
			if rr.Code == 0 || strings.TrimSpace(rr.Stderr) == "" {
				t.Errorf("restore without a usable CRIU: exit %d, stderr %q", rr.Code, rr.Stderr)
			}
			assertNoClientLeftovers(t, root, []string{"pod-restore"}, b.Dir)
		}
		if st := strings.TrimSpace(p.ok("inspect", "--format", "{{.State.Status}}", c)); st != "running" {
			t.Errorf("status after checkpoint attempt: %q, want running", st)
		}
		p.ok("exec", c, "true")
		p.finish()
	})
}

// TestPodmanRuntimeEventsStats: the runtime's own `events --stats` on a
// podman container prints runc's JSON, from the container's cgroup, and
// `delete --force` of a gone container succeeds.
func TestPodmanRuntimeEventsStats(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		c := p.name("stats")
		p.ok(append(p.runArgs("-d", "--memory", "64m", "--pids-limit", "50", "--name", c), "sh", "-c", "sleep 1000 & sleep 999 & wait")...)
		id := p.noteID(c)
		res := runCmd(t, 30*time.Second, nil, nil, rt.Real, "--root", p.runtimeRoot(), "events", "--stats", id)
		if res.Code != 0 {
			t.Fatalf("%s events --stats: exit %d: %s", rt.Name, res.Code, res.Stderr)
		}
		var ev struct {
			Type string `json:"type"`
			ID   string `json:"id"`
			Data struct {
				Pids   struct{ Current, Limit uint64 } `json:"pids"`
				Memory struct {
					Usage struct{ Limit, Usage uint64 } `json:"usage"`
				} `json:"memory"`
				CPU struct {
					Usage struct{ Total uint64 } `json:"usage"`
				} `json:"cpu"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &ev); err != nil {
			t.Fatalf("events --stats: not JSON: %v: %s", err, res.Stdout)
		}
		if ev.Type != "stats" || ev.ID != id || ev.Data.Pids.Current != 3 || ev.Data.Pids.Limit != 50 ||
			ev.Data.Memory.Usage.Limit != 64<<20 || ev.Data.Memory.Usage.Usage == 0 || ev.Data.CPU.Usage.Total == 0 {
			t.Errorf("events --stats: %+v", ev)
		}
		// update from flags and from --resources on stdin, seen by stats.
		rtCmd := func(in []byte, args ...string) cmdResult {
			return runCmd(t, 30*time.Second, nil, in, rt.Real, append([]string{"--root", p.runtimeRoot()}, args...)...)
		}
		if res := rtCmd(nil, "update", "--pids-limit", "77", "--memory", "96m", id); res.Code != 0 {
			t.Errorf("update flags: exit %d: %s", res.Code, res.Stderr)
		}
		if res := rtCmd([]byte(`{"pids":{"limit":88}}`), "update", "--resources", "-", id); res.Code != 0 {
			t.Errorf("update --resources -: exit %d: %s", res.Code, res.Stderr)
		}
		if err := json.Unmarshal([]byte(rtCmd(nil, "events", "--stats", id).Stdout), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Data.Pids.Limit != 88 || ev.Data.Memory.Usage.Limit != 96<<20 {
			t.Errorf("after update: pids limit %d (want 88), memory limit %d (want %d)", ev.Data.Pids.Limit, ev.Data.Memory.Usage.Limit, 96<<20)
		}
		if res := rtCmd(nil, "update", "--memory", "lots", id); res.Code == 0 || !strings.Contains(res.Stderr, "memory") {
			t.Errorf("update --memory lots: exit %d, stderr %q", res.Code, res.Stderr)
		}

		// Streaming: an "oom" event when a process inside exceeds the
		// limit, stats every interval, and the end once the container goes.
		oomer := p.name("oom")
		p.ok(append(p.runArgs("-d", "--memory", "16m", "--memory-swap", "16m", "--name", oomer), "sleep", "1000")...)
		oomID := p.noteID(oomer)
		var evOut bytes.Buffer
		events := exec.Command(rt.Real, "--root", p.runtimeRoot(), "events", "--interval", "200ms", oomID)
		events.Stdout = &evOut
		if err := events.Start(); err != nil {
			t.Fatal(err)
		}
		evDone := make(chan error, 1)
		go func() { evDone <- events.Wait() }()
		time.Sleep(500 * time.Millisecond)
		p.cmd(nil, "exec", oomer, "sh", "-c", "x=$(head -c 64000000 /dev/zero | tr '\\0' x); echo ${#x}")
		time.Sleep(500 * time.Millisecond)
		p.ok("rm", "--force", "--time", "0", oomer)
		select {
		case <-evDone:
		case <-time.After(15 * time.Second):
			events.Process.Kill()
			<-evDone
			t.Errorf("events did not end after the container was removed")
		}
		var sawOOM, sawStats bool
		for _, line := range strings.Split(strings.TrimSpace(evOut.String()), "\n") {
			var e struct{ Type, ID string }
			if err := json.Unmarshal([]byte(line), &e); err != nil || e.ID != oomID {
				t.Errorf("events: bad line %q", line)
				continue
			}
			sawOOM = sawOOM || e.Type == "oom"
			sawStats = sawStats || e.Type == "stats"
		}
		if !sawOOM || !sawStats {
			t.Errorf("events: oom seen %v, stats seen %v:\n%s", sawOOM, sawStats, evOut.String())
		}
		res = runCmd(t, 30*time.Second, nil, nil, rt.Real, "--root", p.runtimeRoot(), "delete", "--force", "pod-never-existed")
		if res.Code != 0 {
			t.Errorf("delete --force of a missing container: exit %d: %s", res.Code, res.Stderr)
		}
		p.finish()
	})
}

// TestPodmanPreserveFDsAndSocketActivation: --preserve-fds on run and exec,
// and systemd socket activation (LISTEN_FDS) passed through to the
// container's process.
func TestPodmanPreserveFDsAndSocketActivation(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt clientRuntime) {
		p := newPodman(t, rt, true)
		file := filepath.Join(t.TempDir(), "fd3")
		if err := os.WriteFile(file, []byte("through fd 3\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		open := func() []*os.File {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return []*os.File{f}
		}
		env := []string{"CONTAINERS_CONF=" + p.conf}
		res := runCmdFiles(t, podmanTimeout, env, nil, open(), "podman",
			p.fullArgs(append(p.runArgs("--rm", "--preserve-fds", "1", "--name", p.name("pfd")), "sh", "-c", "cat <&3")...)...)
		if res.Code != 0 || res.Stdout != "through fd 3\n" {
			t.Errorf("run --preserve-fds 1: exit %d, %q, %s", res.Code, res.Stdout, res.Stderr)
		}
		box := p.name("pfdbox")
		p.ok(append(p.runArgs("-d", "--name", box), "sleep", "1000")...)
		p.noteID(box)
		res = runCmdFiles(t, podmanTimeout, env, nil, open(), "podman", p.fullArgs("exec", "--preserve-fds", "1", box, "sh", "-c", "cat <&3")...)
		if res.Code != 0 || res.Stdout != "through fd 3\n" {
			t.Errorf("exec --preserve-fds 1: exit %d, %q, %s", res.Code, res.Stdout, res.Stderr)
		}
		var q []string
		for _, a := range append([]string{"podman"}, p.fullArgs(append(p.runArgs("--rm", "--name", p.name("listen")), "sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3")...)...) {
			q = append(q, shellQuote(a))
		}
		res = runCmdFiles(t, podmanTimeout, env, nil, open(), "sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec "+strings.Join(q, " "))
		if res.Code != 0 || res.Stdout != "1 1\nthrough fd 3\n" {
			t.Errorf("socket activation: exit %d, %q, %s", res.Code, res.Stdout, res.Stderr)
		}
		rt.assertCalled(t, "create", "--preserve-fds")
		rt.assertCalled(t, "exec", "--preserve-fds")
		p.finish()
	})
}
