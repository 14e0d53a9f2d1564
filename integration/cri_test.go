package integration

// The Kubernetes path (issue 15): Debian's containerd 1.6 with its CRI
// plugin, a runtime handler per runtime (the io.containerd.runc.v2 shim
// with BinaryName, as a RuntimeClass names it), CNI from Debian's
// containernetworking-plugins, driven with crictl built from the Go module
// proxy (`make deps` builds it into build/tools/crictl-VERSION). Everything is private:
// containerd's socket, root, state and the shim's runtime root in a temp
// dir, a CNI bridge of the test's own (cl-cni0, 10.211.77.0/24, no
// gateway, no masquerade, no firewall) with its leases in the temp dir.
// No registry: the pause image (testdata/pause) and a busybox image are
// OCI archives built here and imported with ctr.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	criPause   = "cl.local/pause:1"
	criBusybox = "cl.local/busybox:1"
	// The test's CNI bridge and subnet: clear of podman's 10.88/16 and
	// nucleus's bridge 10.90/16.
	criBridge = "cl-cni0"
	criSubnet = "10.211.77.0/24"
)

type criEnv struct {
	t        *testing.T
	dir      string
	sock     string
	crictl   string
	daemon   *exec.Cmd
	logBuf   *syncBuffer
	runcRoot string
	ids      []string
	netns    []string
	// Fixed paths CNI and containerd create when missing (CNI's result
	// cache, the pods' netns dir): removed at the end if this test made
	// them and they are empty again.
	madeDirs []string
}

// crictlPath finds crictl: $CRICTL (make test passes the one make deps
// built), then build/tools/crictl-*/crictl, then PATH.
func crictlPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CRICTL"); p != "" {
		_, err := os.Stat(p)
		need(t, err == nil, "needs crictl at $CRICTL="+p+": run `make deps`")
		return p
	}
	if built, _ := filepath.Glob("../build/tools/crictl-*/crictl"); len(built) > 0 {
		p, _ := filepath.Abs(built[len(built)-1])
		return p
	}
	p, err := exec.LookPath("crictl")
	need(t, err == nil, "needs crictl: `make deps` builds it into build/tools (sigs.k8s.io/cri-tools from the Go module proxy), or set CRICTL")
	return p
}

// buildTestdata builds a static program from testdata/name.
func buildTestdata(t testing.TB, name string) string {
	t.Helper()
	requireCmd(t, "go")
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", out, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// newCRI starts containerd with the CRI plugin and handlers (name ->
// BinaryName), and imports the pause and busybox images.
func newCRI(t *testing.T, handlers map[string]string, pauseArchive, busyboxArchive string) *criEnv {
	t.Helper()
	containerd := requireCmd(t, "containerd")
	requireCmd(t, "ctr")
	requireCmd(t, "containerd-shim-runc-v2")
	requireCmd(t, "ip")
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		_, err := os.Stat(filepath.Join("/usr/lib/cni", p))
		need(t, err == nil, "needs the CNI plugin /usr/lib/cni/"+p+" (apt-get install containernetworking-plugins)")
	}
	_, err := os.Stat("/sys/class/net/" + criBridge)
	need(t, os.IsNotExist(err), "the CNI bridge "+criBridge+" exists already (another run of this test?)")
	crictl := crictlPath(t)
	dir, err := os.MkdirTemp("", "cl-cri")
	if err != nil {
		t.Fatal(err)
	}
	e := &criEnv{t: t, dir: dir, sock: filepath.Join(dir, "c.sock"), crictl: crictl, logBuf: &syncBuffer{}, runcRoot: filepath.Join(dir, "runc")}
	for _, d := range []string{"/var/lib/cni/results", "/var/lib/cni", "/var/run/netns"} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			e.madeDirs = append(e.madeDirs, d)
		}
	}
	t.Cleanup(e.stop)
	var rt strings.Builder
	for name, bin := range handlers {
		fmt.Fprintf(&rt, `
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s.options]
        BinaryName = %[2]q
        Root = %[3]q
`, name, bin, e.runcRoot)
	}
	config := fmt.Sprintf(`version = 2
root = "%[1]s/root"
state = "%[1]s/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "%[1]s/c.sock"
[ttrpc]
  address = "%[1]s/c.sock.ttrpc"
[debug]
  address = "%[1]s/debug.sock"
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[2]q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # Without CAP_SYS_RESOURCE (this VM's root lacks it) no score below
  # containerd's own can be set: the pause container asks for -998.
  restrict_oom_score_adj = %[4]t
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[1]s/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
%[3]s`, dir, criPause, rt.String(), !hasCap(unix.CAP_SYS_RESOURCE))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// A bridge without a gateway address: no forwarding is switched on
	// and nothing leaves the pods' own link; leases stay in the temp dir.
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "cl-cri",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": false,
    "ipMasq": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}
  }]
}`, criBridge, criSubnet, filepath.Join(dir, "ipam"))
	if err := os.MkdirAll(filepath.Join(dir, "cni"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cni", "10-cl-cri.conflist"), []byte(cni), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "crictl.yaml"), []byte("runtime-endpoint: unix://"+e.sock+"\nimage-endpoint: unix://"+e.sock+"\ntimeout: 60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.daemon = exec.Command(containerd, "--config", cfgPath)
	e.daemon.Stdout, e.daemon.Stderr = e.logBuf, e.logBuf
	e.daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.daemon.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	waitForUpTo(t, 30*time.Second, "containerd's CRI to answer", func() bool {
		return exec.Command(crictl, "-c", filepath.Join(dir, "crictl.yaml"), "info").Run() == nil
	})
	for _, a := range []string{pauseArchive, busyboxArchive} {
		if res := runCmd(t, ctrTimeout, nil, nil, "ctr", "--address", e.sock, "--namespace", "k8s.io", "images", "import", a); res.Code != 0 {
			t.Fatalf("ctr images import %s: exit %d: %s", a, res.Code, res.Stderr)
		}
	}
	return e
}

// stop ends containerd, removes what a failed test left of pods (their
// network namespaces, the bridge), unmounts what is left under the temp
// dir and removes it.
func (e *criEnv) stop() {
	if e.daemon != nil && e.daemon.Process != nil {
		// Pods a failed test left: stop and remove them while the
		// daemon still runs, so CNI releases their addresses and links.
		if out, err := exec.Command(e.crictl, e.args("pods", "-q")...).Output(); err == nil {
			for _, p := range strings.Fields(string(out)) {
				_ = exec.Command(e.crictl, e.args("stopp", p)...).Run()
				_ = exec.Command(e.crictl, e.args("rmp", "-f", p)...).Run()
			}
		}
		_ = e.daemon.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { e.daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = e.daemon.Process.Kill()
			<-done
		}
	}
	for _, ns := range e.netns {
		if _, err := os.Stat(ns); err == nil {
			_ = syscall.Unmount(ns, syscall.MNT_DETACH)
			_ = os.Remove(ns)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + criBridge); err == nil {
		_ = exec.Command("ip", "link", "del", criBridge).Run()
	}
	for _, d := range e.madeDirs {
		_ = os.Remove(d) // only if empty
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var mps []string
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], e.dir) {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mps[i], syscall.MNT_DETACH)
	}
	os.RemoveAll(e.dir)
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/cl-cri")
	for _, d := range append(parents, "/sys/fs/cgroup/cl-cri") {
		_ = syscall.Rmdir(d)
	}
	if e.t.Failed() {
		e.t.Logf("containerd log:\n%s", e.logBuf.String())
	}
}

func (e *criEnv) args(args ...string) []string {
	return append([]string{"-c", filepath.Join(e.dir, "crictl.yaml")}, args...)
}

func (e *criEnv) cmd(args ...string) cmdResult {
	e.t.Helper()
	return runCmd(e.t, ctrTimeout, nil, nil, e.crictl, e.args(args...)...)
}

func (e *criEnv) ok(args ...string) string {
	e.t.Helper()
	res := e.cmd(args...)
	if res.Code != 0 {
		e.t.Fatalf("crictl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return strings.TrimSpace(res.Stdout)
}

// writeJSON writes v as a file in the temp dir and returns its path.
func (e *criEnv) writeJSON(name string, v any) string {
	e.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// pod is one pod sandbox the test made: its config file and id.
type pod struct {
	config, id string
}

// runPod starts a pod sandbox with handler and records it.
func (e *criEnv) runPod(name, handler string) pod {
	e.t.Helper()
	return e.runPodSysctls(name, handler, nil)
}

// runPodSysctls is runPod with the pod's sysctls.
func (e *criEnv) runPodSysctls(name, handler string, sysctls map[string]string) pod {
	e.t.Helper()
	logs := filepath.Join(e.dir, "logs", name)
	if err := os.MkdirAll(logs, 0o755); err != nil {
		e.t.Fatal(err)
	}
	cfg := e.writeJSON(name+"-pod.json", map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "cl", "uid": name + "-uid", "attempt": 1},
		"hostname":      name,
		"log_directory": logs,
		"linux":         map[string]any{"cgroup_parent": "/cl-cri", "sysctls": sysctls},
	})
	id := e.ok("runp", "--runtime", handler, cfg)
	e.ids = append(e.ids, id)
	var info struct {
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					Namespaces []struct{ Type, Path string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(e.ok("inspectp", id)), &info); err != nil {
		e.t.Fatalf("inspectp %s: %v", id, err)
	}
	for _, ns := range info.Info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" && ns.Path != "" {
			e.netns = append(e.netns, ns.Path)
		}
	}
	return pod{config: cfg, id: id}
}

// create makes a container in p running args, and records it.
func (e *criEnv) create(p pod, name string, args ...string) string {
	e.t.Helper()
	cfg := e.writeJSON(p.id[:12]+"-"+name+".json", map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": criBusybox},
		"command":  args,
		"log_path": name + ".log",
	})
	id := e.ok("create", p.id, cfg, p.config)
	e.ids = append(e.ids, id)
	return id
}

// containerStatus is what crictl inspect reports of a container.
type containerStatus struct {
	State    string `json:"state"`
	ExitCode int    `json:"exitCode"`
	Reason   string `json:"reason"`
	Message  string `json:"message"`
}

func (e *criEnv) status(id string) containerStatus {
	e.t.Helper()
	var out struct {
		Status containerStatus `json:"status"`
	}
	if err := json.Unmarshal([]byte(e.ok("inspect", id)), &out); err != nil {
		e.t.Fatalf("inspect %s: %v", id, err)
	}
	return out.Status
}

func (e *criEnv) waitExited(id string) containerStatus {
	e.t.Helper()
	var st containerStatus
	waitForUpTo(e.t, 30*time.Second, id+" to exit", func() bool {
		st = e.status(id)
		return st.State == "CONTAINER_EXITED"
	})
	return st
}

// underTTY runs crictl under script(1), which gives it a terminal.
func (e *criEnv) underTTY(script string, args ...string) cmdResult {
	e.t.Helper()
	q := []string{shellQuote(e.crictl)}
	for _, a := range e.args(args...) {
		q = append(q, shellQuote(a))
	}
	return runCmd(e.t, ctrTimeout, nil, nil, script, "-qec", strings.Join(q, " "), "/dev/null")
}

// finish checks that nothing of the test's pods and containers is left:
// none in containerd, no runtime state, cgroup, mount, process or network
// namespace.
func (e *criEnv) finish() {
	e.t.Helper()
	if out := e.ok("ps", "-a", "-q"); out != "" {
		e.t.Errorf("crictl still lists containers: %s", out)
	}
	if out := e.ok("pods", "-q"); out != "" {
		e.t.Errorf("crictl still lists pods: %s", out)
	}
	waitNoProcesses(e.t, e.ids)
	assertNoClientLeftovers(e.t, filepath.Join(e.runcRoot, "k8s.io"), e.ids, filepath.Join(e.dir, "state"))
	for _, ns := range e.netns {
		if _, err := os.Stat(ns); err == nil {
			e.t.Errorf("leftover network namespace %s", ns)
		}
	}
	if left, _ := filepath.Glob("/sys/class/net/" + criBridge + "/brif/*"); len(left) > 0 {
		e.t.Errorf("veths left on %s: %v", criBridge, left)
	}
}

func TestCRIPodLifecycle(t *testing.T) {
	requireRoot(t)
	script := requireCmd(t, "script")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	rts := clientRuntimes(t)
	nuc, runc := rts[0].wrapped(t, dir), rts[1].wrapped(t, dir)
	// containerd's runc.v2 options carry no arguments for the runtime:
	// the agent handler's BinaryName is a one-line wrapper.
	agent := filepath.Join(dir, "nucleus-agent")
	if err := os.WriteFile(agent, []byte("#!/bin/sh\nexec "+shellQuote(nuc.Bin)+" --default-mode agent \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pauseRoot := filepath.Join(t.TempDir(), "rootfs")
	os.MkdirAll(pauseRoot, 0o755)
	data, err := os.ReadFile(buildTestdata(t, "pause"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pauseRoot, "pause"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	pauseArchive := ociArchive(t, pauseRoot, []string{"/pause"}, criPause)
	busyboxArchive := ociArchive(t, probeBundle(t).Rootfs, []string{"/bin/sh"}, criBusybox)
	e := newCRI(t, map[string]string{"runc": runc.Bin, "nucleus": nuc.Bin, "nucleus-agent": agent}, pauseArchive, busyboxArchive)

	for _, rt := range []clientRuntime{nuc, runc} {
		t.Run(rt.Name, func(t *testing.T) {
			parent := e.t
			e.t = t
			defer func() { e.t = parent }()
			p := e.runPod("cl-"+rt.Name, rt.Name)
			box := e.create(p, "box", "sh", "-c", "echo started; echo to-stderr >&2; trap 'exit 0' TERM; sleep 1001 & wait")
			e.ok("start", box)
			if st := e.status(box); st.State != "CONTAINER_RUNNING" {
				t.Fatalf("after start: %+v", st)
			}
			// The pod's network: CNI's address on eth0, the pod's
			// hostname (the container shares the sandbox's namespaces).
			e.checkPodNetwork(p, "cl-"+rt.Name, box)
			// crictl reports an exec's status in words, exiting 1.
			if res := e.cmd("exec", "-s", box, "sh", "-c", "echo out; exit 3"); res.Code != 1 || !strings.Contains(res.Stderr, "exited with 3") {
				t.Errorf("exec -s exit 3: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
			}
			res := e.underTTY(script, "exec", "-it", box, "sh", "-c", "tty; test -t 0 && echo is-a-tty")
			if res.Code != 0 || !strings.Contains(res.Stdout, "/dev/pts/") || !strings.Contains(res.Stdout, "is-a-tty") {
				t.Errorf("exec -it: exit %d, %q, %q", res.Code, res.Stdout, res.Stderr)
			}
			if res := e.cmd("logs", box); res.Stdout != "started\n" || res.Stderr != "to-stderr\n" {
				t.Errorf("logs: %q, %q", res.Stdout, res.Stderr)
			}
			var stats struct {
				Stats []struct {
					Attributes struct{ ID string }
					CPU        struct{ UsageCoreNanoSeconds struct{ Value string } }
					Memory     struct{ WorkingSetBytes struct{ Value string } }
				}
			}
			// Stats are sampled: a loaded machine can give an empty
			// sample, with runc as with nucleus; the values must come.
			statsOK := func() (bool, string) {
				stats.Stats = nil
				err := json.Unmarshal([]byte(e.ok("stats", "-o", "json", "--id", box)), &stats)
				return err == nil && len(stats.Stats) == 1 && stats.Stats[0].Attributes.ID == box &&
					stats.Stats[0].Memory.WorkingSetBytes.Value != "" && stats.Stats[0].Memory.WorkingSetBytes.Value != "0" &&
					stats.Stats[0].CPU.UsageCoreNanoSeconds.Value != "", fmt.Sprintf("%v %+v", err, stats)
			}
			if ok, got := retryFor(15*time.Second, statsOK); !ok {
				t.Errorf("stats: %s", got)
			}
			e.ok("stop", "--timeout", "10", box)
			if st := e.status(box); st.State != "CONTAINER_EXITED" || st.ExitCode != 0 {
				t.Errorf("after stop: %+v, want exited 0 (its TERM trap)", st)
			}
			// A container that exits by itself, with a status.
			quitter := e.create(p, "quitter", "sh", "-c", "exit 7")
			e.ok("start", quitter)
			if st := e.waitExited(quitter); st.ExitCode != 7 || st.Reason != "Error" {
				t.Errorf("exit 7: %+v", st)
			}
			e.ok("rm", box, quitter)
			e.ok("stopp", p.id)
			e.ok("rmp", p.id)
			rt.assertCalled(t, "create", "--bundle")
			rt.assertCalled(t, "exec", "--process")
			rt.assertCalled(t, "delete", box)
			e.finish()
		})
	}

	t.Run("nucleus-agent", func(t *testing.T) {
		parent := e.t
		e.t = t
		defer func() { e.t = parent }()
		// A pod sysctl of the pod's network namespace, which the
		// sandbox's user namespace can't write: nucleus writes it
		// from the host.
		p := e.runPodSysctls("cl-agent", "nucleus-agent", map[string]string{"net.ipv4.ping_group_range": "0 2147483647"})
		box := e.create(p, "box", "sleep", "1004")
		e.ok("start", box)
		out := e.ok("exec", "-s", box, "sh", "-c", "id -u; cat /proc/self/uid_map; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status")
		f := strings.Fields(out)
		if len(f) != 10 || f[0] != "0" || f[1] != "0" || f[2] == "0" || f[3] == "4294967295" {
			t.Errorf("agent pod: id -u and uid_map: %q, want root mapped to an unprivileged host uid", out)
		}
		for _, want := range []string{"CapEff:\t0000000000000000", "Seccomp:\t2", "NoNewPrivs:\t1"} {
			if !strings.Contains(out, want) {
				t.Errorf("agent pod: status lacks %q: %q", want, out)
			}
		}
		// On the pod's network, in the mode's confinement: the pod's CNI
		// address and hostname, and a second container of the pod
		// reached over the pod's loopback.
		e.checkPodNetwork(p, "cl-agent", box)
		// Written in host gids: the container, whose user namespace maps
		// neither end, sees the overflow gid where the kernel's default
		// would read "1 0".
		if out := e.ok("exec", "-s", box, "cat", "/proc/sys/net/ipv4/ping_group_range"); strings.Join(strings.Fields(out), " ") != "65534 65534" {
			t.Errorf("agent pod: ping_group_range %q in the container, want the pod's sysctl, seen as 65534 65534", out)
		}
		netns := e.netns[len(e.netns)-1]
		if res := runCmd(t, ctrTimeout, nil, nil, "ip", "netns", "exec", filepath.Base(netns), "cat", "/proc/sys/net/ipv4/ping_group_range"); strings.Join(strings.Fields(res.Stdout), " ") != "0 2147483647" {
			t.Errorf("agent pod: ping_group_range in %s: %q %q, want the pod's sysctl 0 2147483647", netns, res.Stdout, res.Stderr)
		}
		peer := e.create(p, "peer", "sh", "-c", "mkdir /tmp/w && echo hello-from-peer >/tmp/w/index.html && exec httpd -f -p 127.0.0.1:8080 -h /tmp/w")
		e.ok("start", peer)
		var got cmdResult
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if got = e.cmd("exec", "-s", box, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html"); got.Code == 0 {
				break
			}
		}
		if got.Code != 0 || strings.TrimSpace(got.Stdout) != "hello-from-peer" {
			logs := e.cmd("logs", peer)
			t.Errorf("the peer container's server over the pod's loopback: exit %d, %q, %q (peer %+v, logs %q %q)",
				got.Code, got.Stdout, got.Stderr, e.status(peer), logs.Stdout, logs.Stderr)
		}
		// One network, IPC and UTS namespace for the pod's containers,
		// none of them the host's; a user namespace of each one's own.
		nsOf := func(id string) []string {
			return strings.Fields(e.ok("exec", "-s", id, "sh", "-c", "for n in net ipc uts user; do readlink /proc/self/ns/$n; done"))
		}
		boxNS, peerNS := nsOf(box), nsOf(peer)
		if len(boxNS) != 4 || len(peerNS) != 4 || !slices.Equal(boxNS[:3], peerNS[:3]) || boxNS[3] == peerNS[3] {
			t.Errorf("agent pod namespaces: box %v, peer %v: want net, ipc and uts shared, user not", boxNS, peerNS)
		}
		for i, ns := range []string{"net", "ipc", "uts", "user"} {
			if host, _ := os.Readlink("/proc/self/ns/" + ns); i < len(boxNS) && boxNS[i] == host {
				t.Errorf("agent pod: the container's %s namespace is the host's (%s)", ns, host)
			}
		}
		// /sys is the host's sysfs, read-only, with the host's BPF
		// pins masked.
		if res := e.cmd("exec", "-s", box, "sh", "-c", "test -d /sys/class/net && ! mkdir /sys/x 2>/dev/null && grep -q ' /sys/fs/bpf .* - tmpfs ' /proc/self/mountinfo"); res.Code != 0 {
			t.Errorf("agent pod: /sys: exit %d, %q, %q: want the host's sysfs read-only, /sys/fs/bpf masked", res.Code, res.Stdout, res.Stderr)
		}
		// A syscall outside the allowlist: SIGSYS, and the status says
		// so in the only terms CRI has, 128+31; the container's log
		// names seccomp (the pre-exec step stays as the workload's
		// parent to say it). The workload first tries to silence that
		// parent, its pid namespace's init: the kernel ignores both
		// signals, and the parent is not dumpable (its memory and
		// environment are out of reach, so is ptrace).
		killed := e.create(p, "killed", "sh", "-c", "kill -KILL 1; kill -STOP 1; cat /proc/1/environ >/dev/null && exit 9; exec probe unlisted-one sysfs")
		e.ok("start", killed)
		if st := e.waitExited(killed); st.ExitCode != 159 || st.Reason != "Error" {
			t.Errorf("seccomp kill: %+v, want exit code 159 (128+SIGSYS), reason Error", st)
		}
		const seccompLine = "nucleus: killed by seccomp (SIGSYS): a syscall not in the agent allowlist"
		if res := e.cmd("logs", killed); res.Code != 0 || !strings.Contains(res.Stderr, seccompLine) {
			t.Errorf("seccomp kill: crictl logs: exit %d, %q, %q: want %q", res.Code, res.Stdout, res.Stderr, seccompLine)
		}
		// Nothing else gets the line: an exit status is passed through.
		quitter := e.create(p, "quitter", "sh", "-c", "echo bye >&2; exit 7")
		e.ok("start", quitter)
		if st := e.waitExited(quitter); st.ExitCode != 7 {
			t.Errorf("agent exit 7: %+v", st)
		}
		if res := e.cmd("logs", quitter); res.Stderr != "bye\n" {
			t.Errorf("agent exit 7: logs %q, %q", res.Stdout, res.Stderr)
		}
		// crictl stop's SIGTERM reaches the workload through its parent:
		// sleep dies of it (143) before the timeout's SIGKILL (137).
		e.ok("stop", "--timeout", "20", box, peer)
		if st := e.status(box); st.State != "CONTAINER_EXITED" || st.ExitCode != 143 {
			t.Errorf("agent stop: %+v, want exited 143 (SIGTERM forwarded)", st)
		}
		e.ok("rm", box, killed, quitter, peer)
		e.ok("stopp", p.id)
		e.ok("rmp", p.id)
		nuc.assertCalled(t, "--default-mode", "agent", "create", "--bundle")
		e.finish()
	})
}

// checkPodNetwork checks that container id of pod p is on the pod's
// network: the address CNI gave the pod on eth0, and the pod's hostname.
func (e *criEnv) checkPodNetwork(p pod, hostname, id string) {
	e.t.Helper()
	var ip struct {
		Status struct {
			Network struct{ IP string } `json:"network"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(e.ok("inspectp", p.id)), &ip); err != nil {
		e.t.Fatalf("inspectp %s: %v", p.id, err)
	}
	out := e.ok("exec", "-s", id, "sh", "-c", "hostname; ip -4 -o addr show eth0")
	if !strings.HasPrefix(out, hostname+"\n") || ip.Status.Network.IP == "" || !strings.Contains(out, " "+ip.Status.Network.IP+"/24") {
		e.t.Errorf("exec -s in the pod's namespaces: %q (pod IP %q)", out, ip.Status.Network.IP)
	}
}

// hasCap reports whether this process has capability c in its effective
// set.
func hasCap(c int) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var mask uint64
			fmt.Sscanf(strings.TrimSpace(v), "%x", &mask)
			return mask&(1<<uint(c)) != 0
		}
	}
	return false
}
