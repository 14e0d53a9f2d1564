package native

import (
	"fmt"
	"os"
	goruntime "runtime"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// writePodNetSysctls writes sysctls (policy.Plan.PodNetSysctls) into the
// network namespace s joins by path, from the host: a container in a
// user namespace of its own can't write a namespace the host's owns. A
// thread of this process enters the namespace (/proc/sys/net is the
// entering thread's namespace's) and is never returned to the Go
// scheduler, so nothing else runs there.
func writePodNetSysctls(s *specs.Spec, sysctls map[string]string) error {
	var path string
	if s.Linux != nil {
		for _, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				path = ns.Path
			}
		}
	}
	if path == "" {
		return fmt.Errorf("config: linux.sysctl: the pod's network sysctls need the pod's network namespace, which the config does not name")
	}
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine.
		goruntime.LockOSThread()
		errc <- func() error {
			ns, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("pod network namespace: %w", err)
			}
			defer ns.Close()
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("pod network namespace %s: setns: %w", path, err)
			}
			for _, k := range keys {
				p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
				if err := os.WriteFile(p, []byte(sysctls[k]), 0); err != nil {
					return fmt.Errorf("config: linux.sysctl: %s in the pod's network namespace: %w", k, err)
				}
			}
			return nil
		}()
	}()
	return <-errc
}
