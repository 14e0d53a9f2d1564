package gvisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime/engine"
	"github.com/nucleus-run/nucleus/spec"
)

// GvisorNetwork maps the config's network namespace to runsc's --network:
// a new namespace without a path is an empty one (none: loopback only,
// gVisor's own netstack); a namespace given by path is joined and its
// interfaces served by gVisor's netstack (sandbox); no network namespace
// means the host's network, which runsc passes through (host).
func GvisorNetwork(s *specs.Spec) string {
	if s.Linux == nil {
		return "host"
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			if ns.Path == "" {
				return "none"
			}
			return "sandbox"
		}
	}
	return "host"
}

// GvisorFlags are the runsc global flags (without --root) that a bundle
// with config s needs: platform, network and, when the config has a
// seccomp profile, --oci-seccomp (runsc ignores linux.seccomp without it).
func GvisorFlags(s *specs.Spec) []string {
	platform := os.Getenv(GvisorPlatformEnv)
	if platform == "" {
		platform = defaultGvisorPlatform
	}
	flags := []string{"--platform=" + platform, "--network=" + GvisorNetwork(s)}
	if s.Linux != nil && s.Linux.Seccomp != nil {
		flags = append(flags, "--oci-seccomp")
	}
	return flags
}

// GvisorConfig returns the config.json runsc gets for bundle's config s:
// the same config with root.path "rootfs" (the caller puts the rootfs, or
// a symlink to it, there) and relative bind sources made absolute against
// the original bundle. rootfs is the absolute original rootfs.
func GvisorConfig(bundle string, s *specs.Spec) (data []byte, rootfs string, err error) {
	if s.Root == nil || s.Root.Path == "" {
		return nil, "", fmt.Errorf("%s: root.path: missing", filepath.Join(bundle, spec.ConfigName))
	}
	c := *s
	root := *s.Root
	rootfs = root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	root.Path = "rootfs"
	c.Root = &root
	c.Mounts = make([]specs.Mount, len(s.Mounts))
	for i, m := range s.Mounts {
		if m.Source != "" && !filepath.IsAbs(m.Source) && engine.IsBindMount(m) {
			m.Source = filepath.Join(bundle, m.Source)
		}
		c.Mounts[i] = m
	}
	data, err = json.MarshalIndent(&c, "", "\t")
	return data, rootfs, err
}

// writeGvisorBundle reserves R/ID (mkdir: the same reservation the native
// engine makes, so ids are unique across engines) and writes the bundle
// runsc gets. The record goes last: a directory without it is a crashed
// create that `delete` removes.
func (r *Engine) writeGvisorBundle(rec *gvisorRecord, config []byte) error {
	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return opterr.Errorf("root", "%s: %w", r.Root, err)
	}
	if err := os.Mkdir(rec.dir, 0o711); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("container %s %w under %s", rec.id, engine.ErrExist, r.Root)
		}
		return fmt.Errorf("create container %s: %w", rec.id, err)
	}
	data, err := json.Marshal(rec)
	if err == nil {
		err = os.WriteFile(filepath.Join(rec.dir, spec.ConfigName), config, 0o600)
	}
	if err == nil {
		err = os.Symlink(rec.Rootfs, filepath.Join(rec.dir, "rootfs"))
	}
	if err == nil {
		err = os.MkdirAll(r.runscRootDir(), 0o711)
	}
	if err == nil {
		// Whole or not at all: a listing never sees half a record.
		tmp := filepath.Join(rec.dir, "."+recordName)
		if err = os.WriteFile(tmp, data, 0o600); err == nil {
			err = os.Rename(tmp, filepath.Join(rec.dir, recordName))
		}
	}
	if err != nil {
		os.RemoveAll(rec.dir)
		return fmt.Errorf("create container %s: %w", rec.id, err)
	}
	return nil
}

// ExportOptions describe `nucleus export`.
type ExportOptions struct {
	// Bundle is the source bundle, Spec its loaded config.
	Bundle string
	Spec   *specs.Spec
	// Dir receives config.json, rootfs and runsc.flags; it must not exist
	// or be empty.
	Dir string
	// Copy copies the rootfs (cp -a) instead of symlinking it.
	Copy bool
}

// Export writes the bundle the gVisor engine hands to runsc: the same
// config.json byte for byte, a rootfs (symlink to the source rootfs, or a
// copy), and runsc.flags, the global flags nucleus would pass (one a
// line; add --root). It returns those flags.
func Export(o ExportOptions) ([]string, error) {
	if o.Spec == nil {
		return nil, errors.New("export: no config given")
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	config, rootfs, err := GvisorConfig(bundle, o.Spec)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("export: %s is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	flags := GvisorFlags(o.Spec)
	if err := os.WriteFile(filepath.Join(dir, spec.ConfigName), config, 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runsc.flags"), []byte(strings.Join(flags, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	dst := filepath.Join(dir, "rootfs")
	if o.Copy {
		if out, err := exec.Command("cp", "-a", "--reflink=auto", rootfs, dst).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("export: copy %s: %v: %s", rootfs, err, bytes.TrimSpace(out))
		}
	} else if err := os.Symlink(rootfs, dst); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return flags, nil
}
