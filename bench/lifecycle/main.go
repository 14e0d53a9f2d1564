// Command lifecycle is Nucleus's paired start-up benchmark of two
// runc-compatible OCI runtimes on the same bundle.
//
//	lifecycle [flags] RUNTIME_A RUNTIME_B
//
// Each RUNTIME is one word: a binary (name or path) and optional global
// flags, e.g. 'bin/nucleus --default-mode agent', runc, 'runsc
// --network=none'. Each gets a private --root state dir in a temp dir,
// where the tool also builds its own bundle (static busybox rootfs, `runc
// spec`'s config with terminal=false and args /bin/true). A and B run
// alternately in ABBA order; the report gives each side's median, p10 and
// p90 wall time, the ratio of the medians, the median of the pair-by-pair
// ratios A/B (the number to trust on a noisy host), each CLI's peak RSS and
// the failures. See usage() for the flags.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const usageText = `usage: lifecycle [flags] RUNTIME_A RUNTIME_B

Paired start-up benchmark of two runc-compatible runtimes on one bundle.
RUNTIME is one word: a binary (name or path) plus optional global flags,
e.g. 'bin/nucleus --default-mode agent', runc, 'runsc --network=none'.
Run as root.

Modes (-mode):
  run   one 'RT run --bundle B ID' per measurement (default)
  cswd  'RT create --pid-file', 'RT start', wait until the process has
        exited (gone or zombie), 'RT delete': what containerd's shim does
  exec  one long-running container per runtime (sleep), then
        'RT exec ID /bin/true' per measurement

Nucleus's sandbox paths (-a-mode, for A only; B keeps -mode):
  sandbox  'nucleus sandbox --bundle B -- /bin/true' (cold, agent mode)
  pool     'nucleus sandbox --pool P -- /bin/true' from a warm pool of
           -pool-size, refilled (untimed) before each measurement
  sbexec   'nucleus exec S /bin/true' into a held sandbox S (through its
           supervisor); pair it with -mode exec

Flags:
`

type options struct {
	mode     string
	aMode    string
	poolSize int
	pairs    int
	warmup   int
	timeout  time.Duration
	json     bool
	private  bool
	hide     bool
	keep     bool
	bundle   string
	busybox  string
	runtimes [2]string
}

type usageError struct{ error }

func parseFlags(args []string) (*options, error) {
	o := &options{timeout: 60 * time.Second}
	fs := flag.NewFlagSet("lifecycle", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.mode, "mode", "run", "what one measurement is: run, cswd or exec")
	fs.StringVar(&o.aMode, "a-mode", "", "A's own measurement (nucleus only): sandbox, pool or sbexec")
	fs.IntVar(&o.poolSize, "pool-size", 2, "size of -a-mode pool's pool")
	fs.IntVar(&o.pairs, "n", 30, "measured pairs (1..1000)")
	fs.IntVar(&o.warmup, "w", 3, "warm-up runs of each runtime (0..50)")
	fs.Func("t", "per-invocation timeout: a duration (90s) or seconds (default 60)", func(s string) error {
		if n, err := strconv.Atoi(s); err == nil {
			o.timeout = time.Duration(n) * time.Second
		} else if d, err := time.ParseDuration(s); err == nil {
			o.timeout = d
		} else {
			return fmt.Errorf("not a duration: %q", s)
		}
		if o.timeout <= 0 {
			return errors.New("must be positive")
		}
		return nil
	})
	fs.BoolVar(&o.json, "json", false, "print a JSON summary instead of the table")
	fs.BoolVar(&o.private, "private", false, "put the bundle under a 0700 parent directory (default: every parent traversable, 0755)")
	fs.BoolVar(&o.hide, "u", false, "hide the hybrid host's cgroup2 /sys/fs/cgroup/unified in a private mount namespace, for both runtimes")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (state dirs, bundle, error log) and print its path")
	fs.StringVar(&o.bundle, "bundle", "", "use this existing bundle instead of building one (run and cswd modes)")
	fs.StringVar(&o.busybox, "busybox", "", "static busybox for the rootfs (default: busybox from PATH)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	switch {
	case fs.NArg() != 2:
		return nil, usageError{fmt.Errorf("want two runtimes, got %d arguments", fs.NArg())}
	case o.mode != "run" && o.mode != "cswd" && o.mode != "exec":
		return nil, usageError{fmt.Errorf("-mode %q: want run, cswd or exec", o.mode)}
	case o.aMode != "" && o.aMode != "sandbox" && o.aMode != "pool" && o.aMode != "sbexec":
		return nil, usageError{fmt.Errorf("-a-mode %q: want sandbox, pool or sbexec", o.aMode)}
	case o.aMode == "sbexec" && o.mode != "exec":
		return nil, usageError{errors.New("-a-mode sbexec compares with -mode exec")}
	case o.poolSize < 1 || o.poolSize > 64:
		return nil, usageError{errors.New("-pool-size must be 1..64")}
	case o.pairs < 1 || o.pairs > 1000:
		return nil, usageError{errors.New("-n must be 1..1000")}
	case o.warmup < 0 || o.warmup > 50:
		return nil, usageError{errors.New("-w must be 0..50")}
	case o.bundle != "" && o.mode == "exec":
		return nil, usageError{errors.New("-bundle is for -mode run and cswd (exec mode needs its own long-running bundle)")}
	case o.bundle != "" && o.private:
		return nil, usageError{errors.New("-private only applies to the bundle the tool builds, not to -bundle")}
	}
	o.runtimes = [2]string{fs.Arg(0), fs.Arg(1)}
	return o, nil
}

// runtimeUnderTest is one side of the comparison.
type runtimeUnderTest struct {
	label    string   // A or B
	word     string   // as given on the command line
	argv     []string // resolved binary, then its global flags
	root     string   // private --root state dir
	execID   string   // exec mode's long-running container
	ms       []float64
	peakRSS  int64 // KiB, max ru_maxrss over the measured invocations
	failures int
}

func newRuntime(label, word string) (*runtimeUnderTest, error) {
	argv := strings.Fields(word)
	if len(argv) == 0 {
		return nil, usageError{fmt.Errorf("runtime %s is empty", label)}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("runtime %s: %w", label, err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, err
	}
	argv[0] = path
	return &runtimeUnderTest{label: label, word: word, argv: argv}, nil
}

// args is the argument list (after the binary) for one command.
func (r *runtimeUnderTest) args(cmd ...string) []string {
	a := append([]string{}, r.argv[1:]...)
	a = append(a, "--root", r.root)
	return append(a, cmd...)
}

type bench struct {
	opt     *options
	ctx     context.Context // cancelled on SIGINT/SIGTERM/SIGHUP
	tmp     string
	bundle  string
	errPath string
	errLog  *os.File
	hidden  bool
	seq     int
	rts     [2]*runtimeUnderTest
}

var errInterrupted = errors.New("interrupted")

// invoke runs one runtime command with stdin and stdout on /dev/null and
// stderr appended to the error log; it returns the child's ru_maxrss (KiB).
func (b *bench) invoke(ctx context.Context, r *runtimeUnderTest, timeout time.Duration, cmd ...string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(ctx, r.argv[0], r.args(cmd...)...)
	c.Stderr = b.errLog // a file: the container may inherit it and outlive the CLI
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	var rss int64
	if c.ProcessState != nil {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		return rss, fmt.Errorf("%s %s: %w", r.word, cmd[0], err)
	}
	return rss, nil
}

// cycle performs and times one measurement of r in the current mode.
func (b *bench) cycle(r *runtimeUnderTest) (time.Duration, int64, error) {
	b.seq++
	mode := b.modeOf(r)
	id := fmt.Sprintf("lc-%d-%d", os.Getpid(), b.seq)
	if mode == "exec" || mode == "sbexec" {
		id = r.execID
	}
	if mode == "pool" {
		// Untimed: the previous take's detached release and refill
		// must be over, so that this one finds the pool full and idle.
		if err := b.waitPoolFull(r); err != nil {
			return 0, 0, err
		}
	}
	fmt.Fprintf(b.errLog, "--- %s %s %s\n", r.label, mode, id)
	pidFile := filepath.Join(b.tmp, id+".pid")
	var peak int64
	keep := func(rss int64, err error) error {
		peak = max(peak, rss)
		return err
	}
	t0 := time.Now()
	var err error
	switch mode {
	case "run":
		err = keep(b.invoke(b.ctx, r, b.opt.timeout, "run", "--bundle", b.bundle, id))
	case "sandbox":
		err = keep(b.invoke(b.ctx, r, b.opt.timeout, "sandbox", "--bundle", b.bundle, "--id", id, "--", "/bin/true"))
	case "pool":
		err = keep(b.invoke(b.ctx, r, b.opt.timeout, "sandbox", "--pool", poolName, "--", "/bin/true"))
	case "exec", "sbexec":
		err = keep(b.invoke(b.ctx, r, b.opt.timeout, "exec", id, "/bin/true"))
	case "cswd":
		err = keep(b.invoke(b.ctx, r, b.opt.timeout, "create", "--bundle", b.bundle, "--pid-file", pidFile, id))
		var pid int
		if err == nil {
			pid, err = readPid(pidFile)
		}
		if err == nil {
			err = keep(b.invoke(b.ctx, r, b.opt.timeout, "start", id))
		}
		if err == nil {
			err = waitExit(b.ctx, pid, b.opt.timeout)
		}
		if err == nil {
			err = keep(b.invoke(b.ctx, r, b.opt.timeout, "delete", id))
		}
	}
	dt := time.Since(t0)
	if mode == "cswd" {
		os.Remove(pidFile)
	}
	if err != nil {
		fmt.Fprintf(b.errLog, "lifecycle: %v\n", err)
		if mode != "exec" && mode != "sbexec" && mode != "pool" {
			b.invoke(context.Background(), r, 20*time.Second, "delete", "--force", id)
		}
	}
	return dt, peak, err
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: bad pid %q", path, data)
	}
	return pid, nil
}

// waitExit polls /proc/PID/stat until the process is gone or a zombie.
// The file is opened once, so a recycled pid is never mistaken for it.
func waitExit(ctx context.Context, pid int, timeout time.Duration) error {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil // already reaped
	}
	defer f.Close()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1024)
	for {
		n, _ := f.ReadAt(buf, 0)
		if n == 0 {
			return nil // reaped: reads fail with ESRCH
		}
		if st := procState(buf[:n]); st == 'Z' || st == 'X' {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container process %d still running after %s", pid, timeout)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// procState returns the state letter of a /proc/PID/stat line: the field
// after the command name, which is in parentheses and may contain any byte.
func procState(stat []byte) byte {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// poolName is -a-mode pool's pool.
const poolName = "lifecycle"

// modeOf is what one measurement of r is.
func (b *bench) modeOf(r *runtimeUnderTest) string {
	if r.label == "A" && b.opt.aMode != "" {
		return b.opt.aMode
	}
	return b.opt.mode
}

// waitPoolFull polls `pool ls` until the pool is full and no refill runs.
func (b *bench) waitPoolFull(r *runtimeUnderTest) error {
	deadline := time.Now().Add(b.opt.timeout)
	for {
		out, err := exec.CommandContext(b.ctx, r.argv[0], r.args("pool", "ls", "--json")...).Output()
		if err != nil {
			return fmt.Errorf("pool ls: %w", err)
		}
		var st struct {
			Ready   int  `json:"ready"`
			Taken   int  `json:"taken"`
			Filling bool `json:"filling"`
		}
		if json.Unmarshal(bytes.TrimSpace(out), &st) == nil && st.Ready >= b.opt.poolSize && st.Taken == 0 && !st.Filling {
			return nil
		}
		if b.ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("pool not refilled within %s: %s", b.opt.timeout, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startLongRunning creates and starts exec mode's container for r (a
// held sandbox for -a-mode sbexec), or -a-mode pool's pool.
func (b *bench) startLongRunning(r *runtimeUnderTest) error {
	r.execID = fmt.Sprintf("lc-%d-exec-%s", os.Getpid(), strings.ToLower(r.label))
	switch b.modeOf(r) {
	case "sbexec":
		_, err := b.invoke(b.ctx, r, b.opt.timeout, "sandbox", "--detach", "--id", r.execID, "--bundle", b.bundle)
		return err
	case "pool":
		if _, err := b.invoke(b.ctx, r, b.opt.timeout, "pool", "create", poolName, "--bundle", b.bundle, "--size", strconv.Itoa(b.opt.poolSize), "--no-fill"); err != nil {
			return err
		}
		_, err := b.invoke(b.ctx, r, b.opt.timeout, "pool", "fill", poolName)
		return err
	case "sandbox":
		return nil
	}
	fmt.Fprintf(b.errLog, "--- %s create+start %s\n", r.label, r.execID)
	if _, err := b.invoke(b.ctx, r, b.opt.timeout, "create", "--bundle", b.bundle, r.execID); err != nil {
		return err
	}
	_, err := b.invoke(b.ctx, r, b.opt.timeout, "start", r.execID)
	return err
}

// cleanup force-deletes every container left in either state dir and
// removes the temp dir.
func (b *bench) cleanup() {
	if b.tmp == "" {
		return
	}
	for _, r := range b.rts {
		if r == nil || r.root == "" {
			continue
		}
		if b.modeOf(r) == "pool" {
			b.invoke(context.Background(), r, 60*time.Second, "pool", "rm", poolName)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, _ := exec.CommandContext(ctx, r.argv[0], r.args("list", "-q")...).Output()
		cancel()
		for _, id := range strings.Fields(string(out)) {
			b.invoke(context.Background(), r, 20*time.Second, "delete", "--force", id)
		}
	}
	if b.errLog != nil {
		b.errLog.Close()
	}
	if b.opt.keep {
		fmt.Fprintf(os.Stderr, "lifecycle: kept %s\n", b.tmp)
		return
	}
	if err := os.RemoveAll(b.tmp); err != nil {
		fmt.Fprintf(os.Stderr, "lifecycle: warning: removing %s: %v\n", b.tmp, err)
	}
}

// errTail returns the last lines of the error log, indented.
func (b *bench) errTail(n int) string {
	data, _ := os.ReadFile(b.errPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

type summary struct {
	Mode            string    `json:"mode"`
	AMode           string    `json:"a_mode,omitempty"`
	Pairs           int       `json:"pairs"`
	PairsOK         int       `json:"pairs_ok"`
	Warmup          int       `json:"warmup"`
	Nproc           int       `json:"nproc"`
	LoadAvg         string    `json:"loadavg"`
	Bundle          string    `json:"bundle"`
	PrivateParent   bool      `json:"private_parent"`
	UnifiedHidden   bool      `json:"unified_hidden"`
	A               sideStats `json:"a"`
	B               sideStats `json:"b"`
	RatioOfMedians  float64   `json:"ratio_of_medians"`
	MedianPairRatio float64   `json:"median_pair_ratio"`
	PairRatioP10    float64   `json:"pair_ratio_p10"`
	PairRatioP90    float64   `json:"pair_ratio_p90"`
}

func loadAvg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (b *bench) measure() error {
	o := b.opt
	a, bb := b.rts[0], b.rts[1]
	if !o.json {
		fmt.Printf("A: %s\nB: %s\n", a.word, bb.word)
		parent := "0755 parent"
		if o.private {
			parent = "0700 parent"
		} else if o.bundle != "" {
			parent = "given"
		}
		mode := o.mode
		if o.aMode != "" {
			mode = "A " + o.aMode + ", B " + o.mode
		}
		fmt.Printf("mode %s, %d pairs (ABBA), %d warm-up each, %d cpus, load %s, bundle %s (%s), cgroup2 'unified' hidden: %v\n",
			mode, o.pairs, o.warmup, runtime.NumCPU(), loadAvg(), b.bundle, parent, b.hidden)
	}
	for _, r := range b.rts {
		if m := b.modeOf(r); m == "exec" || m == "sbexec" || m == "pool" {
			if err := b.startLongRunning(r); err != nil {
				if b.ctx.Err() != nil {
					return errInterrupted
				}
				return fmt.Errorf("%s could not start its long-running container: %v\nerror log:\n%s", r.label, err, b.errTail(8))
			}
		}
	}
	for i := 0; i < o.warmup; i++ {
		for _, r := range b.rts {
			if _, _, err := b.cycle(r); err != nil {
				if b.ctx.Err() != nil {
					return errInterrupted
				}
				return fmt.Errorf("%s (%s) failed during warm-up: %v\nerror log:\n%s", r.label, r.word, err, b.errTail(8))
			}
		}
	}
	limit := o.pairs/4 + 2
	tooMany := false
	for i := 0; i < o.pairs && !tooMany; i++ {
		order := [2]int{0, 1}
		if i%2 == 1 {
			order = [2]int{1, 0}
		}
		var dt [2]time.Duration
		ok := true
		for _, k := range order {
			r := b.rts[k]
			d, rss, err := b.cycle(r)
			if b.ctx.Err() != nil {
				return errInterrupted
			}
			if err != nil {
				r.failures++
				ok = false
				continue
			}
			r.peakRSS = max(r.peakRSS, rss)
			dt[k] = d
		}
		if ok {
			a.ms = append(a.ms, float64(dt[0].Nanoseconds())/1e6)
			bb.ms = append(bb.ms, float64(dt[1].Nanoseconds())/1e6)
		}
		tooMany = a.failures+bb.failures > limit
	}
	if len(a.ms) > 0 {
		b.report()
	}
	switch {
	case tooMany:
		return fmt.Errorf("too many failures (A %d, B %d; limit %d), stopped; last errors:\n%s", a.failures, bb.failures, limit, b.errTail(8))
	case len(a.ms) == 0:
		return fmt.Errorf("no successful pairs (failures A %d, B %d); last errors:\n%s", a.failures, bb.failures, b.errTail(8))
	}
	return nil
}

func (b *bench) report() {
	o := b.opt
	a, bb := b.rts[0], b.rts[1]
	ratios := pairRatios(a.ms, bb.ms)
	s := summary{
		Mode: o.mode, AMode: o.aMode, Pairs: o.pairs, PairsOK: len(a.ms), Warmup: o.warmup,
		Nproc: runtime.NumCPU(), LoadAvg: loadAvg(), Bundle: b.bundle,
		PrivateParent: o.private, UnifiedHidden: b.hidden,
		A:               summarise(a.word, a.ms, a.peakRSS, a.failures),
		B:               summarise(bb.word, bb.ms, bb.peakRSS, bb.failures),
		MedianPairRatio: median(ratios),
		PairRatioP10:    percentile(ratios, 0.1),
		PairRatioP90:    percentile(ratios, 0.9),
	}
	s.RatioOfMedians = s.A.MedianMs / s.B.MedianMs
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(s)
		return
	}
	fmt.Printf("%-3s %10s %9s %9s %13s %9s\n", "", "median ms", "p10 ms", "p90 ms", "peak RSS KiB", "failures")
	for _, x := range []struct {
		l string
		s sideStats
	}{{"A", s.A}, {"B", s.B}} {
		fmt.Printf("%-3s %10.2f %9.2f %9.2f %13d %9d\n", x.l, x.s.MedianMs, x.s.P10Ms, x.s.P90Ms, x.s.PeakRSSKiB, x.s.Failures)
	}
	fmt.Printf("A/B ratio of medians: %.3f   median of pair ratios: %.3f (p10 %.3f, p90 %.3f; %d pairs ok)\n",
		s.RatioOfMedians, s.MedianPairRatio, s.PairRatioP10, s.PairRatioP90, s.PairsOK)
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	o, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lifecycle: %v\n(lifecycle -h for usage)\n", err)
		return 2
	}
	fail := func(err error) int {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "lifecycle: %v\n", err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "lifecycle: %v\n", err)
		return 1
	}
	if os.Geteuid() != 0 {
		return fail(errors.New("run as root (the runtimes create namespaces and cgroups)"))
	}
	b := &bench{opt: o}
	if o.hide {
		if b.hidden, err = hideUnified(); err != nil {
			return fail(err)
		}
	}
	for i, label := range []string{"A", "B"} {
		if b.rts[i], err = newRuntime(label, o.runtimes[i]); err != nil {
			return fail(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ctx = ctx
	var caught atomic.Value
	sigc := make(chan os.Signal, 4)
	// Stays registered through cleanup: a second ^C does not cut it short.
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigc
		caught.Store(s)
		cancel()
	}()

	if b.tmp, err = os.MkdirTemp("", "lifecycle."); err != nil {
		return fail(err)
	}
	defer b.cleanup()
	if err := b.setup(); err != nil {
		return fail(err)
	}
	err = b.measure()
	if errors.Is(err, errInterrupted) {
		fmt.Fprintf(os.Stderr, "lifecycle: %v, cleaning up\n", caught.Load())
		return 130
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// setup makes the state dirs, the error log and the bundle. The temp dir
// is traversable (0755); with -private only the bundle's parent is 0700, so
// the state dirs stay where an unprivileged uid can reach them, as the
// runtimes' defaults under /run are.
func (b *bench) setup() error {
	o := b.opt
	if err := os.Chmod(b.tmp, 0o755); err != nil {
		return err
	}
	for _, r := range b.rts {
		r.root = filepath.Join(b.tmp, "state-"+strings.ToLower(r.label))
		// A sandbox's unprivileged user namespace root must traverse
		// its state root to reach the staged rootfs below it.
		if err := os.Mkdir(r.root, 0o711); err != nil {
			return err
		}
	}
	b.errPath = filepath.Join(b.tmp, "errors.log")
	var err error
	if b.errLog, err = os.OpenFile(b.errPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return err
	}
	if o.bundle != "" {
		b.bundle, err = filepath.Abs(o.bundle)
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(b.bundle, "config.json")); err != nil {
			return fmt.Errorf("-bundle: %w", err)
		}
		return nil
	}
	bb := o.busybox
	if bb == "" {
		if bb, err = exec.LookPath("busybox"); err != nil {
			return fmt.Errorf("no busybox in PATH (Debian: busybox-static), or give -busybox: %w", err)
		}
	}
	args := []string{"/bin/true"}
	if o.mode == "exec" {
		args = []string{"/bin/sleep", "inf"}
	}
	parent := b.tmp
	if o.private {
		parent = filepath.Join(b.tmp, "private")
		if err := os.Mkdir(parent, 0o700); err != nil {
			return err
		}
	}
	b.bundle = filepath.Join(parent, "bundle")
	if err := os.Mkdir(b.bundle, 0o755); err != nil {
		return err
	}
	return makeBundle(b.bundle, bb, args)
}
