package nixbundle

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/spec"
)

// Output of `nix path-info -r --json` (Nix 2.8) for agent-example.
const pathInfoJSON = `[{"path":"/nix/store/61gv4kiqp9ckjkl7nv4xhmgd4d4n97ib-busybox","narHash":"sha256-fxghg4jE0+K7yLPdSh0tBJvnBN2FIaiNsQCeotJLchM=","narSize":2049376,"references":["/nix/store/61gv4kiqp9ckjkl7nv4xhmgd4d4n97ib-busybox"],"deriver":"/nix/store/lwh49jipjncxzgjmdab7hilscz9q7j5g-busybox.drv","registrationTime":1795620815,"ultimate":true},{"path":"/nix/store/g073achmfv5yhbsdpksq9j33zr7w3f6f-agent-example","narHash":"sha256-4v6vVsjXPOLJt29uR3u0mO72j4eq2PFuAqSmz8Y4tQM=","narSize":68360,"references":["/nix/store/61gv4kiqp9ckjkl7nv4xhmgd4d4n97ib-busybox","/nix/store/g073achmfv5yhbsdpksq9j33zr7w3f6f-agent-example","/nix/store/hr7l4ibgyi4iqv0y0m5ai5mx3f8a7l0r-agent"],"deriver":"/nix/store/843lpzlchllxazf6whafciwgl1n5mk7b-agent-example.drv","registrationTime":1795620815,"ultimate":true},{"path":"/nix/store/hr7l4ibgyi4iqv0y0m5ai5mx3f8a7l0r-agent","narHash":"sha256-9xm07MiU4hmcviXMuG/riZwVNjtI8gJN+vEuQMDAB0I=","narSize":616,"references":["/nix/store/61gv4kiqp9ckjkl7nv4xhmgd4d4n97ib-busybox"],"deriver":"/nix/store/ab2dh1y237cb69gm3wr0fcdwms1d9j83-agent.drv","registrationTime":1795620815,"ultimate":true}]`

func TestParsePathInfo(t *testing.T) {
	got, err := ParsePathInfo([]byte(pathInfoJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d paths, want 3", len(got))
	}
	if got[1].Path != "/nix/store/g073achmfv5yhbsdpksq9j33zr7w3f6f-agent-example" || got[1].NarSize != 68360 ||
		got[1].NarHash != "sha256-4v6vVsjXPOLJt29uR3u0mO72j4eq2PFuAqSmz8Y4tQM=" || len(got[1].References) != 3 {
		t.Fatalf("entry 1: %+v", got[1])
	}
	if !slices.IsSortedFunc(got, func(a, b PathInfo) int { return strings.Compare(a.Path, b.Path) }) {
		t.Fatal("not sorted by path")
	}
	for name, bad := range map[string]string{
		"not JSON":      `{`,
		"empty":         `[]`,
		"invalid path":  `[{"path":"/nix/store/x-a","valid":false}]`,
		"no hash":       `[{"path":"/nix/store/x-a","narSize":1}]`,
		"outside store": `[{"path":"/etc/passwd","narHash":"sha256-x"}]`,
		"subpath":       `[{"path":"/nix/store/x-a/bin","narHash":"sha256-x"}]`,
	} {
		if _, err := ParsePathInfo([]byte(bad)); err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: multi-line error %q", name, err)
		}
	}
}

func TestParseBuildJSON(t *testing.T) {
	out, err := ParseBuildJSON([]byte(`[{"drvPath":"/nix/store/a.drv","outputs":{"out":"/nix/store/b-x"}}]`))
	if err != nil || out != "/nix/store/b-x" {
		t.Fatalf("got %q, %v", out, err)
	}
	out, err = ParseBuildJSON([]byte(`[{"drvPath":"/nix/store/a.drv","outputs":{"bin":"/nix/store/c-x"}}]`))
	if err != nil || out != "/nix/store/c-x" {
		t.Fatalf("single output: got %q, %v", out, err)
	}
	if _, err := ParseBuildJSON([]byte(`[{"outputs":{"bin":"a","lib":"b"}}]`)); err == nil {
		t.Fatal("two outputs without out: no error")
	}
	if _, err := ParseBuildJSON([]byte(`[]`)); err == nil {
		t.Fatal("no results: no error")
	}
}

func TestFlakeMetadata(t *testing.T) {
	m, err := ParseFlakeMetadata([]byte(`{"locked":{"narHash":"sha256-zJ="},"locks":{"nodes":{"root":{}},"root":"root","version":7},"resolvedUrl":"path:/f"}`))
	if err != nil || m.Locked.NarHash != "sha256-zJ=" || m.ResolvedURL != "path:/f" || m.HasInputs() {
		t.Fatalf("%+v %v", m, err)
	}
	m, _ = ParseFlakeMetadata([]byte(`{"locked":{"narHash":"sha256-zJ="},"locks":{"nodes":{"root":{"inputs":{"nixpkgs":"nixpkgs"}}},"root":"root"}}`))
	if !m.HasInputs() {
		t.Fatal("inputs not seen")
	}
	if _, err := ParseFlakeMetadata([]byte(`{"locked":{}}`)); err == nil {
		t.Fatal("no narHash: no error")
	}
}

func TestErrorLine(t *testing.T) {
	stderr := "building '/nix/store/m-broken.drv'...\n" +
		"error: builder for '/nix/store/m-broken.drv' failed with exit code 3;\n" +
		"       last 1 log lines:\n       > the build broke on purpose\n" +
		"       For full logs, run 'nix log /nix/store/m-broken.drv'.\n"
	got := ErrorLine([]byte(stderr))
	want := "builder for '/nix/store/m-broken.drv' failed with exit code 3; last 1 log lines: > the build broke on purpose For full logs, run 'nix log /nix/store/m-broken.drv'."
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if got := ErrorLine([]byte("warning: x\nsomething odd\n\n")); got != "something odd" {
		t.Fatalf("no error: line: got %q", got)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"agent-example": "agent-example", "packages.x86_64-linux.My_App": "my-app", "": "nucleus", "__": "nucleus",
	} {
		if got := Hostname(in); got != want {
			t.Errorf("Hostname(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/nix/store/abc-hello-1.0": "hello", "/nix/store/abc-agent-example": "agent-example", "/nix/store/abc-foo-bar-2": "foo-bar",
	} {
		if got := pname(in); got != want {
			t.Errorf("pname(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"github:a/b": "github:a/b", "nixpkgs": "nixpkgs", "/x/y": "/x/y", "path:/x": "path:/x", "path:/x?dir=a": "path:/x?dir=a"} {
		if got := absRef(in); got != want {
			t.Errorf("absRef(%q) = %q, want %q", in, got, want)
		}
	}
	if got := absRef("path:rel"); !strings.HasPrefix(got, "path:/") {
		t.Errorf("absRef(path:rel) = %q", got)
	}
	if _, _, err := SplitRef("#x"); err == nil {
		t.Error("SplitRef(#x): no error")
	}
}

// fakeStore makes a store with a "tool" path (bin/tool) and a "data" file
// path, and a plan over them.
func fakeStore(t *testing.T) *Plan {
	t.Helper()
	old := StoreDir
	// Not under /tmp: the bundle's config mounts a tmpfs there.
	base, err := os.MkdirTemp("/var/tmp", "nixbundle-test-")
	if err != nil {
		t.Fatal(err)
	}
	StoreDir = filepath.Join(base, "store")
	t.Cleanup(func() { StoreDir = old; os.RemoveAll(base) })
	tool := filepath.Join(StoreDir, "aaaa-tool")
	data := filepath.Join(StoreDir, "bbbb-data")
	os.MkdirAll(filepath.Join(tool, "bin"), 0o755)
	os.WriteFile(filepath.Join(tool, "bin", "tool"), []byte("#!/bin/sh\necho tool\n"), 0o755)
	os.WriteFile(data, []byte("some data\n"), 0o444)
	p := &Plan{Ref: "path:/f#tool", FlakeURL: "path:/f", NarHash: "sha256-flake=", Output: tool,
		Entrypoint: filepath.Join(tool, "bin", "tool"), Args: []string{"-x"}, Hostname: "tool"}
	for _, sp := range []string{tool, data} {
		h, err := NARHash(sp)
		if err != nil {
			t.Fatal(err)
		}
		p.Closure = append(p.Closure, PathInfo{Path: sp, NarHash: h, NarSize: 1})
	}
	return p
}

func TestConfig(t *testing.T) {
	p := fakeStore(t)
	s := Config(p)
	if s.Root == nil || s.Root.Path != "rootfs" || !s.Root.Readonly {
		t.Fatalf("root %+v", s.Root)
	}
	if s.Hostname != "tool" || s.Process.Terminal || s.Process.Cwd != "/" {
		t.Fatalf("hostname %q terminal %v cwd %q", s.Hostname, s.Process.Terminal, s.Process.Cwd)
	}
	if !slices.Equal(s.Process.Args, []string{p.Entrypoint, "-x"}) {
		t.Fatalf("args %v", s.Process.Args)
	}
	if s.Process.Env[0] != "PATH="+p.Output+"/bin" {
		t.Fatalf("env %v", s.Process.Env)
	}
	var ns []string
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, string(n.Type))
	}
	if want := []string{"pid", "mount", "network", "uts", "ipc", "cgroup"}; !slices.Equal(ns, want) {
		t.Fatalf("namespaces %v, want %v", ns, want)
	}
	if len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
		t.Fatal("no masked/readonly paths")
	}
	binds := map[string]specs.Mount{}
	hasTmp := false
	for _, m := range s.Mounts {
		if m.Type == "bind" {
			binds[m.Destination] = m
		}
		if m.Destination == "/tmp" && m.Type == "tmpfs" {
			hasTmp = true
		}
	}
	if !hasTmp {
		t.Error("no tmpfs /tmp")
	}
	if len(binds) != len(p.Closure) {
		t.Fatalf("%d bind mounts, want %d (one per store path)", len(binds), len(p.Closure))
	}
	for _, pi := range p.Closure {
		m, ok := binds[pi.Path]
		if !ok || m.Source != pi.Path || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "nosuid") || !slices.Contains(m.Options, "nodev") {
			t.Errorf("store path %s: mount %+v", pi.Path, m)
		}
	}
	// Deterministic, and valid once the rootfs exists.
	a, _ := spec.Marshal(Config(p))
	b, _ := spec.Marshal(Config(p))
	if !bytes.Equal(a, b) {
		t.Fatal("Config is not deterministic")
	}
	dir := t.TempDir()
	if err := MakeRootfs(dir, s); err != nil {
		t.Fatal(err)
	}
	if err := spec.Validate(filepath.Join(dir, "config.json"), dir, s); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "rootfs", p.Closure[1].Path)); err != nil || st.IsDir() || st.Size() != 0 {
		t.Fatalf("file store path mount point: %v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs", "dev", "pts")); err == nil {
		t.Error("rootfs/dev/pts created, but /dev is a mount")
	}
}

func TestAttestationAndVerify(t *testing.T) {
	p := fakeStore(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	state := t.TempDir()
	a, err := writeBundle(dir, p, state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.StorePaths) != 2 || a.Flake.NarHash != "sha256-flake=" || a.Config.SHA256 == "" {
		t.Fatalf("attestation %+v", a)
	}
	if _, err := Verify(dir); err != nil {
		t.Fatalf("fresh bundle: %v", err)
	}
	// The GC root is indirect, as nix build --out-link makes it.
	roots, _ := filepath.Glob(filepath.Join(state, "gcroots", "auto", "*"))
	if len(roots) != 1 {
		t.Fatalf("gc roots %v", roots)
	}
	if l, _ := os.Readlink(roots[0]); l != filepath.Join(dir, GCRootName) {
		t.Fatalf("gc root -> %s", l)
	}
	if l, _ := os.Readlink(filepath.Join(dir, GCRootName)); l != p.Output {
		t.Fatalf("gcroot -> %s, want %s", l, p.Output)
	}

	flip := func(file string, off int) func() {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		orig := slices.Clone(data)
		data[off] ^= 1
		os.WriteFile(file, data, 0o644)
		return func() { os.WriteFile(file, orig, 0o644) }
	}
	expectFail := func(what string, wants ...string) {
		t.Helper()
		_, err := Verify(dir)
		if err == nil {
			t.Fatalf("%s: Verify passed", what)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", what, err, w)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: multi-line error", what)
		}
	}
	undo := flip(filepath.Join(dir, "config.json"), 10)
	expectFail("config byte", filepath.Join(dir, "config.json"), "sha256")
	undo()
	undo = flip(filepath.Join(p.Output, "bin", "tool"), 3)
	expectFail("store byte", p.Output, "storePaths[0].narHash")
	undo()
	os.Chmod(filepath.Join(p.Output, "bin", "tool"), 0o644)
	expectFail("store mode", p.Output, "NAR hash")
	os.Chmod(filepath.Join(p.Output, "bin", "tool"), 0o755)
	os.WriteFile(filepath.Join(dir, "rootfs", "evil"), []byte("x"), 0o644)
	expectFail("rootfs file", "rootfs/evil", "only empty mount points")
	os.Remove(filepath.Join(dir, "rootfs", "evil"))
	undo = flip(filepath.Join(dir, AttestationName), 2)
	expectFail("attestation JSON", AttestationName)
	undo()
	if _, err := Verify(dir); err != nil {
		t.Fatalf("restored bundle: %v", err)
	}
	os.Remove(filepath.Join(dir, AttestationName))
	expectFail("no attestation", AttestationName, "no such file")
}

func TestWriteBundleReplacesOnlyBundles(t *testing.T) {
	p := fakeStore(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "b")
	state := t.TempDir()
	if _, err := writeBundle(dir, p, state, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := checkTarget(dir); err != nil {
		t.Fatalf("existing bundle: %v", err)
	}
	p.Args = []string{"-y"}
	if _, err := writeBundle(dir, p, state, nil, nil); err != nil {
		t.Fatalf("replace: %v", err)
	}
	var s specs.Spec
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	json.Unmarshal(data, &s)
	if s.Process.Args[1] != "-y" {
		t.Fatalf("not replaced: %v", s.Process.Args)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Fatalf("leftovers next to the bundle: %v", entries)
	}
	other := filepath.Join(parent, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "precious"), nil, 0o644)
	if err := checkTarget(other); err == nil || !strings.Contains(err.Error(), "not a bundle") {
		t.Fatalf("non-bundle dir: %v", err)
	}
	if err := checkTarget(filepath.Join(parent, "no", "such")); err == nil {
		t.Fatal("missing parent: no error")
	}
}

func TestCacheKey(t *testing.T) {
	dir := t.TempDir()
	flake := filepath.Join(dir, "f")
	os.MkdirAll(filepath.Join(flake, "nix"), 0o755)
	os.WriteFile(filepath.Join(flake, "flake.nix"), []byte("{ outputs = _: {}; }"), 0o644)
	os.WriteFile(filepath.Join(flake, "nix", "a.nix"), []byte("1"), 0o644)
	key := func(ref, attr string, args ...string) string {
		t.Helper()
		k, ok, err := CacheKey(ref, attr, "", args)
		if err != nil || !ok {
			t.Fatalf("CacheKey(%s): ok=%v err=%v", ref, ok, err)
		}
		return k
	}
	k1 := key(flake, "a")
	if key("path:"+flake, "a") != k1 {
		t.Error("path: and a plain path outside git differ (Nix copies the same files)")
	}
	if key(flake, "a") != k1 {
		t.Fatal("key not stable")
	}
	if key(flake, "b") == k1 || key(flake, "a", "x") == k1 {
		t.Fatal("attr/args not in key")
	}
	os.WriteFile(filepath.Join(flake, "nix", "a.nix"), []byte("2"), 0o644)
	k2 := key(flake, "a")
	if k2 == k1 {
		t.Fatal("content change not seen")
	}
	os.Chmod(filepath.Join(flake, "nix", "a.nix"), 0o755)
	if key(flake, "a") == k2 {
		t.Fatal("mode change not seen")
	}
	os.WriteFile(filepath.Join(flake, "new"), nil, 0o644)
	k3 := key(flake, "a")
	os.Symlink("new", filepath.Join(flake, "result"))
	if key(flake, "a") == k3 {
		t.Fatal("new symlink not seen (Nix copies it for a path flake)")
	}
	for _, ref := range []string{"github:a/b", "nixpkgs", flake + "?dir=x", filepath.Join(dir, "nothing"), dir} {
		if _, ok, _ := CacheKey(ref, "a", "", nil); ok {
			t.Errorf("%s: cacheable", ref)
		}
	}

	// In a git work tree, only tracked or staged files count.
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := filepath.Join(dir, "repo")
	sub := filepath.Join(repo, "sub")
	os.MkdirAll(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "flake.nix"), []byte("{ outputs = _: {}; }"), 0o644)
	os.WriteFile(filepath.Join(repo, "top.nix"), []byte("1"), 0o644)
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", "sub/flake.nix", "top.nix")
	g1 := key(sub, "a")
	os.WriteFile(filepath.Join(repo, "untracked"), []byte("x"), 0o644)
	if key(sub, "a") != g1 {
		t.Fatal("untracked file changed the key of a git flake")
	}
	os.WriteFile(filepath.Join(repo, "top.nix"), []byte("2"), 0o644)
	if key(sub, "a") == g1 {
		t.Fatal("tracked file outside the flake dir not seen (Nix copies the whole repository)")
	}
	if key("path:"+sub, "a") == key(sub, "a") {
		t.Fatal("path: ref inside git must use path mode")
	}
}

func TestCacheStoreLoad(t *testing.T) {
	p := fakeStore(t)
	dir := t.TempDir()
	if err := storeCache(dir, "k", p); err != nil {
		t.Fatal(err)
	}
	got := loadCache(dir, "k")
	if got == nil || got.Output != p.Output || len(got.Closure) != 2 {
		t.Fatalf("loaded %+v", got)
	}
	if loadCache(dir, "other") != nil {
		t.Fatal("hit for an unknown key")
	}
	os.Remove(p.Closure[1].Path) // garbage-collected
	if loadCache(dir, "k") != nil {
		t.Fatal("hit with a missing store path")
	}
}

// A failed Nix command's stderr reaches Nix.Stderr byte for byte, and the
// error is then one line pointing there; without Stderr the error carries
// Nix's message folded into one line, as before.
func TestNixErrorShownIntact(t *testing.T) {
	nixErr := "warning: Git tree is dirty\nerror: builder for '/nix/store/x-broken.drv' failed with exit code 3;\n       last 2 log lines:\n       > one\n       > two\n"
	fake := filepath.Join(t.TempDir(), "nix")
	os.WriteFile(fake, []byte("#!/bin/sh\nprintf '%s' \""+nixErr+"\" >&2\nexit 1\n"), 0o755)
	var shown bytes.Buffer
	n := &Nix{Bin: fake, Stderr: &shown}
	_, err := n.Build(t.Context(), "path:/x#broken")
	if shown.String() != nixErr {
		t.Errorf("shown %q, want Nix's stderr %q", shown.String(), nixErr)
	}
	if err == nil || err.Error() != "nix build failed with exit status 1 (Nix's error is above)" {
		t.Errorf("error %v", err)
	}
	_, err = (&Nix{Bin: fake}).Build(t.Context(), "path:/x#broken")
	want := "nix build: builder for '/nix/store/x-broken.drv' failed with exit code 3; last 2 log lines: > one > two"
	if err == nil || err.Error() != want {
		t.Errorf("error without Stderr %q, want %q", err, want)
	}
	// Probes stay quiet: a missing attribute is an answer, not an error.
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"error: flake 'path:/x' does not provide attribute 'apps'\" >&2\nexit 1\n"), 0o755)
	shown.Reset()
	if _, missing, err := n.EvalString(t.Context(), "path:/x#apps"); err != nil || !missing || shown.Len() != 0 {
		t.Errorf("EvalString: missing %v err %v shown %q", missing, err, shown.String())
	}
}
