package outcome

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

const (
	// killWait is how long the kernel log is watched for the record of a
	// seccomp kill that is not there yet: the kernel's audit thread
	// prints it after the kill, and nucleus may have reaped the process
	// first.
	killWait = 500 * time.Millisecond
	// denialWait is the same for a Landlock denial, which comes before
	// the exit it explains: only a loaded host delays it.
	denialWait = 100 * time.Millisecond
	// clockSlack widens the run's time window: audit timestamps come from
	// the kernel's coarse clock, up to a tick behind.
	clockSlack = 100 * time.Millisecond
)

// inWindow says whether r was made while the run lasted.
func (f Facts) inWindow(r AuditRecord) bool {
	if !f.Started.IsZero() && r.Time.Before(f.Started.Add(-clockSlack)) {
		return false
	}
	return f.Ended.IsZero() || !r.Time.After(f.Ended.Add(time.Second))
}

// ownUID says whether host uid id is one of the container's.
func (f Facts) ownUID(id int64) bool {
	if id < 0 {
		return false
	}
	for _, r := range f.HostUIDs {
		if r.contains(uint64(id)) {
			return true
		}
	}
	return false
}

// seccompKill finds the kernel's record of the kill (with
// kernel.seccomp.actions_logged holding kill_process, the default, and no
// audit daemon, the kernel prints it): the one for the container's init
// if there is one, else the last one of the container's host uids after
// its init started (a child of the init; the init reports the child's
// 128+SIGSYS as its own status). It returns the syscall's number and
// name, or -1 and why it was not found.
func (f Facts) seccompKill(log kernelLog) (int, string, string) {
	if !f.HostKernel {
		return -1, "", "gVisor does not say which"
	}
	var found *AuditRecord
	err := log.audit([]int{auditSeccomp}, killWait, func(r AuditRecord) bool {
		if r.Int("sig") != int64(sigsys) || !f.inWindow(r) {
			return false
		}
		pid := r.Int("pid")
		if f.Pid > 0 && pid == int64(f.Pid) {
			found = &r
			return true
		}
		// Pids grow: a process of this container started after its
		// init (barring a wrap of pid_max during the run).
		if f.ownUID(r.Int("uid")) && (f.Pid <= 0 || pid > int64(f.Pid)) {
			found = &r
		}
		return false
	}, func() bool { return found != nil })
	if found == nil {
		if errors.Is(err, errNoLog) {
			return -1, "", "the kernel log that names it is not readable"
		}
		return -1, "", "the kernel's record naming it was not found in " + kmsgPath
	}
	nr := found.Int("syscall")
	if nr < 0 {
		return -1, "", "the kernel's record of it names no syscall"
	}
	return int(nr), syscallName(found.Fields["arch"], int(nr)), ""
}

// auditArches maps the audit record's arch (AUDIT_ARCH_*) to libseccomp's.
var auditArches = map[string]libseccomp.ScmpArch{
	"c000003e": libseccomp.ArchAMD64,
	"40000003": libseccomp.ArchX86,
	"c00000b7": libseccomp.ArchARM64,
	"40000028": libseccomp.ArchARM,
	"c00000f3": libseccomp.ArchRISCV64,
	"80000016": libseccomp.ArchS390X,
	"c0000015": libseccomp.ArchPPC64LE,
}

// syscallName names syscall nr of the record's arch ("#nr" if unknown).
func syscallName(arch string, nr int) string {
	a, ok := auditArches[arch]
	if !ok {
		a = libseccomp.ArchNative
	}
	if name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(a); err == nil && name != "" {
		return name
	}
	return "#" + strconv.Itoa(nr)
}

// denial is one Landlock denial record (AUDIT_LANDLOCK_ACCESS).
type denial struct{ AuditRecord }

// landlockDenial finds the last access the container's Landlock domain
// was denied: the domain is the one the container's init created (its
// AUDIT_LANDLOCK_DOMAIN record, printed with the domain's first denial,
// names the init's pid), the denials are the records naming that domain.
// The kernel logs them only with audit enabled, and for the workload (a
// program exec'd after the domain was made) only because the pre-exec
// step asks it to (LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON).
func (f Facts) landlockDenial(log kernelLog) (denial, bool) {
	if f.Pid <= 0 {
		return denial{}, false
	}
	domain := ""
	var accesses []AuditRecord
	var last *AuditRecord
	_ = log.audit([]int{auditLandlockAccess, auditLandlockDomain}, denialWait, func(r AuditRecord) bool {
		if !f.inWindow(r) {
			return false
		}
		switch r.Type {
		case auditLandlockDomain:
			if domain == "" && r.Fields["status"] == "allocated" && r.Int("pid") == int64(f.Pid) {
				domain = r.Fields["domain"]
			}
		case auditLandlockAccess:
			accesses = append(accesses, r)
		}
		return false
	}, func() bool {
		if domain == "" {
			return false
		}
		for i := range accesses {
			if accesses[i].Fields["domain"] == domain {
				last = &accesses[i]
			}
		}
		return last != nil
	})
	if last == nil {
		return denial{}, false
	}
	return denial{*last}, true
}

// describe says what was denied and what the mode allows instead, e.g.
// "exec of /tmp/bb (agent mode allows no exec beneath /tmp, /dev, ...)".
func (d denial) describe(f Facts) string {
	blockers := strings.Split(d.Fields["blockers"], ",")
	path := d.Fields["path"]
	mode := f.Mode + " mode"
	rules := f.Landlock
	has := func(b string) bool {
		for _, x := range blockers {
			if x == b {
				return true
			}
		}
		return false
	}
	// Creating or removing names the directory: the kernel records the
	// object it checked, the parent.
	in := func(what string) string {
		return fmt.Sprintf("%s in %s (%s allows writes beneath %s)", what, path, mode, joinPaths(rules.Write))
	}
	switch {
	case has("fs.execute"):
		return fmt.Sprintf("exec of %s (%s allows no exec beneath %s)", path, mode, joinPaths(rules.NoExecRoot))
	case has("fs.write_file"):
		return fmt.Sprintf("write to %s (%s allows writes beneath %s)", path, mode, joinPaths(rules.Write))
	case has("fs.truncate"):
		return fmt.Sprintf("truncating %s (%s allows writes beneath %s)", path, mode, joinPaths(rules.Write))
	case has("fs.make_reg"):
		return in("creating a file")
	case has("fs.make_dir"):
		return in("creating a directory")
	case has("fs.make_sym"):
		return in("creating a symlink")
	case has("fs.make_sock"), has("fs.make_fifo"), has("fs.make_char"), has("fs.make_block"):
		return in("creating a special file")
	case has("fs.remove_file"), has("fs.remove_dir"):
		return in("removing an entry")
	case has("fs.refer"):
		return in("linking or renaming across directories")
	case has("fs.ioctl_dev"):
		return fmt.Sprintf("device ioctl on %s (%s allows them on terminals and the standard /dev nodes)", path, mode)
	case has("fs.read_file"), has("fs.read_dir"):
		return fmt.Sprintf("read of %s (%s's Landlock rules)", path, mode)
	case has("scope.signal"):
		return fmt.Sprintf("signal to pid %s (%s) outside the sandbox (%s lets the workload signal only its own processes)", d.Fields["opid"], d.Fields["ocomm"], mode)
	case has("scope.abstract_unix_socket"):
		return fmt.Sprintf("connect to an abstract unix socket outside the sandbox (%s)", mode)
	}
	if path != "" {
		return fmt.Sprintf("%s on %s (%s's Landlock rules)", d.Fields["blockers"], path, mode)
	}
	return fmt.Sprintf("%s (%s's Landlock rules)", d.Fields["blockers"], mode)
}
