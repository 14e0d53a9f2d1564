// Package nixbundle turns a Nix flake output into a plain OCI bundle:
// config.json, a rootfs/ of empty mount points with every store path of the
// output's closure bind-mounted read-only at its own /nix/store path, a GC
// root, and attestation.json (see Verify).
package nixbundle

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/cachedir"
	"github.com/nucleus-run/nucleus/spec"
)

// System is the only platform Nucleus supports.
const System = "x86_64-linux"

// GCRootName is the symlink inside a bundle that roots its closure.
const GCRootName = "gcroot"

// Options for Bundle.
type Options struct {
	// Ref is FLAKEREF#ATTR (ATTR may be omitted for the default package).
	Ref string
	// Dir is the bundle directory to write.
	Dir string
	// Entrypoint overrides the output's entrypoint: an absolute path in
	// the closure or a path relative to the output (e.g. bin/sh).
	Entrypoint string
	// Args are appended to the entrypoint.
	Args []string
	// NoCache always runs Nix (and still refreshes the cache).
	NoCache bool
	// CacheDir holds cache entries (DefaultCacheDir if empty).
	CacheDir string
	// Nix is the nix binary (looked up on PATH if empty, only on a miss).
	Nix string
	// NixStateDir is where GC roots go (/nix/var/nix if empty).
	NixStateDir string
	// NixStderr, if set, is where Nix's errors go as Nix printed them, and
	// its progress and build log when it is a terminal (see Nix.Stderr);
	// the returned error is then one line that points there.
	NixStderr io.Writer
	// Transform, if set, rewrites the generated config before it is
	// written and attested (an isolation mode's policy.Apply). It gets the
	// bundle's final rootfs path.
	Transform func(s *specs.Spec, rootfs string) (*specs.Spec, error)
	// Planned, with Transform, is recorded in the attestation.
	Planned *Planned
}

// Result of Bundle.
type Result struct {
	Dir         string
	Plan        *Plan
	Attestation *Attestation
	CacheHit    bool
	// NixCalls counts the nix invocations this bundling made (0 on a hit).
	NixCalls int
}

// SplitRef splits FLAKEREF#ATTR.
func SplitRef(ref string) (flakeRef, attr string, err error) {
	flakeRef, attr, _ = strings.Cut(ref, "#")
	if flakeRef == "" {
		return "", "", fmt.Errorf("flake reference %q: want FLAKEREF#ATTR (e.g. .#agent-example)", ref)
	}
	return flakeRef, attr, nil
}

// Bundle builds opts.Ref with Nix (or takes it from the cache) and writes
// the bundle to opts.Dir. It writes into a temporary sibling directory and
// renames it into place, so a failure never leaves a partial bundle; an
// existing bundle at Dir is replaced atomically.
func Bundle(ctx context.Context, opts Options) (*Result, error) {
	flakeRef, attr, err := SplitRef(opts.Ref)
	if err != nil {
		return nil, err
	}
	// Local references become absolute, so Nix, the cache and the
	// attestation all name the same directory wherever nucleus runs.
	flakeRef = absRef(flakeRef)
	opts.Ref = flakeRef
	if attr != "" {
		opts.Ref += "#" + attr
	}
	if opts.Dir == "" {
		return nil, errors.New("no output directory: pass -o DIR")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := checkTarget(dir); err != nil {
		return nil, err
	}
	// A cache entry names the store paths the bundle is made of: the dir
	// must be ours alone.
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		if cacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	} else if err := cachedir.Ensure(cacheDir); err != nil {
		return nil, err
	}

	res := &Result{Dir: dir}
	key, cacheable, err := CacheKey(flakeRef, attr, opts.Entrypoint, opts.Args)
	if err != nil {
		cacheable = false // an unreadable source: let Nix report it
	}
	var plan *Plan
	if cacheable && !opts.NoCache {
		if plan = loadCache(cacheDir, key); plan != nil {
			plan.Ref = opts.Ref
			res.CacheHit = true
		}
	}
	if plan == nil {
		nix := &Nix{Bin: opts.Nix, Stderr: opts.NixStderr}
		if nix.Bin == "" {
			p, err := exec.LookPath("nix")
			if err != nil {
				return nil, errors.New("nix not found on PATH: install nix-bin and run scripts/setup-nix.sh (see README)")
			}
			nix.Bin = p
		}
		plan, err = makePlan(ctx, nix, opts, flakeRef, attr)
		res.NixCalls = nix.Calls
		if err != nil {
			return nil, err
		}
		if cacheable {
			if key2, ok, err := CacheKey(flakeRef, attr, opts.Entrypoint, opts.Args); err == nil && ok && key2 == key && (!plan.hasInputs || hasLockFile(flakeRef)) {
				// A cache that can't be written only costs speed.
				_ = storeCache(cacheDir, key, plan)
			}
		}
	}
	res.Plan = plan
	a, err := writeBundle(dir, plan, opts.NixStateDir, opts.Transform, opts.Planned)
	if err != nil {
		return nil, err
	}
	res.Attestation = a
	return res, nil
}

// absRef makes a local flake reference (a path, path:DIR, git+file:DIR)
// absolute; others are returned unchanged.
func absRef(ref string) string {
	for _, scheme := range []string{"path:", "git+file://", ""} {
		rest, ok := strings.CutPrefix(ref, scheme)
		if !ok || strings.Contains(rest, "?") {
			continue
		}
		if scheme == "" && !(strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, ".")) {
			return ref
		}
		if abs, err := filepath.Abs(rest); err == nil {
			return scheme + abs
		}
		return ref
	}
	return ref
}

// checkTarget refuses to overwrite anything but nothing, an empty
// directory or a bundle written by nucleus bundle.
func checkTarget(dir string) error {
	parent := filepath.Dir(dir)
	if st, err := os.Stat(parent); err != nil || !st.IsDir() {
		return fmt.Errorf("output %s: parent directory %s does not exist", dir, parent)
	}
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("output %s: exists and is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, AttestationName)); err == nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("output %s: exists and is not a bundle written by nucleus bundle (no %s); remove it or choose another -o", dir, AttestationName)
	}
	return nil
}

// makePlan runs Nix: flake metadata (locked narHash), build, closure, and
// the entrypoint lookup.
func makePlan(ctx context.Context, nix *Nix, opts Options, flakeRef, attr string) (*Plan, error) {
	meta, err := nix.Metadata(ctx, flakeRef)
	if err != nil {
		return nil, fmt.Errorf("flake %s: %w", flakeRef, err)
	}
	out, err := nix.Build(ctx, opts.Ref)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", opts.Ref, err)
	}
	closure, err := nix.Closure(ctx, out)
	if err != nil {
		return nil, fmt.Errorf("closure of %s: %w", out, err)
	}
	p := &Plan{
		Ref:       opts.Ref,
		FlakeURL:  meta.ResolvedURL,
		NarHash:   meta.Locked.NarHash,
		Output:    out,
		Closure:   closure,
		Args:      opts.Args,
		Hostname:  Hostname(attr),
		hasInputs: meta.HasInputs(),
	}
	if err := resolveEntrypoint(ctx, nix, p, opts, flakeRef, attr); err != nil {
		return nil, err
	}
	return p, nil
}

// resolveEntrypoint picks the process to run, in this order: --entrypoint;
// the output's nix-support/entrypoint (written by lib.mkRootfs); the
// flake's apps.<system>.<attr>.program; meta.mainProgram (as bin/<name>);
// bin/<name> where name is the output's name without its version.
func resolveEntrypoint(ctx context.Context, nix *Nix, p *Plan, opts Options, flakeRef, attr string) error {
	set := func(path, from string) error {
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.Output, path)
		}
		path = filepath.Clean(path)
		if err := p.checkEntrypoint(path); err != nil {
			return fmt.Errorf("%s: entrypoint from %s: %w", opts.Ref, from, err)
		}
		p.Entrypoint, p.EntrypointFrom = path, from
		return nil
	}
	if opts.Entrypoint != "" {
		return set(opts.Entrypoint, "--entrypoint")
	}
	if data, err := os.ReadFile(filepath.Join(p.Output, "nix-support", "entrypoint")); err == nil {
		if ep := strings.TrimSpace(string(data)); ep != "" {
			return set(ep, "nix-support/entrypoint (lib.mkRootfs)")
		}
	}
	simple := attr != "" && !strings.Contains(attr, ".")
	if simple {
		if prog, missing, err := nix.EvalString(ctx, flakeRef+"#apps."+System+"."+attr+".program"); err == nil && !missing && prog != "" {
			return set(prog, "apps."+System+"."+attr+".program")
		}
	}
	if attr != "" {
		if main, missing, err := nix.EvalString(ctx, opts.Ref+".meta.mainProgram"); err == nil && !missing && main != "" {
			return set(filepath.Join("bin", main), "meta.mainProgram")
		}
	}
	name := pname(p.Output)
	bin := filepath.Join(p.Output, "bin", name)
	if _, err := os.Stat(bin); err == nil {
		return set(bin, "bin/"+name)
	}
	return fmt.Errorf("%s: output %s has no entrypoint (no nix-support/entrypoint, no apps.%s.%s, no meta.mainProgram, no bin/%s); pass --entrypoint PATH", opts.Ref, p.Output, System, attr, name)
}

// checkEntrypoint requires an executable file inside the closure.
func (p *Plan) checkEntrypoint(path string) error {
	if !p.inClosure(storePathOf(path)) {
		return fmt.Errorf("%s is not in the output's closure", path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%s: no such file", path)
	}
	if !p.inClosure(storePathOf(real)) {
		return fmt.Errorf("%s resolves to %s, outside the closure", path, real)
	}
	st, err := os.Stat(real)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

func (p *Plan) inClosure(storePath string) bool {
	for _, pi := range p.Closure {
		if pi.Path == storePath {
			return true
		}
	}
	return false
}

// pname is a store path's name without hash and version, as `nix run`
// derives it: "/nix/store/<hash>-hello-1.0" -> "hello".
func pname(storePath string) string {
	base := filepath.Base(storePath)
	if i := strings.IndexByte(base, '-'); i >= 0 {
		base = base[i+1:]
	}
	for i := 0; i+1 < len(base); i++ {
		if base[i] == '-' && base[i+1] >= '0' && base[i+1] <= '9' {
			return base[:i]
		}
	}
	return base
}

// writeBundle writes config.json, rootfs/, attestation.json and the GC root
// link into a temporary sibling of dir, then moves it into place.
func writeBundle(dir string, p *Plan, stateDir string, transform func(*specs.Spec, string) (*specs.Spec, error), planned *Planned) (a *Attestation, err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", dir, err)
	}
	defer func() {
		if tmp != "" {
			removeTree(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	s := Config(p)
	if transform != nil {
		if s, err = transform(s, filepath.Join(dir, s.Root.Path)); err != nil {
			return nil, err
		}
	}
	cfg, err := spec.Marshal(s)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, spec.ConfigName), cfg, 0o644); err != nil {
		return nil, err
	}
	if err := MakeRootfs(tmp, s); err != nil {
		return nil, fmt.Errorf("output %s: rootfs: %w", dir, err)
	}
	a = NewAttestation(p, cfg)
	a.Planned = planned
	adata, err := a.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, AttestationName), adata, 0o644); err != nil {
		return nil, err
	}
	for _, f := range []string{spec.ConfigName, AttestationName} {
		// Readable whatever the umask, like the rootfs (runc reads
		// config.json as root; verifiers need not be).
		if err := os.Chmod(filepath.Join(tmp, f), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(p.Output, filepath.Join(tmp, GCRootName)); err != nil {
		return nil, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}

	// Move into place: rename onto nothing or an empty directory, or swap
	// atomically with an existing bundle and remove the old one.
	if err := os.Rename(tmp, dir); err == nil {
		tmp = ""
	} else if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE); err != nil {
			return nil, fmt.Errorf("output %s: replace: %w", dir, err)
		}
		// tmp now holds the old bundle; the deferred removeTree deletes it.
	} else {
		return nil, fmt.Errorf("output %s: %w", dir, err)
	}
	if err := addIndirectRoot(stateDir, filepath.Join(dir, GCRootName)); err != nil {
		return nil, fmt.Errorf("output %s: register GC root: %w", dir, err)
	}
	return a, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// addIndirectRoot registers link (a symlink into the store) as an indirect
// GC root the way `nix build --out-link` does: a symlink to it in
// <state>/gcroots/auto named by the Nix base-32 SHA-1 of its path.
func addIndirectRoot(stateDir, link string) error {
	if stateDir == "" {
		stateDir = "/nix/var/nix"
	}
	auto := filepath.Join(stateDir, "gcroots", "auto")
	if err := os.MkdirAll(auto, 0o755); err != nil {
		return err
	}
	sum := sha1.Sum([]byte(link))
	name := filepath.Join(auto, nix32(sum[:]))
	if cur, err := os.Readlink(name); err == nil && cur == link {
		return nil
	}
	tmp := name + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(link, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// removeTree deletes a bundle directory, refusing if anything is mounted
// below it (a leaked bind mount of a store path must never lead to
// deleting store contents).
func removeTree(dir string) error {
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
				return fmt.Errorf("%s: %s is mounted, not removing", dir, f[4])
			}
		}
	}
	return os.RemoveAll(dir)
}

// RemoveBundle deletes a bundle written by Bundle and unregisters its GC
// root (the auto root that names dir/gcroot), so `nix store gc` can reclaim
// the closure. Like removeTree it refuses a bundle with anything mounted
// below it; symlinks are removed, never followed.
func RemoveBundle(dir, stateDir string) error {
	if err := removeTree(dir); err != nil {
		return err
	}
	return RemoveIndirectRoot(stateDir, filepath.Join(dir, GCRootName))
}

// RemoveIndirectRoot undoes addIndirectRoot for link: it removes the auto
// root only if it still names link.
func RemoveIndirectRoot(stateDir, link string) error {
	if stateDir == "" {
		stateDir = "/nix/var/nix"
	}
	sum := sha1.Sum([]byte(link))
	name := filepath.Join(stateDir, "gcroots", "auto", nix32(sum[:]))
	if cur, err := os.Readlink(name); err != nil || cur != link {
		return nil
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unregister GC root %s: %w", name, err)
	}
	return nil
}
