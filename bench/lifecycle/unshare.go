package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

const (
	tmpfsMagic   = 0x01021994
	cgroup2Magic = 0x63677270
	// innerEnv marks the copy of the tool started by hideUnified inside its
	// private mount namespace; its value is the mount namespace it left.
	innerEnv = "LIFECYCLE_BENCH_OUTER_MNTNS"
)

func fsType(path string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0
	}
	return int64(st.Type)
}

// isHybrid reports whether the host mounts cgroup v1 controllers under a
// tmpfs /sys/fs/cgroup with cgroup2 at /sys/fs/cgroup/unified.
func isHybrid() bool {
	return fsType("/sys/fs/cgroup") == tmpfsMagic && fsType("/sys/fs/cgroup/unified") == cgroup2Magic
}

// hideUnified implements -u. On a hybrid host, the first call re-executes the
// tool under `unshare -m --propagation private` and never returns; the copy
// that runs there unmounts /sys/fs/cgroup/unified in its own mount namespace
// (which both runtimes inherit) and returns true. The host's mounts are not
// changed. Elsewhere it returns false with a note.
func hideUnified() (bool, error) {
	outer := os.Getenv(innerEnv)
	if outer == "" {
		if !isHybrid() {
			fmt.Fprintln(os.Stderr, "lifecycle: note: -u given but /sys/fs/cgroup is not a hybrid (tmpfs + cgroup2 'unified') mount; nothing hidden")
			return false, nil
		}
		self, err := os.Executable()
		if err != nil {
			return false, err
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			return false, fmt.Errorf("-u needs unshare (util-linux): %w", err)
		}
		ns, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil {
			return false, err
		}
		argv := append([]string{unshare, "-m", "--propagation", "private", "--", self}, os.Args[1:]...)
		env := append(os.Environ(), innerEnv+"="+ns)
		return false, syscall.Exec(unshare, argv, env)
	}
	// Inside: unmount only in a mount namespace other than the one the
	// outer copy ran in.
	if ns, err := os.Readlink("/proc/self/ns/mnt"); err != nil || ns == outer {
		return false, fmt.Errorf("-u: not in a private mount namespace (%s set by hand?); refusing to unmount", innerEnv)
	}
	if fsType("/sys/fs/cgroup/unified") != cgroup2Magic {
		return true, nil // already hidden
	}
	if err := syscall.Unmount("/sys/fs/cgroup/unified", 0); err != nil {
		return false, fmt.Errorf("-u: umount /sys/fs/cgroup/unified in the private mount namespace: %w", err)
	}
	return true, nil
}
