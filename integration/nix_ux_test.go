package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Tests for how `nucleus bundle` talks to its user: Nix's own output, no
// spurious warnings, bundles that run whatever the umask, and the README's
// second flake on lib.mkRootfs.

// nixUXFlake is a flake (with the busybox builder of nixFlakeCopy) with a
// derivation that logs and succeeds and one that logs and fails, new to
// the store each time (a nonce), so Nix really builds them.
func nixUXFlake(t *testing.T) string {
	t.Helper()
	flake := nixFlakeCopy(t)
	nonce := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	os.WriteFile(filepath.Join(flake, "flake.nix"), []byte(`{
  outputs = { self }:
    let
      bb = "${./nix/bb}/busybox";
      drv = name: script: builtins.derivation { inherit name; nonce = "`+nonce+`"; system = "x86_64-linux"; builder = bb; args = [ "sh" "-c" script ]; };
    in {
      packages.x86_64-linux = {
        logs = drv "logs" "echo nx-log-line-one; echo nx-log-line-two >&2; ${bb} mkdir -p $out/bin; ${bb} cp ${bb} $out/bin/busybox; ${bb} ln -s busybox $out/bin/logs";
        broken = drv "broken" "echo first broken line >&2; echo second broken line >&2; exit 3";
      };
    };
}
`), 0o644)
	return flake
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// plainLines strips terminal escapes and carriage returns.
func plainLines(s string) []string {
	s = ansiEscape.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// Not on a terminal: a Nix failure reaches stderr as Nix printed it, line
// for line (the builder's log tail included), then one nucleus line.
func TestNixBuildErrorAsNixPrintedIt(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixUXFlake(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "bundle")
	res := r.Run(nil, "bundle", "path:"+flake+"#broken", "-o", out, "--cache-dir", cache)
	if res.Code == 0 {
		t.Fatalf("bundle of a failing derivation succeeded: %s", res.Stdout)
	}
	lines := strings.Split(strings.TrimRight(res.Stderr, "\n"), "\n")
	var errLine string
	for _, l := range lines {
		if strings.HasPrefix(l, "error: builder for '/nix/store/") {
			errLine = l
		}
	}
	if !strings.HasSuffix(errLine, "-broken.drv' failed with exit code 3;") {
		t.Errorf("no intact Nix error line in stderr:\n%s", res.Stderr)
	}
	for _, w := range []string{"> first broken line", "> second broken line"} {
		if !hasLine(lines, w) {
			t.Errorf("stderr lacks Nix's log line %q as a line of its own:\n%s", w, res.Stderr)
		}
	}
	last := lines[len(lines)-1]
	want := "nucleus: build path:" + flake + "#broken: nix build failed with exit status 1 (Nix's error is above)"
	if last != want {
		t.Errorf("last stderr line %q, want %q", last, want)
	}
	if n := strings.Count(res.Stderr, "nucleus:"); n != 1 {
		t.Errorf("%d nucleus lines, want 1:\n%s", n, res.Stderr)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// On a terminal (script(1) gives nucleus one), Nix gets the terminal: the
// builder's log streams (-L) and a failure shows Nix's error, then the
// nucleus line.
func TestNixBundleOnTerminal(t *testing.T) {
	script := requireCmd(t, "script")
	r, cache := nixEnv(t)
	flake := nixUXFlake(t)
	parent := t.TempDir()
	os.Chmod(parent, 0o755)
	run := func(attr string) (string, error) {
		cmdline := strings.Join([]string{r.Bin, "--root", r.Root, "bundle", "path:" + flake + "#" + attr,
			"-o", filepath.Join(parent, attr), "--cache-dir", cache, "--no-cache"}, " ")
		out, err := exec.Command(script, "-qec", cmdline, "/dev/null").CombinedOutput()
		return string(out), err
	}
	out, err := run("logs")
	lines := plainLines(out)
	if err != nil || !strings.Contains(out, "built with nix") {
		t.Errorf("bundle on a terminal: %v\n%s", err, out)
	}
	for _, w := range []string{"logs> nx-log-line-one", "logs> nx-log-line-two"} {
		if !hasLine(lines, w) {
			t.Errorf("terminal lacks the build log line %q:\n%q", w, out)
		}
	}
	out, err = run("broken")
	lines = plainLines(out)
	if err == nil {
		t.Errorf("bundle of a failing derivation on a terminal succeeded:\n%s", out)
	}
	var sawErr bool
	for _, l := range lines {
		if strings.HasPrefix(l, "error: builder for '/nix/store/") && strings.Contains(l, "-broken.drv' failed with exit code 3") {
			sawErr = true
		}
	}
	if !sawErr || !hasLine(lines, "broken> first broken line") || !hasLine(lines, "broken> second broken line") {
		t.Errorf("terminal lacks Nix's error or the builder's log:\n%q", out)
	}
	if !hasLine(lines, "nucleus: build path:"+flake+"#broken: nix build failed with exit status 1 (Nix's error is above)") {
		t.Errorf("terminal lacks the nucleus summary line:\n%q", out)
	}
}

// A fresh -o dir gets no warning (old nucleus planned the mode against the
// not yet written rootfs and warned "userns_mapped: stat ...: no such
// file"), on a miss and on a hit; and a bundle written under umask 077
// still runs in agent mode, whose user namespace's root must reach every
// mount point.
func TestNixBundleQuietAndRunnableUnderUmask(t *testing.T) {
	r, cache := nixEnv(t)
	flake := nixFlakeCopy(t)
	parent := t.TempDir()
	os.Chmod(parent, 0o755)
	for i, how := range []string{"built with nix", "cached"} {
		out := filepath.Join(parent, "fresh-new-dir"+string(rune('a'+i)))
		cmd := r.Cmd("bundle", "path:"+flake+"#agent-example", "-o", out, "--cache-dir", cache)
		cmd.Path, cmd.Args = "/bin/sh", append([]string{"sh", "-c", `umask 077; exec "$@"`, "sh", r.Bin}, cmd.Args[1:]...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil || !strings.Contains(string(stdout), how) {
			t.Fatalf("bundle -o %s: %v, stdout %q, stderr %q; want %q", out, err, stdout, stderr.String(), how)
		}
		if stderr.Len() != 0 {
			t.Errorf("bundle -o %s (%s): stderr %q, want nothing", out, how, stderr.String())
		}
		id := "nx-umask-" + string(rune('a'+i))
		res := r.OK("run", "--bundle", out, id)
		if !strings.Contains(res.Stdout, "agent-example: hello from agent-example") {
			t.Errorf("run %s: stdout %q stderr %q", id, res.Stdout, res.Stderr)
		}
		if strings.Contains(res.Stderr, "warn") {
			t.Errorf("run %s: stderr %q", id, res.Stderr)
		}
		assertNoLeftovers(t, r.Root, id, out)
	}
}

// readmeFencedBlock returns the fenced block of README.md (with the given info
// string) that contains marker.
func readmeFencedBlock(t *testing.T, lang, marker string) string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(data), "```"+lang+"\n")[1:] {
		block, _, ok := strings.Cut(part, "\n```")
		if ok && strings.Contains(block, marker) {
			return block + "\n"
		}
	}
	t.Fatalf("README.md has no ```%s block with %q", lang, marker)
	return ""
}

// The README's second flake, verbatim but for the path of the nucleus
// flake, builds its own rootfs with lib.mkRootfs, offline, and runs; with
// the flake.lock `nix flake lock` writes it is cached.
func TestNixReadmeSecondFlake(t *testing.T) {
	r, cache := nixEnv(t)
	nucleusFlake := nixFlakeCopy(t)
	const placeholder = "path:/path/to/nucleus/build/flake"
	text := readmeFencedBlock(t, "nix", "inputs.nucleus.url")
	if !strings.Contains(text, placeholder) {
		t.Fatalf("README's second flake does not name %s:\n%s", placeholder, text)
	}
	mine := filepath.Join(t.TempDir(), "greeter")
	os.MkdirAll(mine, 0o755)
	os.WriteFile(filepath.Join(mine, "flake.nix"), []byte(strings.Replace(text, placeholder, "path:"+nucleusFlake, 1)), 0o644)

	// The README's commands and the output it promises.
	usage := readmeFencedBlock(t, "sh", "path:$HOME/greeter")
	var args []string
	var want string
	for _, l := range strings.Split(usage, "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && f[0] == "nucleus" && f[1] == "bundle" {
			_, rest, _ := strings.Cut(l, " -- ")
			args = strings.Fields(rest)
		}
		if len(f) > 1 && f[0] == "nucleus" && f[1] == "run" {
			_, want, _ = strings.Cut(l, "# ")
		}
	}
	if len(args) == 0 || want == "" {
		t.Fatalf("README's usage block has no bundle -- ARGS or run # OUTPUT:\n%s", usage)
	}

	dir, report := nixBundle(t, r, cache, "path:"+mine, append([]string{"--"}, args...)...)
	if !strings.Contains(report, "built with nix") || !strings.Contains(report, "-greeter/bin/greeter") {
		t.Errorf("report %q", report)
	}
	if _, err := os.Stat(filepath.Join(mine, "flake.lock")); err == nil {
		t.Errorf("nucleus bundle wrote %s/flake.lock", mine)
	}
	res := r.OK("run", "--bundle", dir, "nx-readme-flake")
	if strings.TrimSpace(res.Stdout) != strings.TrimSpace(want) {
		t.Errorf("run: stdout %q, README says %q", res.Stdout, want)
	}
	assertNoLeftovers(t, r.Root, "nx-readme-flake", dir)
	// The closure holds the nucleus flake's busybox.
	var sawBusybox bool
	for _, p := range nixReadAttestation(t, dir).StorePaths {
		sawBusybox = sawBusybox || strings.HasSuffix(p.Path, "-busybox")
	}
	if !sawBusybox {
		t.Errorf("attestation lacks the busybox store path")
	}

	// Without a lock file every bundle runs Nix; `nix flake lock` works
	// offline for the path: input, and then the flake is cached.
	if _, report := nixBundle(t, r, cache, "path:"+mine, append([]string{"--"}, args...)...); !strings.Contains(report, "built with nix") {
		t.Errorf("unlocked flake with inputs was cached: %q", report)
	}
	cmd := exec.Command("nix", "flake", "lock")
	cmd.Dir = mine
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nix flake lock: %v\n%s", err, out)
	}
	nixBundle(t, r, cache, "path:"+mine, append([]string{"--"}, args...)...)
	if _, report := nixBundle(t, r, cache, "path:"+mine, append([]string{"--"}, args...)...); !strings.Contains(report, "cached") {
		t.Errorf("locked flake not cached: %q", report)
	}
}
