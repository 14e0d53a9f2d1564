package nixbundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
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
}

// nixError turns a failed Nix invocation into one line: Nix's own "error:"
// message with its continuation lines folded in.
func nixError(args []string, err error, stderr []byte) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("nix %s: %v", args[0], err)
	}
	msg := ErrorLine(stderr)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	return &NixError{Cmd: "nix " + strings.Join(args[:min(2, len(args))], " "), Msg: msg}
}

// NixError is a failed Nix command with Nix's own message.
type NixError struct {
	Cmd string
	Msg string
}

func (e *NixError) Error() string { return e.Cmd + ": " + e.Msg }

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

// Metadata runs `nix flake metadata --json REF`.
func (n *Nix) Metadata(ctx context.Context, ref string) (*FlakeMetadata, error) {
	out, err := n.run(ctx, "flake", "metadata", "--json", "--no-write-lock-file", ref)
	if err != nil {
		return nil, err
	}
	return ParseFlakeMetadata(out)
}

// Build runs `nix build --json --no-link INSTALLABLE` and returns the out path.
func (n *Nix) Build(ctx context.Context, installable string) (string, error) {
	out, err := n.run(ctx, "build", "--json", "--no-link", "--no-write-lock-file", installable)
	if err != nil {
		return "", err
	}
	return ParseBuildJSON(out)
}

// Closure runs `nix path-info -r --json PATH`.
func (n *Nix) Closure(ctx context.Context, path string) ([]PathInfo, error) {
	out, err := n.run(ctx, "path-info", "-r", "--json", path)
	if err != nil {
		return nil, err
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
		return "", false, err
	}
	return string(out), false, nil
}
