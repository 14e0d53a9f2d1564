package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ExecDefaultsName is the file, in a supervised sandbox's state dir, that
// `nucleus exec`'s C fast path (package fastexec) reads instead of the
// sandbox's JSON record: everything the Go path would take from the record
// for a plain exec, already merged, so that the fast path starts no Go
// runtime (~15 ms on the sandbox's hot path) and parses no JSON.
const ExecDefaultsName = "exec-defaults"

// execDefaultsMagic starts the file; a change of format changes it, and
// the fast path then leaves every exec to the Go path.
const execDefaultsMagic = "NXD1"

// ExecDefaults is what a plain `nucleus exec` in the sandbox runs with.
type ExecDefaults struct {
	// UID and GID are the sandbox's user, in it; HostUID and HostGID the
	// same user on the host (owner of the command's stdio pipes).
	UID, GID, HostUID, HostGID uint32
	Cwd                        string
	// Env is the process's environment with the sandbox's --env applied.
	Env []string
	// FreezerState is the freezer.state (cgroup v1) or cgroup.freeze (v2)
	// file of the sandbox: a frozen supervisor can't answer, so the fast
	// path leaves a paused sandbox to the Go path. "" when there is none.
	FreezerState string
}

// WriteExecDefaults writes d into the sandbox's state dir (root-only,
// 0600, replaced atomically).
func WriteExecDefaults(dir string, d ExecDefaults) error {
	if !strings.HasPrefix(d.Cwd, "/") {
		return fmt.Errorf("exec defaults: working directory %q is not absolute", d.Cwd)
	}
	fields := []string{execDefaultsMagic,
		strconv.FormatUint(uint64(d.UID), 10), strconv.FormatUint(uint64(d.GID), 10),
		strconv.FormatUint(uint64(d.HostUID), 10), strconv.FormatUint(uint64(d.HostGID), 10),
		d.Cwd, d.FreezerState, strconv.Itoa(len(d.Env))}
	fields = append(fields, d.Env...)
	var b strings.Builder
	for _, f := range fields {
		if strings.IndexByte(f, 0) >= 0 {
			return errors.New("exec defaults: a field holds a NUL byte")
		}
		b.WriteString(f)
		b.WriteByte(0)
	}
	path := filepath.Join(dir, ExecDefaultsName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("exec defaults: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("exec defaults: %w", err)
	}
	return nil
}
