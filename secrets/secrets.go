// Package secrets puts a service's secrets at /run/secrets/NAME in its
// container without writing them anywhere else: the bytes are read into
// memory, written through the container init's root straight into a tmpfs
// mounted for them (while the init waits to exec the workload, so nothing
// untrusted has run yet), and the buffers are zeroed. Neither the config,
// the state directory, an argument nor an environment variable carries them.
package secrets

import (
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/opterr"
)

// Dir is where the secrets appear in the container.
const Dir = "/run/secrets"

// Limit is the size of the tmpfs that holds them all: 1 MiB, counted in
// the pages the files take (a 1-byte secret takes a page).
const Limit = 1 << 20

const pageSize = 4096

// ErrTooLarge marks secrets that don't fit in Limit.
var ErrTooLarge = errors.New("secrets exceed the tmpfs limit")

// ErrSource marks a secret whose source can't be read (a missing file,
// an unset variable).
var ErrSource = errors.New("secret source unavailable")

// Source is one --secret SRC:NAME.
type Source struct {
	// From is a host file's path or "env:VAR".
	From string
	Name string
}

// EnvSource is one --secret-env NAME=VAR: the workload's NAME gets the
// host's $VAR. Weaker than a file: the workload's environment is readable
// by its own processes and inherited by everything it starts.
type EnvSource struct {
	Name, Var string
}

// ParseSource parses SRC:NAME. The name is a single path element.
func ParseSource(v string) (Source, error) {
	i := strings.LastIndex(v, ":")
	if i <= 0 || i == len(v)-1 {
		return Source{}, opterr.Errorf("secret", "%q: want SRC:NAME (SRC a host file or env:VAR)", v)
	}
	s := Source{From: v[:i], Name: v[i+1:]}
	if err := checkName(s.Name); err != nil {
		return Source{}, opterr.Errorf("secret", "%q: %w", v, err)
	}
	if s.From == "env:" {
		return Source{}, opterr.Errorf("secret", "%q: env: names no variable", v)
	}
	return s, nil
}

// ParseEnvSource parses NAME=VAR.
func ParseEnvSource(v string) (EnvSource, error) {
	name, vr, ok := strings.Cut(v, "=")
	if !ok || name == "" || vr == "" || strings.ContainsAny(name, "\x00") {
		return EnvSource{}, opterr.Errorf("secret-env", "%q: want NAME=VAR (the workload's NAME gets the host's $VAR)", v)
	}
	return EnvSource{Name: name, Var: vr}, nil
}

func checkName(n string) error {
	if n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
		return fmt.Errorf("name %q must be a plain file name", n)
	}
	return nil
}

// Secret is one loaded secret: its bytes live only in memory until Zero.
type Secret struct {
	Name string
	data []byte
}

// Set is the secrets of one container.
type Set struct {
	secrets []Secret
	// Env holds --secret-env's NAME=value entries for the process's env.
	env []Secret
}

// Empty reports whether there is nothing to mount.
func (s *Set) Empty() bool { return s == nil || len(s.secrets) == 0 }

// Names lists the files, for the audit log.
func (s *Set) Names() []string {
	var n []string
	for _, x := range s.secrets {
		n = append(n, x.Name)
	}
	return n
}

// EnvNames lists the --secret-env variables, for the audit log.
func (s *Set) EnvNames() []string {
	var n []string
	for _, x := range s.env {
		n = append(n, x.Name)
	}
	return n
}

// Load reads every source into memory. The total, in pages, must fit in
// Limit. On error nothing is kept.
func Load(files []Source, envs []EnvSource) (_ *Set, err error) {
	set := &Set{}
	defer func() {
		if err != nil {
			set.Zero()
		}
	}()
	seen := map[string]bool{}
	total := 0
	for _, src := range files {
		if seen[src.Name] {
			return nil, opterr.Errorf("secret", "%s:%s: name %q given twice", src.From, src.Name, src.Name)
		}
		seen[src.Name] = true
		data, err := read(src)
		if err != nil {
			return nil, err
		}
		set.secrets = append(set.secrets, Secret{Name: src.Name, data: data})
		total += (len(data) + pageSize - 1) / pageSize * pageSize
		if total > Limit-pageSize { // the tmpfs's root directory takes a page
			return nil, opterr.Errorf("secret", "%s:%s: %w (%d KiB in all, more than %d KiB)", src.From, src.Name, ErrTooLarge, total/1024, (Limit-pageSize)/1024)
		}
	}
	for _, e := range envs {
		v, ok := os.LookupEnv(e.Var)
		if !ok {
			return nil, opterr.Errorf("secret-env", "%s=%s: %w: $%s is not set", e.Name, e.Var, ErrSource, e.Var)
		}
		set.env = append(set.env, Secret{Name: e.Name, data: []byte(e.Name + "=" + v)})
	}
	return set, nil
}

// read reads one source into a buffer of exactly its size, so no grown and
// dropped copies of it are left in memory.
func read(src Source) ([]byte, error) {
	if v, ok := strings.CutPrefix(src.From, "env:"); ok {
		val, set := os.LookupEnv(v)
		if !set {
			return nil, opterr.Errorf("secret", "%s:%s: %w: $%s is not set", src.From, src.Name, ErrSource, v)
		}
		if len(val) > Limit {
			return nil, opterr.Errorf("secret", "%s:%s: %w (%d bytes)", src.From, src.Name, ErrTooLarge, len(val))
		}
		return []byte(val), nil
	}
	f, err := os.Open(src.From)
	if err != nil {
		return nil, opterr.Errorf("secret", "%s:%s: %w: %v", src.From, src.Name, ErrSource, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, opterr.Errorf("secret", "%s:%s: %w", src.From, src.Name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, opterr.Errorf("secret", "%s:%s: %w: not a regular file", src.From, src.Name, ErrSource)
	}
	if fi.Size() > Limit {
		return nil, opterr.Errorf("secret", "%s:%s: %w (%d bytes)", src.From, src.Name, ErrTooLarge, fi.Size())
	}
	buf := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		clear(buf)
		return nil, opterr.Errorf("secret", "%s:%s: %w", src.From, src.Name, err)
	}
	return buf, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Env returns the --secret-env entries (NAME=value) for the process's
// environment. The caller puts them in the spec it hands the engine and
// must never write that spec to disk.
func (s *Set) Env() []string {
	if s == nil {
		return nil
	}
	var out []string
	for _, e := range s.env {
		out = append(out, string(e.data))
	}
	return out
}

// Zero overwrites every buffer.
func (s *Set) Zero() {
	if s == nil {
		return
	}
	for i := range s.secrets {
		clear(s.secrets[i].data)
	}
	for i := range s.env {
		clear(s.env[i].data)
	}
}

// Mount is the tmpfs the secrets are written to: size-limited, nosuid,
// nodev, noexec; its root is readable by everyone (each file is 0400 and
// its owner's alone).
func Mount() specs.Mount {
	return specs.Mount{
		Destination: Dir,
		Type:        "tmpfs",
		Source:      "tmpfs",
		Options:     []string{"nosuid", "nodev", "noexec", "mode=0755", fmt.Sprintf("size=%d", Limit)},
	}
}

// Write writes the secrets into the tmpfs at Dir of the container whose
// init is pid, owned by uid:gid as the container sees them (mapped through
// the init's user namespace), mode 0400, then zeroes them. It runs before
// the workload does: what the rootfs holds is untrusted, so the path is
// resolved inside the container's root and must end at the tmpfs Mount
// made.
func (s *Set) Write(pid int, uid, gid uint32) error {
	defer s.Zero()
	if s.Empty() {
		return nil
	}
	hostUID, err := mapID(pid, "uid_map", uid)
	if err != nil {
		return err
	}
	hostGID, err := mapID(pid, "gid_map", gid)
	if err != nil {
		return err
	}
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("secrets: container root: %w", err)
	}
	defer unix.Close(root)
	dir, err := unix.Openat2(root, strings.TrimPrefix(Dir, "/"), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return fmt.Errorf("secrets: %s in the container: %w", Dir, err)
	}
	defer unix.Close(dir)
	var st unix.Statfs_t
	if err := unix.Fstatfs(dir, &st); err != nil {
		return fmt.Errorf("secrets: %s: %w", Dir, err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		return fmt.Errorf("secrets: %s in the container is not the secrets tmpfs", Dir)
	}
	rootUID, err := mapID(pid, "uid_map", 0)
	if err != nil {
		return err
	}
	rootGID, err := mapID(pid, "gid_map", 0)
	if err != nil {
		return err
	}
	for _, sec := range s.secrets {
		fd, err := create(dir, sec.Name, rootUID, rootGID)
		if err == nil {
			err = fill(fd, sec, hostUID, hostGID)
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("secrets: %s/%s: %w", Dir, sec.Name, err)
		}
	}
	// Read-only from now on: nothing in the container changes them.
	if err := readOnly(pid, dir); err != nil {
		return fmt.Errorf("secrets: %s read-only: %w", Dir, err)
	}
	return nil
}

// readOnly makes the mount dir is the root of read-only. The kernel
// changes a mount's flags only from its own mount namespace, so this joins
// the container's, on a thread of its own that is thrown away after.
func readOnly(pid, dir int) error {
	ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/mnt", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ns)
	ch := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			ch <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Setns(ns, unix.CLONE_NEWNS); err != nil {
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		ch <- unix.MountSetattr(dir, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	}()
	return <-ch
}

// create makes the file as the container's root (its host uid, which a
// tmpfs of the container's user namespace requires of its creator), on a
// thread of its own that is thrown away after: setfsuid is per thread.
func create(dir int, name string, uid, gid int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine.
		unix.Setfsgid(gid)
		unix.Setfsuid(uid)
		fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o400)
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

func fill(fd int, sec Secret, uid, gid int) error {
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return err
	}
	// Explicitly: the umask may have taken bits off, never added.
	if err := unix.Fchmod(fd, 0o400); err != nil {
		return err
	}
	for b := sec.data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// mapID maps a container id to the host's through the init's map (the
// identity when it has no user namespace of its own).
func mapID(pid int, file string, id uint32) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0, fmt.Errorf("secrets: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		var in, out, n uint32
		if _, err := fmt.Sscan(line, &in, &out, &n); err != nil {
			continue
		}
		if id >= in && id-in < n {
			return int(out + (id - in)), nil
		}
	}
	return 0, fmt.Errorf("secrets: id %d is not mapped in the container (%s)", id, file)
}
