// Command throughput measures how many containers two runtimes run per
// minute with W parallel workers on the same bundle, and the CPU time and
// peak RSS each container costs, in alternating rounds.
//
//	throughput [-w 2] [-d 5s] [-rounds 4] [-bundle DIR] 'RUNTIME_A [global flags]' 'RUNTIME_B [global flags]'
//
// A round keeps W workers busy with `run --bundle B ID` (a fresh id each
// time) for the round's duration; rounds alternate A B B A ... so neither
// side always runs on a warmer or quieter machine. Reported: the median of
// the per-round-pair ratios of containers/min, CPU ms per container (user +
// system of the runtime and everything it waited for) and the peak RSS.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nucleus-run/nucleus/bench/internal/bbbundle"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	workers := fs.Int("w", 2, "parallel workers")
	dur := fs.Duration("d", 5*time.Second, "length of one round")
	rounds := fs.Int("rounds", 4, "rounds of each runtime")
	bundle := fs.String("bundle", "", "bundle to run (default: one built from busybox running /bin/true)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 || *workers < 1 || *rounds < 1 || *dur <= 0 {
		fmt.Fprintln(os.Stderr, "throughput: want -w >= 1, -rounds >= 1, -d > 0 and two runtimes, e.g. throughput bin/nucleus runc")
		return 2
	}
	if err := measure(*workers, *dur, *rounds, *bundle, fs.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		return 1
	}
	return 0
}

type side struct {
	word    string
	argv    []string
	root    string
	perMin  []float64 // per round
	cpuMs   []float64 // per round, CPU ms per container
	peakRSS int64     // KiB
}

func measure(workers int, dur time.Duration, rounds int, bundle string, words []string) error {
	tmp, err := os.MkdirTemp("", "nucleus-throughput-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bundle == "" {
		bundle = filepath.Join(tmp, "bundle")
		if err := bbbundle.Write(bundle, "", "/bin/true"); err != nil {
			return err
		}
	}
	var sides [2]*side
	for i, w := range words {
		argv := strings.Fields(w)
		if len(argv) == 0 {
			return errors.New("empty runtime")
		}
		p, err := exec.LookPath(argv[0])
		if err != nil {
			return err
		}
		if argv[0], err = filepath.Abs(p); err != nil {
			return err
		}
		sides[i] = &side{word: w, argv: argv, root: filepath.Join(tmp, fmt.Sprintf("root%d", i))}
	}
	var seq atomic.Int64
	for r := 0; r < rounds; r++ {
		order := []*side{sides[0], sides[1]}
		if r%2 == 1 {
			order = []*side{sides[1], sides[0]}
		}
		for _, s := range order {
			if err := s.round(workers, dur, bundle, &seq); err != nil {
				return fmt.Errorf("%s: %w", s.word, err)
			}
		}
	}
	a, b := sides[0], sides[1]
	fmt.Printf("%d workers, %d rounds of %s each, %d cpus\n", workers, rounds, dur, runtime.NumCPU())
	fmt.Printf("%-40s %14s %14s %13s\n", "runtime", "containers/min", "CPU ms/ctr", "peak RSS KiB")
	for _, s := range sides {
		fmt.Printf("%-40s %14.0f %14.2f %13d\n", s.word, median(s.perMin), median(s.cpuMs), s.peakRSS)
	}
	fmt.Printf("A/B: containers/min %.3f, CPU per container %.3f (medians of per-round ratios)\n",
		median(ratios(a.perMin, b.perMin)), median(ratios(a.cpuMs, b.cpuMs)))
	return nil
}

// round keeps workers busy running containers for dur and records the
// rate and the CPU time per container.
func (s *side) round(workers int, dur time.Duration, bundle string, seq *atomic.Int64) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int
		cpu      time.Duration
		firstErr error
	)
	deadline := time.Now().Add(dur)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				id := fmt.Sprintf("tp-%d-%d", os.Getpid(), seq.Add(1))
				args := append(append([]string{}, s.argv[1:]...), "--root", s.root, "run", "--bundle", bundle, id)
				cmd := exec.Command(s.argv[0], args...)
				out, err := cmd.CombinedOutput()
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("run %s: %v: %s", id, err, strings.TrimSpace(string(out)))
					}
					mu.Unlock()
					exec.Command(s.argv[0], append(append([]string{}, s.argv[1:]...), "--root", s.root, "delete", "--force", id)...).Run()
					return
				}
				done++
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
					s.peakRSS = max(s.peakRSS, ru.Maxrss)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if done == 0 {
		return errors.New("no container finished in the round")
	}
	elapsed := time.Since(start)
	s.perMin = append(s.perMin, float64(done)/elapsed.Minutes())
	s.cpuMs = append(s.cpuMs, float64(cpu.Microseconds())/1000/float64(done))
	return nil
}

func ratios(a, b []float64) []float64 {
	var r []float64
	for i := range a {
		if i < len(b) && b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return r
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 0 {
		return (s[m-1] + s[m]) / 2
	}
	return s[m]
}
