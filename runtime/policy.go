package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/exeseal"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/sirupsen/logrus"

	"github.com/nucleus-run/nucleus/policy"
)

// HostFacts measures what this host can enforce, for policy.Apply.
func HostFacts() (landlockABI int, seccompOK, userNS bool) {
	landlockABI = policy.LandlockABI()
	seccompOK = seccomp.Enabled
	if _, err := os.Stat("/proc/self/ns/user"); err == nil {
		data, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		userNS = err == nil && n > 0
	}
	return landlockABI, seccompOK, userNS
}

// runWithPolicy starts a container under an isolation mode: the workload
// runs behind the Landlock pre-exec step, mounts are read back and checked
// before the workload runs, and each step goes to the audit log.
func (r *Runtime) runWithPolicy(p *processRunner, o CreateOptions, act action) (int, error) {
	c := p.container
	plan, audit := o.Policy, o.Audit
	started := time.Now()
	var sealed *os.File
	p.beforeStart = func(process *libcontainer.Process) error {
		audit.Event("container_created", map[string]any{"bundle": o.Bundle, "mode": plan.Mode})
		for _, st := range plan.Steps {
			if st.Name == "landlock_applied" && st.Applied {
				continue // the pre-exec step logs its own outcome
			}
			fields := map[string]any{"applied": st.Applied, "detail": st.Detail}
			if st.Name == "seccomp_applied" {
				fields["syscalls"] = plan.SeccompSyscalls
			}
			audit.Event(st.Name, fields)
		}
		if plan.Landlock == nil {
			return nil
		}
		// The pre-exec step is this very binary, as a sealed read-only
		// copy the container cannot write to or reach by path.
		self, err := exeseal.CloneSelfExe(r.stateDir(o.ID))
		if err != nil {
			return fmt.Errorf("seal nucleus binary for the Landlock step: %w", err)
		}
		sealed = self
		process.ExtraFiles = append(process.ExtraFiles, self)
		selfFd := 2 + len(process.ExtraFiles)
		auditFd := -1
		if f := audit.File(); f != nil {
			process.ExtraFiles = append(process.ExtraFiles, f)
			auditFd = 2 + len(process.ExtraFiles)
		}
		lp := *plan.Landlock
		lp.ContainerID, lp.Posture = o.ID, plan.Posture()
		planJSON, err := json.Marshal(lp)
		if err != nil {
			return err
		}
		process.Args = append([]string{"/proc/self/fd/" + strconv.Itoa(selfFd), policy.PreExecCommand,
			string(planJSON), strconv.Itoa(selfFd), strconv.Itoa(auditFd), "--"}, process.Args...)
		return nil
	}
	p.afterStart = func(process *libcontainer.Process) {
		if sealed != nil {
			sealed.Close()
		}
	}
	start := func(process *libcontainer.Process) error {
		if err := c.Start(process); err != nil {
			return err
		}
		pid, err := process.Pid()
		if err != nil {
			return err
		}
		if err := auditMounts(pid, o, audit); err != nil {
			if plan.Mode.Strict() {
				return err
			}
			logrus.Warn(err)
		}
		if act == actCreate {
			return nil
		}
		audit.Event("container_started", nil)
		return c.Exec()
	}
	status, err := p.run(o.Spec.Process, start)
	if err != nil {
		audit.Event("container_failed", map[string]any{"error": err.Error()})
		return status, err
	}
	if act == actRun && !o.Detach {
		audit.Event("container_exited", map[string]any{"status": status, "duration_ms": time.Since(started).Milliseconds()})
	}
	return status, nil
}

// auditMounts reads the container's mounts back from the kernel and checks
// the flags the mode promises: a read-only root and a nosuid,nodev(,noexec)
// workspace. It runs while the process waits to exec the workload.
func auditMounts(pid int, o CreateOptions, audit *policy.Audit) error {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return fmt.Errorf("mount audit: %w", err)
	}
	mounts := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		mounts[f[4]] = strings.Split(f[5], ",")
	}
	var problems []string
	want := func(mp string, flags ...string) {
		opts, ok := mounts[mp]
		if !ok {
			problems = append(problems, mp+": not mounted")
			return
		}
		for _, fl := range flags {
			if !contains(opts, fl) {
				problems = append(problems, fmt.Sprintf("%s: missing %s (has %s)", mp, fl, strings.Join(opts, ",")))
			}
		}
	}
	if o.Spec.Root != nil && o.Spec.Root.Readonly {
		want("/", "ro")
	}
	for _, m := range o.Spec.Mounts {
		if m.Type != "bind" || !contains(m.Options, "nosuid") {
			continue
		}
		flags := []string{"nosuid", "nodev"}
		if contains(m.Options, "noexec") {
			flags = append(flags, "noexec")
		}
		if contains(m.Options, "ro") {
			flags = append(flags, "ro")
		}
		want(m.Destination, flags...)
	}
	audit.Event("mount_audit", map[string]any{"passed": len(problems) == 0, "mounts": len(mounts), "problems": problems})
	if len(problems) > 0 {
		return fmt.Errorf("mount audit failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
