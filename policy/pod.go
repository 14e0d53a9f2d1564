package policy

import (
	"fmt"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// NetPod is Options.Net for a Kubernetes pod's container or sandbox: it
// joins the pod's network namespace, and the pod's IPC and UTS namespaces,
// that the CRI's config names by path, instead of getting its own; it
// keeps the mode's user namespace, seccomp allowlist, Landlock rules and
// empty capability sets. Egress is then the pod network's to police
// (NetworkPolicy), not the mode's.
const NetPod = "pod"

// criContainerType is the annotation containerd's CRI puts on the config
// of every pod sandbox ("sandbox") and container ("container").
const criContainerType = "io.kubernetes.cri.container-type"

// CRIPod says whether s is the config containerd's CRI made for a pod's
// sandbox or container.
func CRIPod(s *specs.Spec) bool {
	_, ok := s.Annotations[criContainerType]
	return ok
}

// podShared are the namespaces a pod's containers share (CRI's
// NamespaceOption: network, IPC, and UTS with the network).
var podShared = []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace}

// nsProcName is the /proc/self/ns entry of each shared namespace type.
var nsProcName = map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts"}

// podNamespaces returns the pod's namespaces s joins by path, by type. A
// path to one of the host's own namespaces (the caller's, which a
// hostNetwork or hostIPC pod leaves out of the config rather than names)
// is refused: a mode never joins the host's.
func podNamespaces(s *specs.Spec, mode Mode) (map[specs.LinuxNamespaceType]string, error) {
	joined := map[specs.LinuxNamespaceType]string{}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path == "" || !slices.Contains(podShared, ns.Type) {
			continue
		}
		var pod, host unix.Stat_t
		if err := unix.Stat(ns.Path, &pod); err != nil {
			return nil, fmt.Errorf("config: linux.namespaces: %s path %s: %w", ns.Type, ns.Path, err)
		}
		if err := unix.Stat("/proc/self/ns/"+nsProcName[ns.Type], &host); err != nil {
			return nil, fmt.Errorf("config: linux.namespaces: %s: %w", ns.Type, err)
		}
		if pod.Dev == host.Dev && pod.Ino == host.Ino {
			return nil, fmt.Errorf("config: linux.namespaces: %s path %s is the host's %s namespace: %s mode never joins it", ns.Type, ns.Path, ns.Type, mode)
		}
		joined[ns.Type] = ns.Path
	}
	return joined, nil
}

// podUserNS makes s, which joins the pod's namespaces in joined from a
// user namespace of its own, mountable there: the kernel lets a user
// namespace mount sysfs only for a network namespace it owns, and mqueue
// only for an IPC namespace it owns, and the pod's belong to the host's
// (the network) or to the sandbox's user namespace (IPC). So /sys is the
// host's sysfs, recursively read-only, with the same masked paths and the
// config's own cgroup mount on top (as podman and crun do where sysfs
// can't be mounted), and /dev/mqueue goes (POSIX message queues still work:
// the mount only lists them). Sysctls of a joined namespace can't be
// written from inside either: the network's move to plan.PodNetSysctls,
// for the runtime to write from the host; a joined IPC namespace's are
// refused (only a pod's sandbox sets them, in the IPC namespace it owns).
func podUserNS(s *specs.Spec, joined map[specs.LinuxNamespaceType]string, plan *Plan) (string, error) {
	for k, v := range s.Linux.Sysctl {
		_, net := joined[specs.NetworkNamespace]
		_, ipc := joined[specs.IPCNamespace]
		switch {
		case net && strings.HasPrefix(k, "net."):
			if strings.Contains(k, "..") || strings.HasSuffix(k, ".") {
				return "", fmt.Errorf("config: linux.sysctl: %q is not a sysctl name", k)
			}
			if plan.PodNetSysctls == nil {
				plan.PodNetSysctls = map[string]string{}
			}
			plan.PodNetSysctls[k] = v
			delete(s.Linux.Sysctl, k)
		case ipc && (strings.HasPrefix(k, "kernel.shm") || strings.HasPrefix(k, "kernel.msg") || k == "kernel.sem" || strings.HasPrefix(k, "fs.mqueue.")):
			return "", fmt.Errorf("config: linux.sysctl: %s: the pod's IPC namespace belongs to its sandbox's user namespace, which this container's cannot write (set it on the pod's sandbox)", k)
		}
	}
	var changed []string
	var mounts []specs.Mount
	for _, m := range s.Mounts {
		switch {
		case m.Type == "sysfs" && joined[specs.NetworkNamespace] != "":
			mounts = append(mounts, specs.Mount{Destination: m.Destination, Type: "bind", Source: "/sys",
				Options: []string{"rbind", "rro", "nosuid", "nodev", "noexec"}})
			changed = append(changed, m.Destination+": the host's sysfs, read-only")
			continue
		case m.Type == "mqueue" && joined[specs.IPCNamespace] != "":
			changed = append(changed, m.Destination+": not mounted")
			continue
		}
		mounts = append(mounts, m)
	}
	s.Mounts = mounts
	// What the host's sysfs carries beneath it that a sysfs of the pod's
	// own would not: the host's BPF pins, pstore and fuse connections
	// (/sys/kernel, /sys/firmware and the rest are masked for every mode).
	for _, p := range []string{"/sys/fs/bpf", "/sys/fs/pstore", "/sys/fs/fuse"} {
		if _, err := os.Stat(p); err == nil && !slices.Contains(s.Linux.MaskedPaths, p) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, p)
		}
	}
	return strings.Join(changed, "; "), nil
}
