package main

import (
	"math"
	"strings"
	"testing"
)

// A trace as tracefs prints it (trimmed from a real nucleus run); the
// marks fall where the phase table says.
const sample = `# tracer: nop
         nucleus-100   [001] ..... 10.000000: sched_process_exec: filename=/usr/bin/nucleus pid=100 old_pid=100
         nucleus-130   [001] ..... 10.010000: sched_process_exec: filename=/proc/self/exe pid=130 old_pid=130
         nucleus-130   [001] ..... 10.011000: sys_unshare(unshare_flags: 0x10000000)
         nucleus-130   [001] ..... 10.012000: sched_process_exit: comm=nucleus pid=130 prio=120 group_dead=true
 runc:[0:PARENT]-131   [001] ..... 10.020000: sched_process_exec: filename=/proc/self/fd/6 pid=131 old_pid=131
  runc:[1:CHILD]-132   [001] ..... 10.025000: sys_unshare(unshare_flags: 0x6c020000)
         busybox-133   [001] ..... 10.040000: sys_pivot_root(new_root: 0xcd1f633d0e0, put_old: 0xcd1f633d0e2)
         busybox-133   [001] ..... 10.042000: sched_process_exec: filename=/proc/self/fd/3 pid=133 old_pid=133
         busybox-133   [001] ..... 10.045000: sched_process_exec: filename=/busybox pid=133 old_pid=133
         busybox-133   [001] ..... 10.046000: sched_process_exit: comm=busybox pid=133 prio=120 group_dead=true
         nucleus-122   [001] d..1. 10.050000: cgroup_rmdir: root=3 id=270310 level=1 path=/x
         nucleus-100   [001] ..... 10.060000: sched_process_exit: comm=nucleus pid=100 prio=120 group_dead=true
`

func TestPhasesOf(t *testing.T) {
	d, err := phasesOf(strings.NewReader(sample), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{20, 5, 15, 5, 1, 4, 10}
	if len(d) != len(want) || len(d) != len(phaseNames) {
		t.Fatalf("phases %v, want %v", d, want)
	}
	for i := range want {
		if math.Abs(d[i]-want[i]) > 1e-6 {
			t.Errorf("%s: %.3f ms, want %.3f", phaseNames[i], d[i], want[i])
		}
	}
}

func TestPhasesOfMissingMark(t *testing.T) {
	if _, err := phasesOf(strings.NewReader("# empty\n"), 100); err == nil {
		t.Error("an empty trace gave phases")
	}
}
