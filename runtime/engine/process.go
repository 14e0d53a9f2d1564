package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ProcessFromBundle is the bundle's own process with the exec flags laid
// over it (both engines take an exec'd process this way).
func ProcessFromBundle(id, bundle string, o ExecOptions) (*specs.Process, error) {
	s, err := spec.Load(bundle)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	p := s.Process
	p.Args = o.Args
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	}
	p.Env = append(p.Env, o.Env...)
	p.Terminal = o.Tty
	if o.NoNewPrivs != nil {
		p.NoNewPrivileges = *o.NoNewPrivs
	}
	for _, cp := range o.Caps {
		if !spec.IsCapability(cp) {
			return nil, opterr.Errorf("cap", "%q: not a capability (see capabilities(7); e.g. CAP_NET_ADMIN)", cp)
		}
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		p.Capabilities.Bounding = append(p.Capabilities.Bounding, cp)
		p.Capabilities.Effective = append(p.Capabilities.Effective, cp)
		p.Capabilities.Permitted = append(p.Capabilities.Permitted, cp)
	}
	if o.User != "" {
		uid, gid, err := ParseUser(o.User)
		if err != nil {
			return nil, err
		}
		p.User.UID = uid
		if gid != nil {
			p.User.GID = *gid
		}
	}
	p.User.AdditionalGids = append(p.User.AdditionalGids, o.AdditionalGids...)
	file := filepath.Join(bundle, spec.ConfigName)
	if err := spec.ValidateProcess(file, "exec: process.", p); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseUser parses "uid[:gid]" as runc's exec --user.
func ParseUser(s string) (uid uint32, gid *uint32, err error) {
	us, gs, hasGid := strings.Cut(s, ":")
	u, err := parseID(us)
	if err != nil {
		return 0, nil, opterr.Errorf("user", "%q: uid: %w", s, err)
	}
	if hasGid {
		g, err := parseID(gs)
		if err != nil {
			return 0, nil, opterr.Errorf("user", "%q: gid: %w", s, err)
		}
		gid = &g
	}
	return u, gid, nil
}

func parseID(s string) (uint32, error) {
	var n uint64
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		n = n*10 + uint64(ch-'0')
		if n > 1<<32-1 {
			return 0, fmt.Errorf("%q out of range", s)
		}
	}
	return uint32(n), nil
}

// AbsPath makes p absolute against the working directory; "" stays "".
func AbsPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return filepath.Abs(p)
}

// CheckTerminal refuses what runc refuses of a terminal and a console
// socket: a detached terminal needs the socket, the socket needs both.
func CheckTerminal(terminal, detach bool, consoleSocket string) error {
	if detach && terminal && consoleSocket == "" {
		return opterr.Errorf("console-socket", "process.terminal is true but nucleus detaches: pass a console socket to receive the terminal")
	}
	if (!detach || !terminal) && consoleSocket != "" {
		return opterr.Errorf("console-socket", "needs process.terminal true and a detached container (create, run -d, exec -d)")
	}
	return nil
}

// OwnerName is the user name of a state dir's owner, as runc lists it.
// Names are looked up once per uid: list asks for every container, and
// each lookup reads the whole of /etc/passwd.
func OwnerName(info fs.FileInfo) string {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if name, ok := ownerNames.Load(st.Uid); ok {
		return name.(string)
	}
	uid := strconv.Itoa(int(st.Uid))
	name := "#" + uid
	if u, err := user.LookupId(uid); err == nil {
		name = u.Username
	}
	ownerNames.Store(st.Uid, name)
	return name
}

var ownerNames sync.Map

// ParseSignal accepts "KILL", "SIGKILL", "kill" and "9", and "0": no
// signal, only the check that the container's init is there (runc's
// liveness probe, `kill ID 0`).
func ParseSignal(raw string) (unix.Signal, error) {
	if n, err := strconv.Atoi(raw); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q: number out of range 0-64", raw)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(raw)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("invalid signal %q: unknown name", raw)
	}
	return sig, nil
}

// RootfsPath is the config's rootfs, resolved against the bundle.
func RootfsPath(bundle string, s *specs.Spec) string {
	if s.Root == nil || filepath.IsAbs(s.Root.Path) {
		if s.Root == nil {
			return bundle
		}
		return s.Root.Path
	}
	return filepath.Join(bundle, s.Root.Path)
}

// IsBindMount reports whether m is a bind mount, by type or option.
func IsBindMount(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// WithAbsolutePaths returns s with its rootfs and relative bind sources
// made absolute against bundle (a copy where anything changes), so that no
// caller has to move into the bundle first, as runc does: a library must
// not change its process's working directory.
func WithAbsolutePaths(bundle string, s *specs.Spec) *specs.Spec {
	out := *s
	if s.Root != nil && !filepath.IsAbs(s.Root.Path) {
		root := *s.Root
		root.Path = filepath.Join(bundle, root.Path)
		out.Root = &root
	}
	out.Mounts = make([]specs.Mount, len(s.Mounts))
	for i, m := range s.Mounts {
		if m.Source != "" && !filepath.IsAbs(m.Source) && IsBindMount(m) {
			m.Source = filepath.Join(bundle, m.Source)
		}
		out.Mounts[i] = m
	}
	return &out
}
