// Command phases breaks a container's `run` into phases, for two runtimes
// on the same bundle, and prints the median of each phase side by side.
//
//	phases [-n 15] [-bundle DIR] [-busybox PATH] 'RUNTIME_A [global flags]' 'RUNTIME_B [global flags]'
//
// It reads the kernel's own tracepoints (tracefs, in a private trace
// instance, filtered to the runtime's process tree), so the runtime runs at
// full speed: nothing stops it, unlike strace. The marks, in order:
//
//	start            the runtime's exec
//	init exec        the container init's exec (the last exec before the
//	                 unshare of a mount namespace)
//	unshare          that unshare (the init's namespaces)
//	pivot_root       the container's root switch
//	workload exec    the last exec of the run (the bundle's process)
//	workload exit    that process's exit
//	cgroup rmdir     the first cgroup directory removed after it
//	end              the runtime's exit
//
// Needs root, tracefs (mounted for the run if it is not) and a kernel with
// the sched, syscalls and cgroup trace events.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/nucleus-run/nucleus/bench/internal/bbbundle"
)

// phaseNames label the intervals between consecutive marks.
var phaseNames = []string{
	"CLI start, config load, prepare (to the init's exec)",
	"init's nsexec: user namespace, clone (to unshare)",
	"init's Go boot, cgroups, mounts (to pivot_root)",
	"finalize: caps, seccomp, pre-exec (to workload exec)",
	"workload (exec to exit)",
	"wait (workload exit to first cgroup rmdir)",
	"teardown (to the CLI's exit)",
}

const tracefs = "/sys/kernel/tracing"

var events = []string{
	"sched/sched_process_exec",
	"sched/sched_process_exit",
	"syscalls/sys_enter_unshare",
	"syscalls/sys_enter_pivot_root",
	"cgroup/cgroup_rmdir",
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("phases", flag.ContinueOnError)
	n := fs.Int("n", 15, "runs of each runtime")
	bundle := fs.String("bundle", "", "bundle to run (default: one built from -busybox running /bin/true)")
	busybox := fs.String("busybox", "", "static busybox for the built bundle (default: busybox from PATH)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 || *n < 1 {
		fmt.Fprintln(os.Stderr, "phases: want -n >= 1 and two runtimes, e.g. phases bin/nucleus runc")
		return 2
	}
	if err := runPhases(*n, *bundle, *busybox, fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "phases:", err)
		return 1
	}
	return 0
}

func runPhases(n int, bundle, busybox string, words []string) error {
	tmp, err := os.MkdirTemp("", "nucleus-phases-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bundle == "" {
		bundle = filepath.Join(tmp, "bundle")
		if err := bbbundle.Write(bundle, busybox, "/bin/true"); err != nil {
			return err
		}
	}
	tr, err := openTrace()
	if err != nil {
		return err
	}
	defer tr.close()
	var sides [2]*side
	for i, word := range words {
		if sides[i], err = newSide(word, filepath.Join(tmp, fmt.Sprintf("root%d", i))); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		// ABBA order: neither side always runs on a warmer machine.
		order := []*side{sides[0], sides[1]}
		if i%2 == 1 {
			order = []*side{sides[1], sides[0]}
		}
		for _, s := range order {
			id := fmt.Sprintf("ph-%d-%d", os.Getpid(), s.seq)
			s.seq++
			d, err := s.measure(tr, bundle, id)
			if err != nil {
				return fmt.Errorf("%s: %w", s.word, err)
			}
			s.runs = append(s.runs, d)
		}
	}
	fmt.Printf("%-58s %11s %11s %7s\n", fmt.Sprintf("phase (median ms of %d runs)", n), label(sides[0].word), label(sides[1].word), "A/B")
	var totA, totB float64
	for p, name := range phaseNames {
		a, b := sides[0].median(p), sides[1].median(p)
		totA += a
		totB += b
		fmt.Printf("%-58s %11.2f %11.2f %7.2f\n", name, a, b, ratio(a, b))
	}
	fmt.Printf("%-58s %11.2f %11.2f %7.2f\n", "sum of the medians", totA, totB, ratio(totA, totB))
	return nil
}

func label(word string) string {
	f := strings.Fields(word)
	name := filepath.Base(f[0])
	if len(f) > 1 {
		name += "+flags"
	}
	return name
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// trace is a private tracefs instance with the phase events enabled.
type trace struct {
	dir     string
	mounted bool
}

func openTrace() (*trace, error) {
	t := &trace{}
	if _, err := os.Stat(filepath.Join(tracefs, "instances")); err != nil {
		if err := syscall.Mount("nodev", tracefs, "tracefs", 0, ""); err != nil {
			return nil, fmt.Errorf("mount tracefs at %s: %w", tracefs, err)
		}
		t.mounted = true
	}
	t.dir = filepath.Join(tracefs, "instances", fmt.Sprintf("nucleus-phases-%d", os.Getpid()))
	if err := os.Mkdir(t.dir, 0o700); err != nil {
		t.close()
		return nil, fmt.Errorf("trace instance: %w", err)
	}
	for _, s := range [][2]string{{"tracing_on", "0"}, {"trace_clock", "mono"}, {"options/event-fork", "1"}, {"buffer_size_kb", "4096"}} {
		if err := t.write(s[0], s[1]); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

func (t *trace) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(t.dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("tracefs %s: %w", file, err)
	}
	return nil
}

func (t *trace) events(on string) error {
	for _, e := range events {
		if err := t.write("events/"+e+"/enable", on); err != nil {
			return err
		}
	}
	return nil
}

func (t *trace) close() {
	if t.dir != "" {
		t.write("tracing_on", "0")
		os.Remove(t.dir)
	}
	if t.mounted {
		syscall.Unmount(tracefs, 0)
	}
}

type side struct {
	word string
	argv []string
	root string
	seq  int
	runs [][]float64 // per run, the phase durations in ms
}

func newSide(word, root string) (*side, error) {
	argv := strings.Fields(word)
	if len(argv) == 0 {
		return nil, errors.New("empty runtime")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, err
	}
	if argv[0], err = filepath.Abs(path); err != nil {
		return nil, err
	}
	return &side{word: word, argv: argv, root: root}, nil
}

func (s *side) median(phase int) float64 {
	var xs []float64
	for _, r := range s.runs {
		xs = append(xs, r[phase])
	}
	sort.Float64s(xs)
	m := len(xs) / 2
	if len(xs)%2 == 0 {
		return (xs[m-1] + xs[m]) / 2
	}
	return xs[m]
}

// measure runs one container with the trace following its process tree
// and returns its phase durations.
func (s *side) measure(t *trace, bundle, id string) ([]float64, error) {
	args := append(append([]string{}, s.argv[1:]...), "--root", s.root, "run", "--bundle", bundle, id)
	// A shell that waits on stdin before it execs the runtime: its pid goes
	// into the trace's filter first, so the trace sees the runtime from its
	// first instruction and follows every child (event-fork).
	cmd := exec.Command("/bin/sh", append([]string{"-c", `read _ && exec "$0" "$@"`, s.argv[0]}, args...)...)
	gate, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := t.write("trace", ""); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	// The pid filter holds for events enabled after it is set.
	ok := t.write("set_event_pid", strconv.Itoa(pid)) == nil && t.events("1") == nil && t.write("tracing_on", "1") == nil
	if ok {
		io.WriteString(gate, "go\n")
	}
	gate.Close()
	err = cmd.Wait()
	t.write("tracing_on", "0")
	t.events("0")
	if !ok || err != nil {
		exec.Command(s.argv[0], append(append([]string{}, s.argv[1:]...), "--root", s.root, "delete", "--force", id)...).Run()
		return nil, fmt.Errorf("run %s: %v: %s", id, err, strings.TrimSpace(stderr.String()))
	}
	f, err := os.Open(filepath.Join(t.dir, "trace"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return phasesOf(f, pid)
}

// event is one line of the trace.
type event struct {
	pid  int
	t    float64
	name string
	info string
}

// Syscall events print as "sys_unshare(unshare_flags: 0x...)", the others
// as "name: fields".
var lineRE = regexp.MustCompile(`^\s*(.*)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+):\s+(\w+)[:(]\s*(.*)$`)

// phasesOf reads a trace and returns the durations between its marks.
func phasesOf(r io.Reader, cli int) ([]float64, error) {
	var evs []event
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[2])
		t, _ := strconv.ParseFloat(m[3], 64)
		evs = append(evs, event{pid: pid, t: t, name: m[4], info: m[5]})
	}
	const (
		start = iota
		initExec
		unshare
		pivot
		wlExec
		wlExit
		rmdir
		end
		nMarks
	)
	var mark [nMarks]float64
	var lastExec float64
	wlPid := 0
	for _, e := range evs {
		switch e.name {
		case "sched_process_exec":
			if e.pid == cli && mark[start] == 0 {
				mark[start] = e.t
				continue
			}
			lastExec = e.t
			if mark[pivot] != 0 {
				mark[wlExec], wlPid = e.t, e.pid
			}
		case "sys_unshare":
			// CLONE_NEWNS: the container's namespaces, not a user
			// namespace made on its own beforehand.
			if flags, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(e.info, "unshare_flags: 0x"), ")"), 16, 64); err == nil && flags&syscall.CLONE_NEWNS != 0 && mark[unshare] == 0 {
				mark[unshare], mark[initExec] = e.t, lastExec
			}
		case "sys_pivot_root":
			if mark[pivot] == 0 {
				mark[pivot] = e.t
			}
		case "sched_process_exit":
			if wlPid != 0 && e.pid == wlPid && mark[wlExit] == 0 {
				mark[wlExit] = e.t
			}
			if e.pid == cli {
				mark[end] = e.t
			}
		case "cgroup_rmdir":
			if mark[wlExit] != 0 && mark[rmdir] == 0 {
				mark[rmdir] = e.t
			}
		}
	}
	for i, v := range mark {
		if v == 0 {
			return nil, fmt.Errorf("the trace has no mark %d of %d (events lost, or the runtime works another way)", i, nMarks)
		}
	}
	d := make([]float64, nMarks-1)
	for i := range d {
		d[i] = (mark[i+1] - mark[i]) * 1000
	}
	return d, nil
}
