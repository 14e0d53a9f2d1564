package nixbundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nucleus-run/nucleus/cachedir"
)

// The bundle cache: "build once, run many".
//
// A cache entry maps a key to the Plan (output path, closure with NAR
// hashes, locked narHash, entrypoint) that Nix produced, so `nucleus bundle`
// of an unchanged flake writes the bundle without running Nix. The key is
// computed without Nix and changes whenever the flake's locked narHash
// could change:
//
//   - Only local flakes are cached: a path (`.`, `./dir`, `/abs/dir`),
//     `path:DIR` or `git+file:///DIR`, without `?query`, whose DIR holds a
//     flake.nix. Any other reference (github:, a registry name, a flake
//     found by searching upward) always runs Nix.
//   - Source files, as Nix sees them: a path or git+file reference inside a
//     git work tree is a git flake: the files `git ls-files` lists (tracked
//     or staged) in the whole repository, read from the work tree (Nix
//     copies the repository, not just the flake's directory). A `path:`
//     reference, or a directory outside git, is every file under DIR.
//   - The key is SHA-256 over: the format version, the mode and directory,
//     the attribute, --entrypoint and the arguments, and for each source
//     file in sorted order its relative path, its type (file, executable,
//     symlink) and the SHA-256 of its content (or its link target).
//   - A hit is used only if every store path of the cached closure still
//     exists (a garbage-collected path makes it a miss).
//   - A flake whose lock has inputs is cached only if it has a flake.lock
//     (which the key covers); unlocked inputs could change under us.
//   - The key is recomputed after Nix ran; if the source changed meanwhile,
//     nothing is stored.

// cacheFormat changes whenever Plan or the key derivation changes.
const cacheFormat = "nucleus-bundle-cache-v1"

// flakeSource is a local flake's source, as Nix will copy it.
type flakeSource struct {
	Mode string // "git" or "path"
	Root string // the directory Nix copies (a git top level or DIR)
	Dir  string // the directory holding flake.nix
}

// localFlake resolves a flake reference to a local source, or ok=false if
// it is not one the cache handles.
func localFlake(ref string) (src flakeSource, ok bool) {
	forcePath, forceGit := false, false
	dir := ref
	switch {
	case strings.Contains(ref, "?"):
		return src, false
	case strings.HasPrefix(ref, "path:"):
		dir, forcePath = strings.TrimPrefix(ref, "path:"), true
	case strings.HasPrefix(ref, "git+file://"):
		dir, forceGit = strings.TrimPrefix(ref, "git+file://"), true
	case strings.Contains(ref, ":"):
		return src, false
	case !(strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".")):
		return src, false // a registry name like `nixpkgs`
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return src, false
	}
	if st, err := os.Stat(filepath.Join(abs, "flake.nix")); err != nil || !st.Mode().IsRegular() {
		return src, false
	}
	if forcePath {
		return flakeSource{Mode: "path", Root: abs, Dir: abs}, true
	}
	top := gitTop(abs)
	if top == "" {
		if forceGit {
			return src, false
		}
		return flakeSource{Mode: "path", Root: abs, Dir: abs}, true
	}
	if forceGit && top != abs {
		return src, false // git+file with a dir in a subdirectory needs ?dir=
	}
	return flakeSource{Mode: "git", Root: top, Dir: abs}, true
}

// gitTop returns the work tree top level that holds dir, or "".
func gitTop(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if d == "/" || d == "." {
			return ""
		}
	}
}

// sourceFiles lists the files Nix copies for src, relative to src.Root.
func sourceFiles(src flakeSource) ([]string, error) {
	if src.Mode == "git" {
		out, err := exec.Command("git", "-C", src.Root, "ls-files", "-z", "--cached").Output()
		if err != nil {
			return nil, fmt.Errorf("git ls-files in %s: %v", src.Root, err)
		}
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(src.Root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src.Root, path)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			files = append(files, rel+"/")
			return nil
		}
		files = append(files, rel)
		return nil
	})
	return files, err
}

// CacheKey computes the cache key of bundling ref#attr (with the given
// entrypoint and arguments), or ok=false if the reference is not cacheable.
func CacheKey(flakeRef, attr, entrypoint string, args []string) (key string, ok bool, err error) {
	src, ok := localFlake(flakeRef)
	if !ok {
		return "", false, nil
	}
	files, err := sourceFiles(src)
	if err != nil {
		return "", false, err
	}
	sort.Strings(files)
	h := sha256.New()
	hdr, _ := json.Marshal([]any{cacheFormat, src.Mode, src.Root, src.Dir, attr, entrypoint, args})
	h.Write(hdr)
	h.Write([]byte{'\n'})
	buf := make([]byte, 64<<10)
	for _, rel := range files {
		path := filepath.Join(src.Root, rel)
		fmt.Fprintf(h, "%s\x00", rel)
		if strings.HasSuffix(rel, "/") {
			h.Write([]byte("d\n"))
			continue
		}
		st, err := os.Lstat(path)
		switch {
		case err != nil:
			fmt.Fprintf(h, "missing\n")
		case st.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return "", false, err
			}
			fmt.Fprintf(h, "l\x00%s\n", target)
		case st.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return "", false, err
			}
			fh := sha256.New()
			_, err = io.CopyBuffer(fh, f, buf)
			f.Close()
			if err != nil {
				return "", false, err
			}
			kind := "f"
			if st.Mode()&0o100 != 0 {
				kind = "x"
			}
			fmt.Fprintf(h, "%s\x00%x\n", kind, fh.Sum(nil))
		case st.IsDir():
			fmt.Fprintf(h, "d\n") // a submodule: Nix 2.8 does not copy it by default
		default:
			fmt.Fprintf(h, "other\x00%v\n", st.Mode().Type())
		}
	}
	return hex.EncodeToString(h.Sum(nil)), true, nil
}

// hasLockFile reports whether the local flake for ref has a flake.lock.
func hasLockFile(flakeRef string) bool {
	src, ok := localFlake(flakeRef)
	if !ok {
		return false
	}
	_, err := os.Stat(filepath.Join(src.Dir, "flake.lock"))
	return err == nil
}

type cacheEntry struct {
	Format string `json:"format"`
	Key    string `json:"key"`
	Plan   *Plan  `json:"plan"`
}

// loadCache returns the plan cached under key if all its store paths exist.
func loadCache(dir, key string) *Plan {
	data, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return nil
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil || e.Format != cacheFormat || e.Key != key || e.Plan == nil || len(e.Plan.Closure) == 0 {
		return nil
	}
	for _, pi := range e.Plan.Closure {
		if _, err := os.Lstat(pi.Path); err != nil {
			return nil
		}
	}
	if _, err := os.Stat(e.Plan.Entrypoint); err != nil {
		return nil
	}
	return e.Plan
}

// storeCache writes the entry atomically (temp file + rename).
func storeCache(dir, key string, p *Plan) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(cacheEntry{Format: cacheFormat, Key: key, Plan: p})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+key+".tmp-")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, key+".json"))
}

// DefaultCacheDir is bundle/ in the cache dir ($NUCLEUS_CACHE_DIR,
// /var/cache/nucleus for root, the user's cache dir otherwise), made and
// owner-checked (cachedir.Sub): never a shared path in /tmp.
func DefaultCacheDir() (string, error) { return cachedir.Sub(BundleCacheSub) }

// BundleCacheSub is the bundle cache's directory in the cache dir.
const BundleCacheSub = "bundle"
