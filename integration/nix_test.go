package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Tests for `nucleus bundle` / `nucleus verify` with real, offline Nix
// (configured by scripts/setup-nix.sh, which `make deps` runs).
//
// The repository's flake needs a static busybox at nix/bb/busybox, which is
// never committed; in a git work tree Nix would not see that ignored file.
// So every test works on a standalone copy of the flake in a temp dir
// outside git (scripts/nix-flake.sh DIR), bundled as a plain path.

// nixEnv checks the prerequisites and returns a runner plus a cache dir.
func nixEnv(t *testing.T) (*Runner, string) {
	t.Helper()
	r := newRunner(t)
	requireCmd(t, "nix")
	busyboxPath(t)
	out, err := exec.Command("nix", "flake", "--help").CombinedOutput()
	need(t, err == nil, fmt.Sprintf("nix flakes not enabled (run scripts/setup-nix.sh): %v %s", err, firstLine(out)))
	return r, t.TempDir()
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// nixFlakeCopy writes a standalone copy of the repository's flake (with
// the busybox builder) to a fresh temp dir and returns it.
func nixFlakeCopy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "flake")
	out, err := exec.Command("../scripts/nix-flake.sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/nix-flake.sh: %v\n%s", err, out)
	}
	return dir
}

// nixBundle runs `nucleus bundle` with a private cache and returns the
// bundle dir and nucleus's one-line report.
func nixBundle(t *testing.T, r *Runner, cache, ref string, extra ...string) (string, string) {
	t.Helper()
	// A place runc's user namespace can reach too (the bundle's config is
	// planned for a host with user namespaces), as /tmp/agent would be.
	parent := t.TempDir()
	os.Chmod(parent, 0o755)
	dir := filepath.Join(parent, "bundle")
	args := append([]string{"bundle", ref, "-o", dir, "--cache-dir", cache}, extra...)
	res := r.OK(args...)
	return dir, res.Stdout
}

type nixAttestation struct {
	Flake struct {
		Ref, URL, NarHash string
	}
	Output     string
	StorePaths []struct {
		Path    string
		NarHash string
	}
}

func nixReadAttestation(t *testing.T, dir string) nixAttestation {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "attestation.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a nixAttestation
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// nixClosure is `nix path-info -r` of path, as base names, sorted.
func nixClosure(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("nix", "path-info", "-r", path).Output()
	if err != nil {
		t.Fatalf("nix path-info -r %s: %v", path, err)
	}
	var names []string
	for _, p := range strings.Fields(string(out)) {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	return names
}

// runcRun runs the bundle with Debian's runc.
func runcRun(t *testing.T, bundle, id string) Result {
	t.Helper()
	runc := requireCmd(t, "runc")
	root := t.TempDir()
	cmd := exec.Command(runc, "--root", root, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			t.Fatalf("runc: %v", err)
		}
	}
	exec.Command(runc, "--root", root, "delete", "--force", id).Run()
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// The probe the agent runs: list the store, try to write to the store and
// to /, then report.
const nixProbe = `ls /nix/store; echo ---; ` +
	`if echo x > /nix/store/w 2>/dev/null; then echo store-writable; else echo store-ro; fi; ` +
	`if echo x > /w 2>/dev/null; then echo root-writable; else echo root-ro; fi; ` +
	`echo t > /tmp/t && echo tmp-rw; hostname`

func TestNixBundleRunsUnderNucleusAndRunc(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	dir, report := nixBundle(t, r, cache, flake+"#agent-example", "--", "sh", "-c", nixProbe)
	if !strings.Contains(report, "built with nix") {
		t.Errorf("first bundle report %q, want a Nix build", report)
	}
	a := nixReadAttestation(t, dir)
	closure := nixClosure(t, a.Output)
	if len(closure) < 3 {
		t.Fatalf("closure %v: want agent-example, agent, busybox", closure)
	}
	var attested []string
	for _, sp := range a.StorePaths {
		attested = append(attested, filepath.Base(sp.Path))
	}
	if !slices.Equal(attested, closure) {
		t.Fatalf("attested store paths %v, closure %v", attested, closure)
	}
	// lib.mkRootfs recorded the same closure.
	rec, err := os.ReadFile(filepath.Join(a.Output, "nix-support", "closure"))
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, p := range strings.Fields(string(rec)) {
		recorded = append(recorded, filepath.Base(p))
	}
	if !slices.Equal(recorded, closure) {
		t.Errorf("nix-support/closure %v, path-info %v", recorded, closure)
	}
	// The rootfs holds nothing but mount points.
	filepath.Walk(filepath.Join(dir, "rootfs"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Size() != 0 {
			t.Errorf("rootfs content: %s", p)
		}
		return nil
	})
	// The bundle is a GC root.
	roots, err := exec.Command("nix-store", "--gc", "--print-roots").Output()
	if err != nil || !strings.Contains(string(roots), filepath.Join(dir, "gcroot")+" -> "+a.Output) {
		t.Errorf("%s/gcroot is not a GC root of %s: %v\n%s", dir, a.Output, err, roots)
	}

	check := func(who string, res Result) {
		t.Helper()
		if res.Code != 0 {
			t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", who, res.Code, res.Stdout, res.Stderr)
		}
		head, tail, ok := strings.Cut(res.Stdout, "---\n")
		if !ok {
			t.Fatalf("%s: output %q", who, res.Stdout)
		}
		lines := strings.Fields(head)
		if lines[0] != "agent-example:" {
			t.Errorf("%s: entrypoint did not greet: %q", who, res.Stdout)
		}
		// Drop the greeting line ("agent-example: hello from HOST").
		got := strings.Fields(strings.SplitN(head, "\n", 2)[1])
		sort.Strings(got)
		if !slices.Equal(got, closure) {
			t.Errorf("%s: ls /nix/store = %v, want the closure %v", who, got, closure)
		}
		for _, w := range []string{"store-ro", "root-ro", "tmp-rw", "agent-example"} {
			if !strings.Contains(tail, w+"\n") {
				t.Errorf("%s: output %q lacks %q", who, tail, w)
			}
		}
	}
	check("nucleus run", r.Run(nil, "run", "--verify-attestation", "--bundle", dir, "nix-run1"))
	assertNoLeftovers(t, r.Root, "nix-run1", dir)
	check("runc run", runcRun(t, dir, "nix-runc1"))
	r.OK("verify", dir)
}

func TestNixVerifyDetectsChanges(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	// An output private to this test, so changing its store path can't
	// affect anything else; the byte is restored afterwards.
	nonce := fmt.Sprintf("%d", time.Now().UnixNano())
	os.WriteFile(filepath.Join(flake, "flake.nix"), []byte(`{
  outputs = { self }:
    let nlib = import ./nix/lib.nix { busyboxDir = ./nix/bb; };
        tool = nlib.writeScriptBin "tool" "#!/bin/sh\necho tamper-`+nonce+`\n";
    in { packages.x86_64-linux.tamper = nlib.mkRootfs { name = "tamper"; packages = [ tool ]; entrypoint = "tool"; }; };
}
`), 0o644)
	dir, _ := nixBundle(t, r, cache, flake+"#tamper")
	res := r.OK("verify", dir)
	if !strings.Contains(res.Stdout, "ok") {
		t.Fatalf("verify: %q", res.Stdout)
	}

	flip := func(file string) func() {
		t.Helper()
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		orig := slices.Clone(data)
		data[len(data)/2] ^= 0x20
		if err := os.WriteFile(file, data, 0o644); err != nil {
			need(t, false, fmt.Sprintf("cannot write %s: %v", file, err))
		}
		restored := false
		restore := func() {
			if !restored {
				restored = true
				os.WriteFile(file, orig, 0o644)
			}
		}
		t.Cleanup(restore)
		return restore
	}

	cfg := filepath.Join(dir, "config.json")
	restore := flip(cfg)
	r.Fail([]string{cfg, "sha256", "does not match"}, "verify", dir)
	r.Fail([]string{cfg, "attestation check failed"}, "run", "--verify-attestation", "--bundle", dir, "nix-tamper1")
	assertNoLeftovers(t, r.Root, "nix-tamper1", dir)
	restore()
	r.OK("verify", dir)

	// A byte of a store path's file (the script, through the env's symlink).
	script, err := filepath.EvalSymlinks(filepath.Join(nixReadAttestation(t, dir).Output, "bin", "tool"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(script, "-tool/") {
		t.Fatalf("script %s is not in the private tool output", script)
	}
	mode, _ := os.Stat(script)
	restoreStore := flip(script)
	os.Chmod(script, mode.Mode())
	storePath := "/nix/store/" + strings.Split(strings.TrimPrefix(script, "/nix/store/"), "/")[0]
	r.Fail([]string{storePath, "NAR hash", "does not match"}, "verify", dir)
	r.Fail([]string{storePath, "attestation check failed"}, "create", "--verify-attestation", "--bundle", dir, "nix-tamper2")
	assertNoLeftovers(t, r.Root, "nix-tamper2", dir)
	restoreStore()
	os.Chmod(script, mode.Mode())
	r.OK("verify", dir)
}

func TestNixSecondBundleSkipsNix(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	ref := flake + "#agent-example"
	first, report := nixBundle(t, r, cache, ref)
	if !strings.Contains(report, "built with nix") {
		t.Fatalf("first bundle: %q", report)
	}
	// Proof that the second bundling doesn't run Nix: nix is not on PATH.
	noNix := func(args ...string) Result {
		t.Helper()
		cmd := r.Cmd(args...)
		cmd.Env = append(os.Environ(), "PATH=/nonexistent")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
	}
	second := filepath.Join(t.TempDir(), "bundle2")
	start := time.Now()
	res := noNix("bundle", ref, "-o", second, "--cache-dir", cache)
	elapsed := time.Since(start)
	if res.Code != 0 || !strings.Contains(res.Stdout, "cached") {
		t.Fatalf("second bundle without nix on PATH: exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
	}
	t.Logf("cached bundle: %v", elapsed)
	for _, f := range []string{"config.json", "attestation.json"} {
		a, _ := os.ReadFile(filepath.Join(first, f))
		b, _ := os.ReadFile(filepath.Join(second, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the built and the cached bundle", f)
		}
	}
	r.OK("verify", second)
	// Rewriting the same bundle from the cache replaces it atomically.
	if res := noNix("bundle", ref, "-o", second, "--cache-dir", cache); res.Code != 0 {
		t.Fatalf("re-bundle in place: %s", res.Stderr)
	}
	if entries, _ := os.ReadDir(filepath.Dir(second)); len(entries) != 1 {
		t.Errorf("leftovers beside the bundle: %v", entries)
	}

	// Any change to the flake's source is a miss: without nix it must fail.
	nixFile := filepath.Join(flake, "flake.nix")
	src, _ := os.ReadFile(nixFile)
	os.WriteFile(nixFile, bytes.Replace(src, []byte("hello from"), []byte("hi from"), 1), 0o644)
	third := filepath.Join(t.TempDir(), "bundle3")
	res = noNix("bundle", ref, "-o", third, "--cache-dir", cache)
	if res.Code == 0 || !strings.Contains(res.Stderr, "nix not found") {
		t.Fatalf("changed flake without nix: exit %d, stderr %q; want a cache miss", res.Code, res.Stderr)
	}
	if _, err := os.Stat(third); err == nil {
		t.Error("failed bundle left its directory")
	}
	_, report = nixBundle(t, r, cache, ref)
	if !strings.Contains(report, "built with nix") {
		t.Fatalf("changed flake: %q", report)
	}
	// --no-cache always runs Nix.
	_, report = nixBundle(t, r, cache, ref, "--no-cache")
	if !strings.Contains(report, "built with nix") {
		t.Fatalf("--no-cache: %q", report)
	}
}

func TestNixEntrypoints(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	// apps.x86_64-linux.hello-example.program (a plain package, no mkRootfs).
	dir, report := nixBundle(t, r, cache, flake+"#hello-example")
	if !strings.Contains(report, "/bin/hello") {
		t.Errorf("report %q", report)
	}
	if res := r.OK("run", "--bundle", dir, "nix-hello"); res.Stdout != "hello, world\n" {
		t.Errorf("hello-example printed %q", res.Stdout)
	}
	// meta.mainProgram (busybox's is sh), with arguments after --.
	dir, _ = nixBundle(t, r, cache, flake+"#busybox", "--", "-c", "echo via sh")
	if res := r.OK("run", "--bundle", dir, "nix-bb"); res.Stdout != "via sh\n" {
		t.Errorf("busybox printed %q", res.Stdout)
	}
	// --entrypoint, relative to the output, and flags after the ref.
	dir, _ = nixBundle(t, r, cache, flake+"#agent-example", "--entrypoint", "bin/echo", "--", "explicit")
	if res := r.OK("run", "--bundle", dir, "nix-ep"); res.Stdout != "explicit\n" {
		t.Errorf("--entrypoint printed %q", res.Stdout)
	}
	res := runcRun(t, dir, "nix-ep-runc")
	if res.Code != 0 || res.Stdout != "explicit\n" {
		t.Errorf("runc: exit %d, %q %q", res.Code, res.Stdout, res.Stderr)
	}
	r.Fail([]string{"--entrypoint", "not in the output's closure"},
		"bundle", flake+"#agent-example", "-o", filepath.Join(t.TempDir(), "b"), "--cache-dir", cache, "--entrypoint", "/bin/sh")
}

func TestNixBadInput(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	os.WriteFile(filepath.Join(flake, "flake.nix"), []byte(`{
  outputs = { self }:
    let nlib = import ./nix/lib.nix { busyboxDir = ./nix/bb; };
    in {
      packages.x86_64-linux = {
        notdrv = { a = 1; };
        noentry = builtins.derivation {
          name = "noentry"; system = "x86_64-linux"; builder = "${./nix/bb}/busybox";
          args = [ "sh" "-c" "mkdir -p $out/bin && echo > $out/bin/other" ];
        };
        broken = builtins.derivation {
          name = "broken"; system = "x86_64-linux"; builder = "${./nix/bb}/busybox";
          args = [ "sh" "-c" "echo the build broke on purpose >&2; exit 3" ];
        };
      };
    };
}
`), 0o644)
	parent := t.TempDir()
	out := filepath.Join(parent, "bundle")
	// Nix's errors come as Nix printed them, then one nucleus line naming
	// the flake and the Nix command (wants holds both).
	cases := []struct {
		name  string
		ref   string
		nix   bool
		wants []string
	}{
		{"no such flake", filepath.Join(parent, "nothing") + "#x", true, []string{"nucleus: flake " + filepath.Join(parent, "nothing") + ": nix flake metadata failed", "No such file or directory"}},
		{"no such attribute", flake + "#missing", true, []string{"does not provide attribute", "missing", "nucleus: build " + flake + "#missing: nix build failed"}},
		{"not a derivation", flake + "#notdrv", true, []string{"notdrv", "is not a derivation"}},
		{"no entrypoint", flake + "#noentry", false, []string{"has no entrypoint", "--entrypoint"}},
		{"build failure", flake + "#broken", true, []string{"failed with exit code 3", "\n       > the build broke on purpose\n"}},
	}
	for _, c := range cases {
		t.Logf("case: %s", c.name)
		if c.nix {
			res := r.Run(nil, "bundle", c.ref, "-o", out, "--cache-dir", cache)
			lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
			last := lines[len(lines)-1]
			if res.Code == 0 || !strings.HasPrefix(last, "nucleus: ") || !strings.HasSuffix(last, "failed with exit status 1 (Nix's error is above)") || strings.Count(res.Stderr, "nucleus:") != 1 {
				t.Errorf("%s: exit %d, stderr does not end in one nucleus line:\n%s", c.name, res.Code, res.Stderr)
			}
			for _, w := range c.wants {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("%s: stderr lacks %q:\n%s", c.name, w, res.Stderr)
				}
			}
		} else {
			r.Fail(c.wants, "bundle", c.ref, "-o", out, "--cache-dir", cache)
		}
		if entries, _ := os.ReadDir(parent); len(entries) != 0 {
			t.Errorf("%s: left behind: %v", c.name, entries)
		}
	}
	{ // nix missing
		cmd := r.Cmd("bundle", flake+"#broken", "-o", out, "--cache-dir", cache)
		cmd.Env = append(os.Environ(), "PATH=/nonexistent")
		stderr, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(stderr), "nix not found on PATH") || strings.Count(strings.TrimSpace(string(stderr)), "\n") != 0 {
			t.Errorf("nix missing: err %v, output %q", err, stderr)
		}
	}
	// An existing directory that is not a bundle is never replaced.
	os.MkdirAll(out, 0o755)
	os.WriteFile(filepath.Join(out, "keep"), nil, 0o644)
	r.Fail([]string{out, "not a bundle written by nucleus bundle"}, "bundle", flake+"#hello-example", "-o", out, "--cache-dir", cache)
	if _, err := os.Stat(filepath.Join(out, "keep")); err != nil {
		t.Errorf("existing directory touched: %v", err)
	}
	r.Fail([]string{"attestation.json", "no such file"}, "verify", parent)
	r.Fail([]string{"requires exactly 1 argument"}, "bundle", "-o", out)
	r.Fail([]string{"no output directory"}, "bundle", flake+"#noentry")
}

// The flake's overlay and NixOS module evaluate offline (they can't be
// built without nixpkgs): checked against minimal stand-ins for nixpkgs.
func TestNixFlakeOverlayAndModuleEvaluate(t *testing.T) {
	nixEnv(t)
	flake := nixFlakeCopy(t)
	expr := filepath.Join(t.TempDir(), "check.nix")
	os.WriteFile(expr, []byte(`flake:
let
  lib = {
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    cleanSource = p: p;
    licenses.asl20 = "asl20";
    mkEnableOption = d: { type = "bool"; description = d; };
    mkOption = o: o;
    mkIf = cond: x: if cond then x else { };
    types = { package = "package"; str = "str"; bool = "bool"; attrsOf = t: t; submodule = m: m; };
    mapAttrs' = f: s: builtins.listToAttrs (map (n: f n s.${n}) (builtins.attrNames s));
    optionalString = c: s: if c then s else "";
  };
  final = {
    callPackage = f: args: import f ({ inherit lib; buildGoModule = a: a // { type = "derivation"; outPath = "/nix/store/fake-nucleus"; }; pkg-config = null; libseccomp = null; glibc.static = null; } // args);
  };
  pkg = (flake.overlays.default final { }).nucleus;
  mod = flake.nixosModules.default {
    inherit lib;
    pkgs = { nucleus = pkg; };
    config.services.nucleus = { enable = true; package = pkg; stateDir = "/run/nucleus"; containers.web = { bundle = "/var/lib/web"; verifyAttestation = true; }; };
  };
in {
  pname = pkg.pname;
  tags = pkg.tags;
  options = builtins.attrNames mod.options.services.nucleus;
  exec = mod.config.systemd.services.nucleus-web.serviceConfig.ExecStart;
}
`), 0o644)
	out, err := exec.Command("nix", "eval", "--json", "--impure", "--expr",
		fmt.Sprintf(`import %s (builtins.getFlake "path:%s")`, expr, flake)).CombinedOutput()
	if err != nil {
		t.Fatalf("nix eval: %v\n%s", err, out)
	}
	var got struct {
		Pname   string
		Tags    []string
		Options []string
		Exec    string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Pname != "nucleus" || !slices.Contains(got.Tags, "seccomp") {
		t.Errorf("package: %+v", got)
	}
	if !slices.Equal(got.Options, []string{"containers", "enable", "package", "stateDir"}) {
		t.Errorf("module options %v", got.Options)
	}
	if !strings.Contains(got.Exec, "run --verify-attestation --bundle /var/lib/web web") {
		t.Errorf("ExecStart %q", got.Exec)
	}
}
