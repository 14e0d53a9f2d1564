package nixbundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/nucleus-run/nucleus/isolation/host"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// AttestationName is the attestation file inside a bundle.
const AttestationName = "attestation.json"

// AttestationVersion is the format version written into attestation.json.
const AttestationVersion = 1

// Attestation records what a bundle was built from and a digest of all it
// runs: the flake (ref and locked narHash), every store path of the closure
// with its NAR hash, and the SHA-256 of config.json.
type Attestation struct {
	Version int `json:"version"`
	Flake   struct {
		Ref     string `json:"ref"`
		URL     string `json:"url"`
		NarHash string `json:"narHash"`
	} `json:"flake"`
	Output     string `json:"output"`
	Entrypoint string `json:"entrypoint"`
	Config     struct {
		File   string `json:"file"`
		SHA256 string `json:"sha256"`
	} `json:"config"`
	StorePaths []AttestedPath `json:"storePaths"`
	// Planned is the isolation mode written into config.json and the host
	// it was planned for (nil for a plain config).
	Planned *Planned `json:"planned,omitempty"`
}

// Planned records how config.json's isolation was planned: for a fixed,
// fully featured host, not the machine that happened to write it, so the
// host that runs the bundle is checked against it at start.
type Planned struct {
	Mode string     `json:"mode"`
	Host host.Facts `json:"host"`
}

// AttestedPath is one store path and its NAR hash (`sha256-<base64>`, as
// `nix path-info --json` prints it).
type AttestedPath struct {
	Path    string `json:"path"`
	NarHash string `json:"narHash"`
	NarSize int64  `json:"narSize"`
}

// NewAttestation builds the attestation for a plan and the exact bytes of
// its config.json.
func NewAttestation(p *Plan, configJSON []byte) *Attestation {
	a := &Attestation{Version: AttestationVersion, Output: p.Output, Entrypoint: p.Entrypoint}
	a.Flake.Ref = p.Ref
	a.Flake.URL = p.FlakeURL
	a.Flake.NarHash = p.NarHash
	sum := sha256.Sum256(configJSON)
	a.Config.File = "config.json"
	a.Config.SHA256 = hex.EncodeToString(sum[:])
	for _, pi := range p.Closure {
		a.StorePaths = append(a.StorePaths, AttestedPath{Path: pi.Path, NarHash: pi.NarHash, NarSize: pi.NarSize})
	}
	return a
}

// Marshal returns the attestation as indented JSON with a final newline.
func (a *Attestation) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// VerifyError is one mismatch, naming the file and the field or path.
type VerifyError struct {
	File  string
	Field string
	Msg   string
}

func (e *VerifyError) Error() string {
	if e.Field == "" {
		return "attestation check failed: " + e.File + ": " + e.Msg
	}
	return "attestation check failed: " + e.File + ": " + e.Field + ": " + e.Msg
}

// Verify recomputes a bundle's digests and compares them with its
// attestation.json: the SHA-256 of config.json; the NAR hash of every
// attested store path, computed from the filesystem (no Nix needed); that
// every store path config.json mounts is attested; and that rootfs/ holds
// nothing but empty mount points. The first mismatch is returned as a
// *VerifyError.
func Verify(dir string) (*Attestation, error) {
	a, _, err := VerifyConfig(dir)
	return a, err
}

// VerifyConfig is Verify that also returns the config.json bytes it
// verified, for the caller to load instead of reading the file again (a
// config swapped between the check and a second read would run unchecked).
func VerifyConfig(dir string) (*Attestation, []byte, error) {
	a, cdata, err := verify(dir)
	if err != nil {
		return nil, nil, err
	}
	return a, cdata, nil
}

func verify(dir string) (*Attestation, []byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	afile := filepath.Join(abs, AttestationName)
	data, err := os.ReadFile(afile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &VerifyError{File: afile, Msg: "no such file (bundles written by `nucleus bundle` have one)"}
		}
		return nil, nil, &VerifyError{File: afile, Msg: err.Error()}
	}
	var a Attestation
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, nil, &VerifyError{File: afile, Msg: "invalid JSON: " + err.Error()}
	}
	if a.Version != AttestationVersion {
		return nil, nil, &VerifyError{File: afile, Field: "version", Msg: fmt.Sprintf("unsupported version %d, want %d", a.Version, AttestationVersion)}
	}
	if a.Config.File != "config.json" {
		return nil, nil, &VerifyError{File: afile, Field: "config.file", Msg: fmt.Sprintf("%q, want \"config.json\"", a.Config.File)}
	}
	if len(a.StorePaths) == 0 {
		return nil, nil, &VerifyError{File: afile, Field: "storePaths", Msg: "empty"}
	}

	cfile := filepath.Join(abs, "config.json")
	cdata, err := os.ReadFile(cfile)
	if err != nil {
		return nil, nil, &VerifyError{File: cfile, Msg: err.Error()}
	}
	sum := sha256.Sum256(cdata)
	if got := hex.EncodeToString(sum[:]); got != a.Config.SHA256 {
		return nil, nil, &VerifyError{File: cfile, Msg: fmt.Sprintf("sha256 %s does not match %s config.sha256 %s", got, AttestationName, a.Config.SHA256)}
	}

	attested := map[string]bool{}
	for i, sp := range a.StorePaths {
		if !isStorePath(sp.Path) {
			return nil, nil, &VerifyError{File: afile, Field: fmt.Sprintf("storePaths[%d].path", i), Msg: fmt.Sprintf("%q is not a store path", sp.Path)}
		}
		attested[sp.Path] = true
	}
	var s specs.Spec
	if err := json.Unmarshal(cdata, &s); err != nil {
		return nil, nil, &VerifyError{File: cfile, Msg: "invalid JSON: " + err.Error()}
	}
	for i, m := range s.Mounts {
		if strings.HasPrefix(m.Source, StoreDir+"/") && !attested[storePathOf(m.Source)] {
			return nil, nil, &VerifyError{File: cfile, Field: fmt.Sprintf("mounts[%d].source", i), Msg: fmt.Sprintf("%s is not in %s", m.Source, AttestationName)}
		}
	}
	if s.Root != nil {
		if err := checkEmptyRootfs(filepath.Join(abs, s.Root.Path)); err != nil {
			return nil, nil, err
		}
	}

	// Hash the store paths in parallel; report the first mismatch in
	// attestation order.
	errs := make([]error, len(a.StorePaths))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i := range a.StorePaths {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			sp := a.StorePaths[i]
			field := fmt.Sprintf("storePaths[%d]", i)
			got, err := NARHash(sp.Path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				errs[i] = &VerifyError{File: sp.Path, Msg: fmt.Sprintf("store path missing (garbage-collected?), listed in %s %s", AttestationName, field)}
			case err != nil:
				errs[i] = &VerifyError{File: sp.Path, Msg: err.Error()}
			case !sameHash(got, sp.NarHash):
				errs[i] = &VerifyError{File: sp.Path, Msg: fmt.Sprintf("NAR hash %s does not match %s %s.narHash %s", got, AttestationName, field, sp.NarHash)}
			}
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	return &a, cdata, nil
}

// sameHash compares NAR hashes; only the SRI form (sha256-<base64>) that
// Nix 2.8's path-info prints is accepted.
func sameHash(got, want string) bool { return got == want }

func isStorePath(p string) bool {
	rest, ok := strings.CutPrefix(p, StoreDir+"/")
	return ok && rest != "" && !strings.Contains(rest, "/") && rest != "." && rest != ".."
}

func storePathOf(p string) string {
	rest := strings.TrimPrefix(p, StoreDir+"/")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return StoreDir + "/" + rest
}

// checkEmptyRootfs fails on anything in rootfs but directories and empty
// regular files (mount points).
func checkEmptyRootfs(rootfs string) error {
	return filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return &VerifyError{File: path, Msg: err.Error()}
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return &VerifyError{File: path, Msg: err.Error()}
		}
		if !info.Mode().IsRegular() || info.Size() != 0 {
			return &VerifyError{File: path, Msg: "rootfs must hold only empty mount points, found " + describe(info)}
		}
		return nil
	})
}

func describe(info fs.FileInfo) string {
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		return "a symlink"
	case info.Mode().IsRegular():
		return fmt.Sprintf("a %d-byte file", info.Size())
	default:
		return "a " + info.Mode().Type().String() + " file"
	}
}
