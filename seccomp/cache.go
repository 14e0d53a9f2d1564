package seccomp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/cachedir"
)

// An isolation mode's seccomp filter is compiled once per profile and
// cached as classic BPF (seccompCacheDir); the Landlock pre-exec step
// loads it with one syscall just before the workload's exec. Left to
// libcontainer, the same filter is compiled by libseccomp inside every
// container's init, which costs ~2 ms on each start for the built-in
// allowlist's argument checks. The bundle's config.json keeps the profile,
// so any other runtime enforces the same thing.

// compilerVersion is part of every cache key: bump it when Compile
// changes what it emits or how entries are stored, so no stale program is
// ever loaded. 2: entries carry the program's SHA-256.
const compilerVersion = 2

// ErrNotPrecompilable marks profiles that only libcontainer can apply
// (user notification needs its listener hand-off; flags change loading).
var ErrNotPrecompilable = errors.New("profile needs libcontainer")

// The cache dir (cachedir.Root) holds what nucleus computes once and
// reuses (compiled seccomp filters, runsc's feature list), beside the
// bundle cache and apart from the state root, which holds containers only.
// A filter found there is loaded as is, so the dir must be ours alone.
func seccompCacheDir() (string, error) { return cachedir.Sub("seccomp") }

// Program is a cached BPF program and the SHA-256 it had when it
// was compiled; the pre-exec step refuses the file if it no longer has it.
type Program struct {
	Path string
	Sum  [32]byte
}

// Cached returns the cache entry holding the BPF program of s,
// compiling and caching it on first use. An entry is the program
// (KEY.bpf) and its digest (KEY.sha256), written when compiled; the
// digest goes into the pre-exec record, so a program swapped or edited
// later is never loaded, even when the digest was changed too after the
// container started (nucleus exec uses the digest saved at start).
func Cached(s *specs.LinuxSeccomp) (Program, error) {
	if s.ListenerPath != "" || len(s.Flags) > 0 {
		return Program{}, ErrNotPrecompilable
	}
	for _, sc := range s.Syscalls {
		if sc.Action == specs.ActNotify {
			return Program{}, ErrNotPrecompilable
		}
	}
	key, err := json.Marshal(s)
	if err != nil {
		return Program{}, err
	}
	major, minor, micro := libseccomp.GetLibraryVersion()
	sum := sha256.Sum256(append(key, fmt.Sprintf("compiler %d libseccomp %d.%d.%d", compilerVersion, major, minor, micro)...))
	dir, err := seccompCacheDir()
	if err != nil {
		return Program{}, fmt.Errorf("seccomp cache: %w", err)
	}
	// cachedir.Sub made and checked dir: a directory (no symlink) owned
	// by us and writable by nobody else, below dirs no one else controls,
	// since a program found there is loaded for every later container.
	base := filepath.Join(dir, hex.EncodeToString(sum[:16]))
	if p, err := readCachedSum(base); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Program{}, err
	}
	prog, err := Compile(s)
	if err != nil {
		return Program{}, err
	}
	p := Program{Path: base + ".bpf", Sum: sha256.Sum256(prog)}
	// The program first, then its digest: an entry is used only once
	// both are there.
	if err := writeCacheFile(dir, p.Path, prog); err != nil {
		return Program{}, err
	}
	if err := writeCacheFile(dir, base+".sha256", []byte(hex.EncodeToString(p.Sum[:])+"\n")); err != nil {
		return Program{}, err
	}
	return p, nil
}

// OpenProgram opens a cached program (or its digest) for reading, refusing
// a symlink.
func OpenProgram(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP {
			return nil, fmt.Errorf("seccomp cache %s: is a symlink; remove it", path)
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// readCachedSum returns a cached entry's program path and digest.
func readCachedSum(base string) (Program, error) {
	f, err := OpenProgram(base + ".sha256")
	if err != nil {
		return Program{}, err
	}
	defer f.Close()
	buf := make([]byte, 65)
	n, _ := f.Read(buf)
	p := Program{Path: base + ".bpf"}
	if n != 65 || buf[64] != '\n' {
		return p, fmt.Errorf("seccomp cache %s.sha256: not a SHA-256; remove it", base)
	}
	if _, err := hex.Decode(p.Sum[:], buf[:64]); err != nil {
		return p, fmt.Errorf("seccomp cache %s.sha256: not a SHA-256; remove it", base)
	}
	return p, nil
}

// writeCacheFile replaces path atomically with data.
func writeCacheFile(dir, path string, data []byte) error {
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("seccomp cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("seccomp cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("seccomp cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("seccomp cache: %w", err)
	}
	return nil
}

// Compile builds the filter as libcontainer's InitSeccomp does (same
// actions, operators, optimisation and per-argument rule splitting) and
// exports it instead of loading it. Syscalls this libseccomp doesn't know
// are skipped, as libcontainer does.
func Compile(s *specs.LinuxSeccomp) ([]byte, error) {
	cfg, err := specconv.SetupSeccomp(s)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	defAct, err := scmpAction(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp filter: %w", err)
	}
	defer filter.Release()
	for _, arch := range cfg.Architectures {
		a, err := libseccomp.GetArchFromString(arch)
		if err != nil {
			return nil, fmt.Errorf("seccomp architecture %s: %w", arch, err)
		}
		if err := filter.AddArch(a); err != nil {
			return nil, fmt.Errorf("seccomp architecture %s: %w", arch, err)
		}
	}
	if len(cfg.Syscalls) > 32 {
		_ = filter.SetOptimize(2)
	}
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return nil, err
	}
	for _, call := range cfg.Syscalls {
		act, err := scmpAction(call.Action, call.ErrnoRet)
		if err != nil {
			return nil, err
		}
		if act == defAct {
			continue
		}
		nr, err := libseccomp.GetSyscallFromName(call.Name)
		if err != nil {
			continue
		}
		if len(call.Args) == 0 {
			if err := filter.AddRule(nr, act); err != nil {
				return nil, fmt.Errorf("seccomp rule %s: %w", call.Name, err)
			}
			continue
		}
		var conds []libseccomp.ScmpCondition
		perArg := map[uint]int{}
		for _, a := range call.Args {
			c, err := scmpCondition(a)
			if err != nil {
				return nil, fmt.Errorf("seccomp rule %s: %w", call.Name, err)
			}
			conds = append(conds, c)
			perArg[a.Index]++
		}
		split := false
		for _, n := range perArg {
			split = split || n > 1
		}
		if split {
			// Two checks on one argument can't be one rule: each becomes
			// its own (or-ed) rule, as in libcontainer.
			for _, c := range conds {
				if err := filter.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
					return nil, fmt.Errorf("seccomp rule %s: %w", call.Name, err)
				}
			}
		} else if err := filter.AddRuleConditional(nr, act, conds); err != nil {
			return nil, fmt.Errorf("seccomp rule %s: %w", call.Name, err)
		}
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	done := make(chan []byte, 1)
	go func() {
		var out []byte
		buf := make([]byte, 32<<10)
		for {
			n, err := rd.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		done <- out
	}()
	err = filter.ExportBPF(wr)
	wr.Close()
	prog := <-done
	if err != nil {
		return nil, fmt.Errorf("seccomp export: %w", err)
	}
	if len(prog) == 0 || len(prog)%8 != 0 {
		return nil, fmt.Errorf("seccomp export: %d bytes is not a BPF program", len(prog))
	}
	return prog, nil
}

func scmpAction(act configs.Action, errnoRet *uint) (libseccomp.ScmpAction, error) {
	switch act {
	case configs.Kill, configs.KillThread:
		return libseccomp.ActKillThread, nil
	case configs.KillProcess:
		return libseccomp.ActKillProcess, nil
	case configs.Errno:
		if errnoRet != nil {
			return libseccomp.ActErrno.SetReturnCode(int16(*errnoRet)), nil
		}
		return libseccomp.ActErrno.SetReturnCode(int16(1)), nil // EPERM, as runc
	case configs.Trap:
		return libseccomp.ActTrap, nil
	case configs.Allow:
		return libseccomp.ActAllow, nil
	case configs.Trace:
		if errnoRet != nil {
			return libseccomp.ActTrace.SetReturnCode(int16(*errnoRet)), nil
		}
		return libseccomp.ActTrace.SetReturnCode(int16(1)), nil
	case configs.Log:
		return libseccomp.ActLog, nil
	}
	return libseccomp.ActInvalid, ErrNotPrecompilable
}

func scmpCondition(a *configs.Arg) (libseccomp.ScmpCondition, error) {
	ops := map[configs.Operator]libseccomp.ScmpCompareOp{
		configs.EqualTo: libseccomp.CompareEqual, configs.NotEqualTo: libseccomp.CompareNotEqual,
		configs.GreaterThan: libseccomp.CompareGreater, configs.GreaterThanOrEqualTo: libseccomp.CompareGreaterEqual,
		configs.LessThan: libseccomp.CompareLess, configs.LessThanOrEqualTo: libseccomp.CompareLessOrEqual,
		configs.MaskEqualTo: libseccomp.CompareMaskedEqual,
	}
	op, ok := ops[a.Op]
	if !ok {
		return libseccomp.ScmpCondition{}, fmt.Errorf("unknown operator %v", a.Op)
	}
	return libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
}
