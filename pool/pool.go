// Package pool keeps warm pools of held sandboxes, with no daemon: each
// member is a long-lived sandbox fully started (namespaces, cgroup,
// mounts, user namespace, Landlock and seccomp in place) whose supervisor
// waits for one command. A caller takes a member (exactly one caller per
// member), runs its command through the supervisor and has it destroyed:
// members are never reused. Whoever takes one starts a detached refill.
//
// Layout, under the state root:
//
//	@pool-NAME/pool.json       the pool's size and sandbox options
//	@pool-NAME/ready/ID        a member waiting to be taken
//	@pool-NAME/taken/ID        a member taken (its taker's pid inside)
//	@pool-NAME/fill.lock       held by the one refill running
//
// Taking is rename(ready/ID, taken/ID): of concurrent callers exactly one
// succeeds. Members are the sandboxes whose record names the pool, so a
// member that a killed refill left half-made, or whose taker was killed,
// is still found: the next refill removes it, and Remove removes all.
package pool

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/runtime"
)

// Prefix names a pool's directory under the state root.
const Prefix = "@pool-"

// MaxSize bounds a pool's size.
const MaxSize = 256

var (
	ErrNotExist = errors.New("no such pool")
	ErrExist    = errors.New("pool already exists")
	// ErrEmpty: no member is ready (the caller starts cold).
	ErrEmpty = errors.New("pool is empty")
)

// validName: 1-48 of [a-zA-Z0-9_.-], the first a letter or digit. (No
// regexp: compiling one at init costs every nucleus command ~1 ms.)
func validName(s string) bool {
	if len(s) < 1 || len(s) > 48 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// Config is a pool: how many members to keep and how to make each.
type Config struct {
	Name string `json:"name"`
	Size int    `json:"size"`
	// Options make a member (its ID, Detach, Args and Pool are set per
	// member).
	Options runtime.SandboxOptions `json:"options"`
	// WorkspaceExec lets commands execute files from the workspace they
	// are given (fixed when a member starts: its Landlock rules).
	WorkspaceExec bool `json:"workspace_exec,omitempty"`
}

// Pools manages the pools under one runtime's root. Self is the nucleus
// binary that detached refills and teardowns run (default: this one).
type Pools struct {
	R    *runtime.Runtime
	Self string
}

func (p *Pools) dir(name string) string { return filepath.Join(p.R.Root, Prefix+name) }

func checkName(name string) error {
	if !validName(name) {
		return opterr.Errorf("pool", "%q: want 1-48 letters, digits, '_', '-' or '.', starting with a letter or digit", name)
	}
	return nil
}

// Create records a new pool (empty: Fill makes its members).
func (p *Pools) Create(cfg Config) error {
	if err := checkName(cfg.Name); err != nil {
		return err
	}
	if cfg.Size < 1 || cfg.Size > MaxSize {
		return opterr.Errorf("size", "%d: want 1 to %d", cfg.Size, MaxSize)
	}
	if cfg.Options.Spec == nil || cfg.Options.Policy.Mode == "" || cfg.Options.Policy.Mode == "none" {
		return opterr.Errorf("mode", "a pool's sandboxes run in an isolation mode (the supervisor is their confined init)")
	}
	if cfg.Options.Engine == runtime.EngineGvisor {
		return opterr.Errorf("engine", "gvisor: a pool's sandboxes run on the native engine")
	}
	if len(cfg.Options.Policy.Workspaces) > 0 {
		return opterr.Errorf("workspace", "a pool takes its workspace when a sandbox is taken (nucleus sandbox --pool NAME --workspace DIR)")
	}
	if err := os.MkdirAll(p.R.Root, 0o711); err != nil {
		return err
	}
	dir := p.dir(cfg.Name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("pool %s: %w (nucleus pool rm %s removes it)", cfg.Name, ErrExist, cfg.Name)
		}
		return fmt.Errorf("pool %s: %w", cfg.Name, err)
	}
	for _, d := range []string{"ready", "taken", "empty"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("pool %s: %w", cfg.Name, err)
		}
	}
	// The placeholder workspace's source: empty, and readable by the
	// copy (which runs as root).
	data, err := json.Marshal(cfg)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "pool.json"), data, 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("pool %s: %w", cfg.Name, err)
	}
	return nil
}

// Load reads a pool's config.
func (p *Pools) Load(name string) (*Config, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(p.dir(name), "pool.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pool %s: %w", name, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("pool %s: pool.json: %w", name, err)
	}
	return &cfg, nil
}

// Status is a pool as `pool ls` shows it.
type Status struct {
	Name  string `json:"name"`
	Size  int    `json:"size"`
	Ready int    `json:"ready"`
	Taken int    `json:"taken"`
	// Filling: a refill is running.
	Filling bool `json:"filling"`
}

// List returns every pool under the root.
func (p *Pools) List() ([]Status, error) {
	entries, err := os.ReadDir(p.R.Root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []Status
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), Prefix)
		if !ok || !e.IsDir() {
			continue
		}
		cfg, err := p.Load(name)
		if err != nil {
			continue // being created or removed
		}
		ready := 0
		for _, id := range p.members(name, "ready") {
			if p.R.IsSandbox(id) {
				ready++
			}
		}
		out = append(out, Status{Name: name, Size: cfg.Size, Ready: ready, Taken: len(p.members(name, "taken")), Filling: p.filling(name)})
	}
	return out, nil
}

func (p *Pools) members(name, state string) []string {
	entries, _ := os.ReadDir(filepath.Join(p.dir(name), state))
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

// lock takes the pool's fill lock (wait: block until it is free). ok is
// false when another holds it and wait is not set.
func (p *Pools) lock(name string, wait bool) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(filepath.Join(p.dir(name), "fill.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("pool %s: %w", name, ErrNotExist)
		}
		return nil, false, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("pool %s: lock: %w", name, err)
	}
	return f, true, nil
}

func (p *Pools) filling(name string) bool {
	f, ok, err := p.lock(name, false)
	if err != nil {
		return false
	}
	if ok {
		f.Close()
	}
	return !ok
}

// isMemberID reports whether id is one Fill gives members of pool name.
func isMemberID(name, id string) bool {
	rest, ok := strings.CutPrefix(id, name+"-")
	if !ok || len(rest) != 12 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil && strings.ToLower(rest) == rest
}

// allMembers are the sandboxes made for the pool, in whatever state: by
// their record, or, for one a killed refill left without a record yet, by
// the id Fill gives.
func (p *Pools) allMembers(name string) []string {
	var ids []string
	for _, id := range p.R.Sandboxes() {
		if p.R.PoolOf(id) == name || isMemberID(name, id) {
			ids = append(ids, id)
		}
	}
	// A container whose sandbox dir was never made, or one whose
	// container wasn't either, but its workspace copy or rootfs staging
	// was (@workspace-ID, @rootfs-ID, ...: a refill killed early).
	entries, _ := os.ReadDir(p.R.Root)
	for _, e := range entries {
		id := e.Name()
		if at, ok := strings.CutPrefix(id, "@"); ok {
			_, id, _ = strings.Cut(at, "-")
		}
		if isMemberID(name, id) && !contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Fill makes members until the pool has Size ready, unless a refill is
// already running (then it returns at once). First it removes what dead
// refills and dead takers left.
func (p *Pools) Fill(name string) error {
	cfg, err := p.Load(name)
	if err != nil {
		return err
	}
	lock, ok, err := p.lock(name, false)
	if err != nil || !ok {
		return err
	}
	defer lock.Close()
	ready, taken := p.members(name, "ready"), p.members(name, "taken")
	for _, id := range p.allMembers(name) {
		if contains(ready, id) {
			continue
		}
		if contains(taken, id) && takerAlive(filepath.Join(p.dir(name), "taken", id)) {
			continue
		}
		logrus.Debugf("pool %s: removing %s (its refill or its taker died)", name, id)
		p.destroy(name, id)
	}
	for _, id := range p.members(name, "ready") {
		if !p.R.IsSandbox(id) {
			os.Remove(filepath.Join(p.dir(name), "ready", id))
		}
	}
	for len(p.members(name, "ready")) < cfg.Size {
		if _, err := os.Stat(filepath.Join(p.dir(name), "pool.json")); err != nil {
			return nil // being removed
		}
		if err := p.add(name, cfg); err != nil {
			return err
		}
	}
	return nil
}

// takerAlive reads the taker's pid from a taken entry: alive, or the
// entry is too new to have it yet.
func takerAlive(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	if len(data) == 0 {
		return true
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return false
	}
	return unix.Kill(pid, 0) == nil || errors.Is(unix.Kill(pid, 0), unix.EPERM)
}

func (p *Pools) add(name string, cfg *Config) error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := name + "-" + hex.EncodeToString(b[:])
	o := cfg.Options
	o.ID, o.Detach, o.Args, o.Pool, o.TTL, o.Timeout = id, true, nil, name, 0, 0
	o.Policy.Workspaces = append(o.Policy.Workspaces, runtime.PoolPlaceholder(filepath.Join(p.dir(name), "empty"), cfg.WorkspaceExec))
	if _, err := p.R.StartSandbox(o); err != nil {
		return fmt.Errorf("pool %s: start a sandbox: %w", name, err)
	}
	if err := p.awaitExec(id); err != nil {
		p.destroy(name, id)
		return fmt.Errorf("pool %s: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(p.dir(name), "ready", id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		p.destroy(name, id)
		return fmt.Errorf("pool %s: %w", name, err)
	}
	return f.Close()
}

// libcontainerInitComm is the name libcontainer's init carries until it
// execs the container's process.
const libcontainerInitComm = "runc:[2:INIT]"

// awaitExec waits until member id's init has exec'd its supervisor: a
// start returns once the init is released, and until the exec its pid 1
// is still libcontainer's Go init (18 MB resident, not the warm 1 MB a
// ready member promises).
func (p *Pools) awaitExec(id string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := p.R.State(id)
		if err != nil {
			return err
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", st.InitProcessPid))
		if err != nil || st.InitProcessPid <= 0 {
			return fmt.Errorf("sandbox %s: its init (pid %d) ended before it was ready", id, st.InitProcessPid)
		}
		if strings.TrimSpace(string(comm)) != libcontainerInitComm {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox %s: its init did not exec within 10s", id)
		}
		time.Sleep(time.Millisecond)
	}
}

// destroy removes member id and its entries.
func (p *Pools) destroy(name, id string) {
	if err := p.R.Delete(id, true); err != nil {
		logrus.Warnf("pool %s: remove %s: %v", name, id, err)
	}
	os.RemoveAll(filepath.Join(p.R.Root, "@sandbox-"+id))
	os.Remove(filepath.Join(p.dir(name), "ready", id))
	os.Remove(filepath.Join(p.dir(name), "taken", id))
}

// Take claims one ready member for the caller: exactly one caller gets
// each. ErrEmpty when none is ready.
func (p *Pools) Take(name string) (string, error) {
	// A stat, not Load: the config is read only when the pool is empty.
	if err := checkName(name); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(p.dir(name), "pool.json")); err != nil {
		return "", fmt.Errorf("pool %s: %w", name, ErrNotExist)
	}
	for _, id := range p.members(name, "ready") {
		taken := filepath.Join(p.dir(name), "taken", id)
		if err := os.Rename(filepath.Join(p.dir(name), "ready", id), taken); err != nil {
			continue // another caller took it
		}
		_ = os.WriteFile(taken, []byte(strconv.Itoa(os.Getpid())), 0o600)
		if !p.R.IsSandbox(id) {
			// Removed behind the pool's back (delete --force ID).
			os.Remove(taken)
			continue
		}
		return id, nil
	}
	return "", fmt.Errorf("pool %s: %w", name, ErrEmpty)
}

// Release destroys a taken member and refills the pool: now, or in a
// detached `nucleus pool release NAME ID` (so the caller has its status
// first).
func (p *Pools) Release(name, id string, detached bool) error {
	if !detached {
		p.destroy(name, id)
		return p.Fill(name)
	}
	return p.spawn("release", name, id)
}

// Refill starts a detached `nucleus pool fill NAME`.
func (p *Pools) Refill(name string) error { return p.spawn("fill", name) }

// Command is the argv[1] with which Self runs a detached release or refill
// (Main): any binary that links this package and calls Main for it (the
// nucleus command, a program using package sandbox) can be Self.
const Command = "nucleus-pool"

// Main runs a detached release or refill when the process was started as
// one (os.Args[1] is Command), then exits; otherwise it returns at once.
func Main() {
	if len(os.Args) < 2 || os.Args[1] != Command {
		return
	}
	os.Exit(main(os.Args[2:]))
}

func main(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, Command+": want ROOT fill NAME or ROOT release NAME ID")
		return 2
	}
	r, err := runtime.New(args[0], false, "auto")
	if err == nil {
		p := &Pools{R: r}
		switch {
		case args[1] == "fill" && len(args) == 3:
			err = p.Fill(args[2])
		case args[1] == "release" && len(args) == 4:
			err = p.Release(args[2], args[3], false)
		default:
			err = fmt.Errorf("%s: unknown request %q", Command, args[1:])
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nucleus:", err)
		return 1
	}
	return 0
}

// spawn starts Self as Command detached: its own session, no stdio, not
// waited for.
func (p *Pools) spawn(args ...string) error {
	self := p.Self
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return err
		}
	}
	cmd := exec.Command(self, append([]string{Command, p.R.Root}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", strings.Join(args, " "), err)
	}
	return cmd.Process.Release()
}

// Remove removes the pool and every one of its members, taken ones too.
func (p *Pools) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	dir := p.dir(name)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("pool %s: %w", name, ErrNotExist)
	}
	// A running refill stops after the member it is making.
	os.Remove(filepath.Join(dir, "pool.json"))
	lock, _, err := p.lock(name, true)
	if err != nil {
		return err
	}
	defer lock.Close()
	for _, id := range p.allMembers(name) {
		p.destroy(name, id)
	}
	// A detached release or refill that read pool.json just before it
	// went may still make an entry (its fill.lock, a ready mark) while
	// the dir is being removed; it finds nothing to do after that.
	for try := 0; try < 50; try++ {
		if err = os.RemoveAll(dir); err == nil || !errors.Is(err, unix.ENOTEMPTY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("pool %s: %w", name, err)
	}
	return nil
}
