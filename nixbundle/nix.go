package nixbundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// PathInfo is one store path of a closure, as `nix path-info -r --json`
// reports it.
type PathInfo struct {
	Path       string   `json:"path"`
	NarHash    string   `json:"narHash"`
	NarSize    int64    `json:"narSize"`
	References []string `json:"references,omitempty"`
}

// ParsePathInfo decodes `nix path-info -r --json` output: a JSON array of
// objects with path, narHash, narSize and references (Nix 2.8), sorted by
// path. A path Nix reports as invalid, or without a NAR hash, is an error.
func ParsePathInfo(data []byte) ([]PathInfo, error) {
	var raw []struct {
		PathInfo
		Valid *bool `json:"valid"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("nix path-info: unexpected output: %v", err)
	}
	if len(raw) == 0 {
		return nil, errors.New("nix path-info: empty closure")
	}
	out := make([]PathInfo, 0, len(raw))
	seen := map[string]bool{}
	for i, r := range raw {
		switch {
		case r.Path == "":
			return nil, fmt.Errorf("nix path-info: entry %d has no path", i)
		case !strings.HasPrefix(r.Path, StoreDir+"/") || strings.Contains(r.Path[len(StoreDir)+1:], "/"):
			return nil, fmt.Errorf("nix path-info: %q is not a store path under %s", r.Path, StoreDir)
		case r.Valid != nil && !*r.Valid:
			return nil, fmt.Errorf("nix path-info: %s is not valid in the store", r.Path)
		case !strings.HasPrefix(r.NarHash, "sha256-") && !strings.HasPrefix(r.NarHash, "sha256:"):
			return nil, fmt.Errorf("nix path-info: %s has no sha256 NAR hash (got %q)", r.Path, r.NarHash)
		}
		if seen[r.Path] {
			continue
		}
		seen[r.Path] = true
		out = append(out, r.PathInfo)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// BuildResult is one entry of `nix build --json`.
type BuildResult struct {
	DrvPath string            `json:"drvPath"`
	Outputs map[string]string `json:"outputs"`
}

// ParseBuildJSON returns the `out` output (or the only output) of the one
// installable built by `nix build --json`.
func ParseBuildJSON(data []byte) (string, error) {
	var res []BuildResult
	if err := json.Unmarshal(data, &res); err != nil {
		return "", fmt.Errorf("nix build: unexpected output: %v", err)
	}
	if len(res) != 1 {
		return "", fmt.Errorf("nix build: got %d results, want 1", len(res))
	}
	outs := res[0].Outputs
	if p, ok := outs["out"]; ok && p != "" {
		return p, nil
	}
	if len(outs) == 1 {
		for _, p := range outs {
			return p, nil
		}
	}
	return "", fmt.Errorf("nix build: %s has outputs %v and none is \"out\"", res[0].DrvPath, keys(outs))
}

func keys(m map[string]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// FlakeMetadata is what the attestation keeps from `nix flake metadata --json`.
type FlakeMetadata struct {
	ResolvedURL string `json:"resolvedUrl"`
	Locked      struct {
		NarHash string `json:"narHash"`
	} `json:"locked"`
	Locks struct {
		Root  string `json:"root"`
		Nodes map[string]struct {
			Inputs map[string]any `json:"inputs"`
		} `json:"nodes"`
	} `json:"locks"`
}

// ParseFlakeMetadata decodes `nix flake metadata --json`.
func ParseFlakeMetadata(data []byte) (*FlakeMetadata, error) {
	var m FlakeMetadata
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("nix flake metadata: unexpected output: %v", err)
	}
	if m.Locked.NarHash == "" {
		return nil, errors.New("nix flake metadata: the locked flake has no narHash")
	}
	return &m, nil
}

// HasInputs reports whether the flake's lock has any inputs.
func (m *FlakeMetadata) HasInputs() bool {
	root := m.Locks.Nodes[m.Locks.Root]
	return len(root.Inputs) > 0
}

// Nix runs the nix command line. Calls counts invocations (tests and the
// cache check use it).
type Nix struct {
	Bin   string
	Calls int
	// Stderr, if set, is where the user sees Nix: a failed command's
	// stderr is written there as Nix printed it (its error is many lines:
	// a trace, the builder's last log lines), and when it is a terminal
	// the build runs with it as its own stderr, so Nix draws its progress
	// and streams the build log (-L) there.
	Stderr io.Writer
}

// NixError is a failed Nix command with Nix's own message.
type NixError struct {
	Cmd string
	// Msg is Nix's error folded into one line (see ErrorLine).
	Msg string
	// Output is Nix's stderr as it printed it (empty when Nix wrote to
	// the terminal itself).
	Output string
	// ExitCode is Nix's exit status.
	ExitCode int
	// Shown is set once Nix's error reached Nix.Stderr: the error then
	// says so in one line rather than repeating it.
	Shown bool
}

func (e *NixError) Error() string {
	if e.Shown {
		return fmt.Sprintf("%s failed with exit status %d (Nix's error is above)", e.Cmd, e.ExitCode)
	}
	return e.Cmd + ": " + e.Msg
}

// nixError turns a failed Nix invocation into a *NixError.
func nixError(args []string, err error, stderr []byte) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("nix %s: %v", args[0], err)
	}
	msg := ErrorLine(stderr)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	name := "nix " + args[0]
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		name += " " + args[1] // a subcommand: flake metadata
	}
	return &NixError{Cmd: name, Msg: msg, Output: string(stderr), ExitCode: ee.ExitCode()}
}

// ErrorLine extracts Nix's error message from its stderr as one line: from
// the first line starting with "error:" to the end, whitespace collapsed,
// the "error:" prefix dropped; the last non-empty line if there is none.
func ErrorLine(stderr []byte) string {
	lines := strings.Split(string(stderr), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "error:") {
			start = i
			break
		}
	}
	if start < 0 {
		for i := len(lines) - 1; i >= 0; i-- {
			if s := strings.TrimSpace(lines[i]); s != "" {
				return s
			}
		}
		return ""
	}
	msg := strings.Join(strings.Fields(strings.Join(lines[start:], " ")), " ")
	return strings.TrimSpace(strings.TrimPrefix(msg, "error:"))
}

// run runs nix with args, its stderr captured.
func (n *Nix) run(ctx context.Context, args ...string) ([]byte, error) {
	n.Calls++
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, nixError(args, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// runLive runs nix with the terminal in n.Stderr as its stderr (and -L, so
// builders' logs stream above the progress bar), else as run does.
func (n *Nix) runLive(ctx context.Context, args ...string) ([]byte, error) {
	tty, ok := n.Stderr.(*os.File)
	if !ok || !isTerminal(tty) {
		return n.run(ctx, args...)
	}
	n.Calls++
	args = append([]string{args[0], "-L"}, args[1:]...)
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	if err := cmd.Run(); err != nil {
		err = nixError(args, err, nil)
		var ne *NixError
		if errors.As(err, &ne) {
			ne.Shown = true
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

// show writes a failed command's stderr to n.Stderr, once, as Nix printed
// it, and returns err (which then says so instead of repeating it).
func (n *Nix) show(err error) error {
	var ne *NixError
	if n.Stderr == nil || !errors.As(err, &ne) || ne.Shown || strings.TrimSpace(ne.Output) == "" {
		return err
	}
	out := ne.Output
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	if _, werr := io.WriteString(n.Stderr, out); werr == nil {
		ne.Shown = true
	}
	return err
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Metadata runs `nix flake metadata --json REF`.
func (n *Nix) Metadata(ctx context.Context, ref string) (*FlakeMetadata, error) {
	out, err := n.run(ctx, "flake", "metadata", "--json", "--no-write-lock-file", ref)
	if err != nil {
		return nil, n.show(err)
	}
	return ParseFlakeMetadata(out)
}

// Build runs `nix build --json --no-link INSTALLABLE` and returns the out path.
func (n *Nix) Build(ctx context.Context, installable string) (string, error) {
	out, err := n.runLive(ctx, "build", "--json", "--no-link", "--no-write-lock-file", installable)
	if err != nil {
		return "", n.show(err)
	}
	return ParseBuildJSON(out)
}

// Closure runs `nix path-info -r --json PATH`.
func (n *Nix) Closure(ctx context.Context, path string) ([]PathInfo, error) {
	out, err := n.run(ctx, "path-info", "-r", "--json", path)
	if err != nil {
		return nil, n.show(err)
	}
	return ParsePathInfo(out)
}

// EvalString runs `nix eval --raw INSTALLABLE`; missing reports an
// attribute that does not exist (not an error).
func (n *Nix) EvalString(ctx context.Context, installable string) (val string, missing bool, err error) {
	out, err := n.run(ctx, "eval", "--raw", "--no-write-lock-file", installable)
	if err != nil {
		var ne *NixError
		if errors.As(err, &ne) && (strings.Contains(ne.Msg, "does not provide attribute") || strings.Contains(ne.Msg, "attribute 'mainProgram' missing")) {
			return "", true, nil
		}
		// A probe: the caller decides what its failure means.
		return "", false, err
	}
	return string(out), false, nil
}
