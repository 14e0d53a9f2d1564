package nixbundle

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/spec"
)

// StoreDir is the Nix store the closures live in (a variable only so unit
// tests can use a fake store).
var StoreDir = "/nix/store"

// Annotations written into a bundle's config.json.
const (
	AnnotationFlake  = "run.nucleus.nix.flake"
	AnnotationOutput = "run.nucleus.nix.output"
)

// Plan is everything a bundle is generated from; it is what the cache
// keeps, so a cache hit regenerates the same bytes without Nix.
type Plan struct {
	// Ref is the flake reference as given (FLAKEREF#ATTR).
	Ref string `json:"ref"`
	// FlakeURL is Nix's resolved URL of the flake, NarHash its locked
	// content hash (`nix flake metadata`).
	FlakeURL string `json:"flakeUrl"`
	NarHash  string `json:"narHash"`
	// Output is the built store path; Closure its runtime closure.
	Output  string     `json:"output"`
	Closure []PathInfo `json:"closure"`
	// Entrypoint is the absolute path of the program to run (inside the
	// closure), EntrypointFrom says where it came from.
	Entrypoint     string   `json:"entrypoint"`
	EntrypointFrom string   `json:"entrypointFrom"`
	Args           []string `json:"args,omitempty"`
	Hostname       string   `json:"hostname"`

	hasInputs bool // the flake's lock has inputs (not cached)
}

// Config returns the OCI config for a plan: runc's defaults (`nucleus
// spec`) with a read-only, otherwise empty rootfs; each closure path
// bind-mounted read-only, nosuid, nodev at its own store path; /proc, /dev
// (tmpfs, devpts, shm, mqueue), a read-only /sys and a tmpfs /tmp; pid,
// mount, network, uts, ipc and cgroup namespaces; runc's masked and
// read-only paths. Pure: the same plan always gives the same config.
func Config(p *Plan) *specs.Spec {
	s := spec.Default(false)
	s.Hostname = p.Hostname
	s.Root = &specs.Root{Path: "rootfs", Readonly: true}
	s.Process.Terminal = false
	s.Process.Cwd = "/"
	s.Process.Args = append([]string{p.Entrypoint}, p.Args...)
	s.Process.Env = []string{
		"PATH=" + strings.Join(binDirs(p), ":"),
		"HOME=/tmp",
		"TMPDIR=/tmp",
	}
	s.Mounts = append(s.Mounts, specs.Mount{
		Destination: "/tmp",
		Type:        "tmpfs",
		Source:      "tmpfs",
		Options:     []string{"nosuid", "nodev", "mode=1777", "size=65536k"},
	})
	for _, pi := range p.Closure {
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: pi.Path,
			Type:        "bind",
			Source:      pi.Path,
			Options:     []string{"bind", "ro", "nosuid", "nodev"},
		})
	}
	// Fixed, not host-dependent (runc's example adds cgroup only on
	// cgroup2 hosts): a bundle is the same wherever it is written.
	s.Linux.Namespaces = []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.NetworkNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.CgroupNamespace},
	}
	s.Annotations = map[string]string{
		AnnotationFlake:  p.Ref,
		AnnotationOutput: p.Output,
	}
	return s
}

// binDirs lists the closure's bin directories, the output's first.
func binDirs(p *Plan) []string {
	var dirs []string
	add := func(path string) {
		d := path + "/bin"
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dirs = append(dirs, d)
		}
	}
	add(p.Output)
	for _, pi := range p.Closure {
		if pi.Path != p.Output {
			add(pi.Path)
		}
	}
	if len(dirs) == 0 {
		dirs = []string{filepath.Dir(p.Entrypoint)}
	}
	return dirs
}

// Hostname turns an attribute name into a valid hostname (RFC 1123 label).
func Hostname(attr string) string {
	if i := strings.LastIndexByte(attr, '.'); i >= 0 {
		attr = attr[i+1:]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(attr) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.Trim(h[:63], "-")
	}
	if h == "" {
		h = "nucleus"
	}
	return h
}

// MakeRootfs creates dir/rootfs with only empty mount points: a directory
// (or an empty file, for a store path that is a file) for every closure
// path and for the config's other mounts.
func MakeRootfs(bundle string, s *specs.Spec) error {
	rootfs := filepath.Join(bundle, s.Root.Path)
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	for _, m := range s.Mounts {
		if nested(m.Destination, s.Mounts) {
			continue // the runtime creates it inside the parent mount
		}
		dst := filepath.Join(rootfs, m.Destination)
		isFile := false
		if m.Type == "bind" {
			st, err := os.Stat(m.Source)
			if err != nil {
				return fmt.Errorf("store path %s: %w", m.Source, err)
			}
			isFile = !st.IsDir()
		}
		if isFile {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o444)
			if err != nil {
				return err
			}
			f.Close()
			continue
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	}
	// The modes above went through the umask; a user namespace's
	// unprivileged root must still reach every mount point (a umask of
	// 077 made the bundle unrunnable with agent mode's user namespace).
	return filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o444)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
}

// nested reports whether dst lies under another mount's destination.
func nested(dst string, mounts []specs.Mount) bool {
	for _, m := range mounts {
		if m.Destination != dst && strings.HasPrefix(dst, strings.TrimSuffix(m.Destination, "/")+"/") {
			return true
		}
	}
	return false
}

// IsNixBundle reports whether the bundle at dir with config s was made by
// `nucleus bundle`: it has an attestation, its config carries the flake
// annotations, or it mounts store paths. Any one is enough, so removing
// the attestation doesn't make a Nix bundle pass for a plain one.
func IsNixBundle(dir string, s *specs.Spec) bool {
	if _, err := os.Lstat(filepath.Join(dir, AttestationName)); err == nil {
		return true
	}
	if s == nil {
		return false
	}
	if s.Annotations[AnnotationFlake] != "" || s.Annotations[AnnotationOutput] != "" {
		return true
	}
	for _, m := range s.Mounts {
		if isStorePath(m.Source) {
			return true
		}
	}
	return false
}
