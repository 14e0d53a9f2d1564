// Package bbbundle writes the benchmarks' OCI bundle: a static busybox and
// `runc spec`'s config.json with the given command and no terminal.
package bbbundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Write makes dir a bundle running args (applets of busybox under /bin).
// busybox "" means the one on PATH.
func Write(dir, busybox string, args ...string) error {
	if busybox == "" {
		p, err := exec.LookPath("busybox")
		if err != nil {
			return errors.New("busybox not found (Debian: busybox-static)")
		}
		busybox = p
	}
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, "rootfs", d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "rootfs", "bin", "busybox"), data, 0o755); err != nil {
		return err
	}
	for _, applet := range []string{"true", "sh", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "rootfs", "bin", applet)); err != nil {
			return err
		}
	}
	spec := exec.Command("runc", "spec")
	spec.Dir = dir
	if b, err := spec.CombinedOutput(); err != nil {
		return fmt.Errorf("runc spec: %v: %s", err, b)
	}
	cfgPath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	proc, ok := cfg["process"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: no process", cfgPath)
	}
	proc["terminal"] = false
	proc["args"] = args
	if b, err = json.MarshalIndent(cfg, "", "\t"); err != nil {
		return err
	}
	return os.WriteFile(cfgPath, b, 0o644)
}
