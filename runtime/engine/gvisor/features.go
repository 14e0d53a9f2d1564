package gvisor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/cachedir"
)

// runscFeatures is what nucleus needs to know about a runsc binary before
// handing it a config that uses seccomp: its version and global flags.
type runscFeatures struct {
	Version string
	Flags   []string
}

// runscInfo asks runsc for its version and flags (`runsc --version`,
// `runsc flags`), cached in nucleus's cache dir per binary (path, size, mtime)
// so a start pays a stat and a small read, not two runsc runs.
func (r *Engine) runscInfo(runsc string) (*runscFeatures, error) {
	st, err := os.Stat(runsc)
	if err != nil {
		return nil, fmt.Errorf("gvisor engine: runsc %s: %w", runsc, err)
	}
	key := fmt.Sprintf("%s %d %d", runsc, st.Size(), st.ModTime().UnixNano())
	dir, err := cachedir.Sub("")
	if err != nil {
		return nil, fmt.Errorf("gvisor engine: %w", err)
	}
	cache := filepath.Join(dir, "runsc-features.cache")
	if data, err := os.ReadFile(cache); err == nil {
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) >= 2 && lines[0] == key {
			return &runscFeatures{Version: lines[1], Flags: lines[2:]}, nil
		}
	}
	f := &runscFeatures{}
	out, _ := exec.Command(runsc, "--version").CombinedOutput()
	f.Version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	out, _ = exec.Command(runsc, "flags").CombinedOutput()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "-"); ok {
			if fl := strings.Fields(name); len(fl) > 0 {
				f.Flags = append(f.Flags, fl[0])
			}
		}
	}
	if len(f.Flags) == 0 {
		return nil, fmt.Errorf("gvisor engine: %s flags: no flag list (is it runsc?)", runsc)
	}
	{
		tmp := cache + "." + strconv.Itoa(os.Getpid())
		data := key + "\n" + strings.ReplaceAll(f.Version, "\n", " ") + "\n" + strings.Join(f.Flags, "\n") + "\n"
		if os.WriteFile(tmp, []byte(data), 0o600) == nil {
			if os.Rename(tmp, cache) != nil {
				os.Remove(tmp)
			}
		}
	}
	return f, nil
}

// oldRunscSeccompActions are the only seccomp actions runsc releases up to
// 20221219 (Debian 12's) can build a filter from; anything else
// (KILL_PROCESS, KILL_THREAD, LOG, NOTIFY) makes the sandbox fail to start.
var oldRunscSeccompActions = map[specs.LinuxSeccompAction]bool{
	specs.ActAllow: true, specs.ActErrno: true, specs.ActKill: true, specs.ActTrap: true, specs.ActTrace: true,
}

var runscDate = regexp.MustCompile(`(20[0-9]{6})`)

// checkRunscSeccomp refuses a config whose seccomp profile this runsc
// cannot enforce, before anything is created: runsc ignores linux.seccomp
// without --oci-seccomp, and an old runsc rejects newer actions only after
// it has set up a sandbox.
func (r *Engine) checkRunscSeccomp(runsc string, sc *specs.LinuxSeccomp) error {
	f, err := r.runscInfo(runsc)
	if err != nil {
		return err
	}
	if !slices.Contains(f.Flags, "oci-seccomp") {
		return fmt.Errorf("gvisor engine: runsc at %s (%s) is too old: it has no --oci-seccomp, which the config's linux.seccomp needs to be enforced inside gVisor (refusing to run without it)", runsc, f.Version)
	}
	m := runscDate.FindString(f.Version)
	if m == "" || m > "20221219" {
		return nil // newer (or unknown): runsc reports what it can't do
	}
	bad := func(field string, a specs.LinuxSeccompAction) error {
		return fmt.Errorf("gvisor engine: runsc at %s (%s) cannot enforce linux.seccomp.%s %s (it enforces only SCMP_ACT_ALLOW, ERRNO, KILL, TRAP and TRACE; refusing rather than running unfiltered): run with --mode agent (nucleus gives runsc a KILL-based plan), bundle with --mode \"\", or install a newer runsc", runsc, f.Version, field, a)
	}
	if !oldRunscSeccompActions[sc.DefaultAction] {
		return bad("defaultAction", sc.DefaultAction)
	}
	for i, rule := range sc.Syscalls {
		if !oldRunscSeccompActions[rule.Action] {
			return bad(fmt.Sprintf("syscalls[%d].action", i), rule.Action)
		}
	}
	return nil
}
