package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/policy"
)

// ExitTimeout is the status of a sandbox whose --timeout expired, as
// timeout(1) reports it.
const ExitTimeout = 124

// SandboxOptions describe one ephemeral sandbox run.
type SandboxOptions struct {
	// ID defaults to a random sbx-… id.
	ID     string
	Bundle string
	Spec   *specs.Spec
	// Args replace the bundle's process args when given.
	Args    []string
	Policy  policy.Options
	Timeout time.Duration
	// Engine runs the sandbox: native (default) or gvisor.
	Engine Engine
	// AuditLog is a file to append audit events to; Debug mirrors them
	// on stderr.
	AuditLog string
	Debug    bool
}

// Sandbox runs one command in a fresh container start to finish: prepare
// the workspace, apply the mode, run with stdio streamed, copy a
// copy-in-out workspace back, and remove every trace, also when nucleus
// itself is interrupted. It returns the command's exit status.
func (r *Runtime) Sandbox(o SandboxOptions) (int, error) {
	// Until the container's own signal forwarding takes over, an interrupt
	// must not kill nucleus half-way through setting up.
	var interrupted atomic.Bool
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	go func() {
		for range sigs {
			interrupted.Store(true)
		}
	}()
	defer signal.Stop(sigs)

	if o.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.ID = "sbx-" + hex.EncodeToString(b[:])
	}
	s := o.Spec
	if len(o.Args) > 0 {
		s.Process.Args = o.Args
	}
	s.Process.Terminal = false
	ws := o.Policy.Workspace
	var copyDir, origDir string
	if ws != nil {
		if err := PrepareWorkspace(ws); err != nil {
			return -1, err
		}
		abs := ws.Source
		origDir = abs
		var err error
		if ws.Kind == policy.WorkspaceCopyInOut {
			copyDir, err = copyWorkspaceIn(abs)
			if err != nil {
				return -1, err
			}
			defer os.RemoveAll(copyDir)
			ws.Source = copyDir
		}
		s.Process.Cwd = ws.Dest
	}
	rootfs, err := r.PolicyRootfs(o.ID, rootfsPath(o.Bundle, s), o.Policy.Mode, o.Engine)
	if err != nil {
		return -1, err
	}
	SetHostFacts(&o.Policy, rootfs)
	o.Policy.Gvisor = o.Engine == EngineGvisor
	out, plan, err := policy.Apply(s, o.Policy)
	if err != nil {
		return -1, err
	}
	audit, err := policy.OpenAudit(o.AuditLog, o.ID, plan.Posture(), o.Debug)
	if err != nil {
		return -1, err
	}
	defer audit.Close()
	for _, w := range plan.Warnings {
		logrus.Warnf("%s mode: isolation step not applied: %s", o.Policy.Mode, w)
	}
	if interrupted.Load() {
		return -1, errors.New("interrupted before the sandbox started")
	}

	var timedOut atomic.Bool
	finished := make(chan struct{})
	if o.Timeout > 0 {
		timer := time.AfterFunc(o.Timeout, func() {
			timedOut.Store(true)
			// The container may still be starting: keep trying until it
			// is killed or the run is over.
			for {
				err := r.Kill(o.ID, unix.SIGKILL, true)
				if err == nil {
					return
				}
				logrus.Debugf("timeout kill %s: %v", o.ID, err)
				select {
				case <-finished:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
		defer timer.Stop()
	}
	status, err := r.Run(CreateOptions{
		ID: o.ID, Bundle: o.Bundle, Spec: out, Policy: plan, Audit: audit, KillOnInterrupt: true, Engine: o.Engine,
	})
	close(finished)
	if err != nil {
		return -1, err
	}
	if timedOut.Load() {
		audit.Event("sandbox_timeout", map[string]any{"timeout": o.Timeout.String()})
		status = ExitTimeout
	}
	if copyDir != "" {
		if err := syncWorkspaceBack(copyDir, origDir); err != nil {
			return status, err
		}
	}
	return status, nil
}

// PrepareWorkspace makes the workspace's host path absolute, checks it is
// a directory and records its owner for the idmapped bind.
func PrepareWorkspace(ws *policy.Workspace) error {
	abs, err := filepath.Abs(ws.Source)
	if err != nil {
		return fmt.Errorf("--workspace %s: %w", ws.Source, err)
	}
	st, err := os.Stat(abs)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("--workspace %s: not a directory", abs)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ws.OwnerUID, ws.OwnerGID = sys.Uid, sys.Gid
	}
	ws.Source = abs
	return nil
}

// copyWorkspaceIn makes the private copy a copy-in-out sandbox works on.
func copyWorkspaceIn(src string) (string, error) {
	dst, err := os.MkdirTemp("", "nucleus-workspace-")
	if err != nil {
		return "", fmt.Errorf("workspace copy: %w", err)
	}
	if out, err := exec.Command("cp", "-a", src+"/.", dst+"/").CombinedOutput(); err != nil {
		os.RemoveAll(dst)
		return "", fmt.Errorf("workspace copy of %s: %v: %s", src, err, strings.TrimSpace(string(out)))
	}
	// cp creates dst's contents; dst itself should look like src.
	if st, err := os.Stat(src); err == nil {
		_ = os.Chmod(dst, st.Mode().Perm())
	}
	return dst, nil
}

// syncWorkspaceBack makes orig match the sandbox's copy: files deleted in
// the copy are deleted, new and changed ones copied.
func syncWorkspaceBack(copyDir, orig string) error {
	var stale []string
	err := filepath.WalkDir(orig, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == orig {
			return err
		}
		rel, _ := filepath.Rel(orig, p)
		if _, err := os.Lstat(filepath.Join(copyDir, rel)); errors.Is(err, fs.ErrNotExist) {
			stale = append(stale, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("workspace copy-back to %s: %w", orig, err)
	}
	for _, p := range stale {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("workspace copy-back: %w", err)
		}
	}
	if out, err := exec.Command("cp", "-a", copyDir+"/.", orig+"/").CombinedOutput(); err != nil {
		return fmt.Errorf("workspace copy-back to %s: %v: %s", orig, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func rootfsPath(bundle string, s *specs.Spec) string {
	if s.Root == nil || filepath.IsAbs(s.Root.Path) {
		if s.Root == nil {
			return bundle
		}
		return s.Root.Path
	}
	return filepath.Join(bundle, s.Root.Path)
}
