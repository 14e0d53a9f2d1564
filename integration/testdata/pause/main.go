// Command pause is the tests' pod sandbox image (no registry): it holds the
// pod's namespaces, reaps what is re-parented to it, and exits 0 on SIGINT
// or SIGTERM, as Kubernetes' pause does. Integration tests build it
// statically.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			var ws syscall.WaitStatus
			if pid, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 {
				break
			}
		}
	}
}
