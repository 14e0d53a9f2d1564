// Package cacheprune frees nucleus's cache dir: the bundle cache entries,
// the bundles of `nucleus sandbox --flake` (unregistering their GC roots so
// `nix store gc` can reclaim the closures) and the compiled seccomp
// filters, keeping by default what is in use.
//
// The cache dir and its sub-dirs must pass cachedir.Check (directories, not
// symlinks, owned by the caller, writable by no one else, below dirs no one
// else controls): then no one else can swap an entry for a symlink while
// we remove it. Entries are removed with lstat semantics: a symlink found
// in the cache is removed itself, its target never touched.
package cacheprune

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nucleus-run/nucleus/cachedir"
	"github.com/nucleus-run/nucleus/nixbundle"
)

// SeccompSub is the compiled seccomp filters' dir in the cache dir.
const SeccompSub = "seccomp"

// Options for Prune.
type Options struct {
	// Dir is the cache dir (cachedir.Root if empty).
	Dir string
	// All removes entries in use too.
	All bool
	// SeccompInUse holds the cached programs (KEY.bpf paths) containers
	// were started with; kept unless All.
	SeccompInUse map[string]bool
	// NixStateDir is where GC roots are registered (/nix/var/nix if empty).
	NixStateDir string
}

// Kind names what an entry is, as the report says it.
type Kind string

const (
	BundleCache    Kind = "bundle cache entries"
	SandboxBundles Kind = "sandbox bundles"
	SeccompFilters Kind = "seccomp filters"
)

// Kinds in report order, with their sub-dirs.
var Kinds = []struct {
	Kind Kind
	Sub  string
}{{BundleCache, nixbundle.BundleCacheSub}, {SandboxBundles, nixbundle.SandboxSub}, {SeccompFilters, SeccompSub}}

// Entry is one removed (or kept) cache entry.
type Entry struct {
	Kind  Kind
	Path  string
	Bytes int64
	// Why it was kept ("" if removed).
	Why string
}

// Report is what Prune did.
type Report struct {
	Dir     string
	Removed []Entry
	Kept    []Entry
}

// Freed is the bytes removed of kind ("" for all).
func (r *Report) Freed(kind Kind) (n int64, count int) {
	for _, e := range r.Removed {
		if kind == "" || e.Kind == kind {
			n += e.Bytes
			count++
		}
	}
	return n, count
}

// Prune removes the cache dir's entries (see the package doc). A missing
// cache dir or sub-dir has nothing to free.
func Prune(o Options) (*Report, error) {
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = cachedir.Root(); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Dir: dir}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return rep, nil
	}
	if err := cachedir.Check(dir); err != nil {
		return nil, err
	}
	if err := pruneLegacy(rep, dir); err != nil {
		return rep, err
	}
	for _, k := range Kinds {
		sub := filepath.Join(dir, k.Sub)
		if _, err := os.Lstat(sub); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := cachedir.Check(sub); err != nil {
			return rep, err
		}
		var err error
		switch k.Kind {
		case BundleCache:
			err = pruneFiles(rep, k.Kind, sub, o.All, func(string) string { return "" })
		case SeccompFilters:
			err = pruneFiles(rep, k.Kind, sub, o.All, func(key string) string {
				if !o.All && o.SeccompInUse[filepath.Join(sub, key+".bpf")] {
					return "a container in the state root was started with it"
				}
				return ""
			})
		case SandboxBundles:
			err = pruneSandboxes(rep, sub, o)
		}
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// pruneFiles removes the entries of sub, grouped by key (a seccomp
// filter is KEY.bpf and KEY.sha256), except those keep names a reason for
// and files still being written (a fresh temporary file).
func pruneFiles(rep *Report, kind Kind, sub string, all bool, keep func(key string) string) error {
	entries, err := os.ReadDir(sub)
	if err != nil {
		return err
	}
	var keys []string
	groups := map[string][]fs.DirEntry{}
	for _, e := range entries {
		key, _, _ := strings.Cut(e.Name(), ".")
		if writing(e) {
			if all {
				key = e.Name()
			} else {
				path := filepath.Join(sub, e.Name())
				rep.Kept = append(rep.Kept, Entry{Kind: kind, Path: path, Bytes: du(path), Why: "being written"})
				continue
			}
		}
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], e)
	}
	for _, key := range keys {
		var size int64
		var paths []string
		for _, e := range groups[key] {
			path := filepath.Join(sub, e.Name())
			paths = append(paths, path)
			size += du(path)
		}
		first := filepath.Join(sub, key)
		if why := keep(key); why != "" {
			rep.Kept = append(rep.Kept, Entry{Kind: kind, Path: first, Bytes: size, Why: why})
			continue
		}
		for _, path := range paths {
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove %s: %w", path, err)
			}
		}
		rep.Removed = append(rep.Removed, Entry{Kind: kind, Path: first, Bytes: size})
	}
	return nil
}

// writing reports a temporary file (.NAME.tmp-*, .tmp-*) young enough
// that a nucleus may still be writing it; older ones are a crash's
// leftovers.
func writing(e fs.DirEntry) bool {
	if !strings.HasPrefix(e.Name(), ".") || !strings.Contains(e.Name(), "tmp-") {
		return false
	}
	info, err := e.Info()
	return err == nil && time.Since(info.ModTime()) < 10*time.Minute
}

// pruneSandboxes removes each sandbox bundle (with its GC root, its
// temporary siblings and its lock file) unless a sandbox holds its lock.
func pruneSandboxes(rep *Report, sub string, o Options) error {
	entries, err := os.ReadDir(sub)
	if err != nil {
		return err
	}
	// Group by bundle name: NAME, NAME.lock, .NAME.tmp-* (a bundle being
	// written, or left by a crash).
	groups := map[string][]string{}
	for _, e := range entries {
		n := e.Name()
		name := strings.TrimSuffix(n, ".lock")
		if rest, ok := strings.CutPrefix(n, "."); ok {
			name, _, _ = strings.Cut(rest, ".tmp-")
		}
		groups[name] = append(groups[name], n)
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		bundle := filepath.Join(sub, name)
		var size int64
		for _, n := range groups[name] {
			size += du(filepath.Join(sub, n))
		}
		release, err := cachedir.TryExclusive(nixbundle.SandboxLock(bundle))
		if errors.Is(err, cachedir.ErrBusy) && !o.All {
			rep.Kept = append(rep.Kept, Entry{Kind: SandboxBundles, Path: bundle, Bytes: size, Why: "a running nucleus sandbox uses it"})
			continue
		}
		if err != nil && !errors.Is(err, cachedir.ErrBusy) {
			return err
		}
		err = func() error {
			if release != nil {
				defer release()
			}
			for _, n := range groups[name] {
				path := filepath.Join(sub, n)
				st, err := os.Lstat(path)
				if err != nil {
					continue
				}
				if st.IsDir() {
					// A bundle: its GC root goes too (a temporary one
					// has none registered; RemoveBundle checks).
					err = nixbundle.RemoveBundle(path, o.NixStateDir)
				} else {
					err = os.Remove(path)
				}
				if err != nil {
					return fmt.Errorf("remove %s: %w", path, err)
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
		rep.Removed = append(rep.Removed, Entry{Kind: SandboxBundles, Path: bundle, Bytes: size})
	}
	return nil
}

// pruneLegacy removes bundle cache entries (KEY.json, KEY a SHA-256)
// that earlier nucleus builds kept in $NUCLEUS_CACHE_DIR itself.
func pruneLegacy(rep *Report, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		key, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		size := du(path)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		rep.Removed = append(rep.Removed, Entry{Kind: BundleCache, Path: path, Bytes: size})
	}
	return nil
}

// du is the apparent size of path's regular files, symlinks not followed.
func du(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
