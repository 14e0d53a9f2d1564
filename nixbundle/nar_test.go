package nixbundle

import (
	"crypto/sha1"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestNix32(t *testing.T) {
	// sha1("") in Nix base32, as `nix hash to-base32 --type sha1` prints it.
	sum := sha1.Sum(nil)
	if got, want := nix32(sum[:]), "143xibwh31h9bvxzalr0sjvbbvpa6ffs"; got != want {
		t.Fatalf("nix32(sha1(\"\")) = %s, want %s", got, want)
	}
}

func TestNARHashMatchesNix(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "empty"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "run"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(root, "data"), []byte("1234567"), 0o644)
	os.WriteFile(filepath.Join(root, "eight"), []byte("12345678"), 0o644)
	os.WriteFile(filepath.Join(root, "zero"), nil, 0o644)
	os.Symlink("bin/run", filepath.Join(root, "link"))
	got, err := NARHash(root)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "sha256-") || len(got) != len("sha256-")+44 {
		t.Fatalf("NARHash = %q, want sha256-<base64>", got)
	}
	// A single file hashes differently from a directory holding it.
	single, err := NARHash(filepath.Join(root, "data"))
	if err != nil || single == got {
		t.Fatalf("single file hash %q, err %v", single, err)
	}
	if _, err := exec.LookPath("nix"); err != nil {
		t.Skip("nix not installed: cannot compare with `nix hash path`")
	}
	for _, p := range []string{root, filepath.Join(root, "data"), filepath.Join(root, "link")} {
		h, _ := NARHash(p)
		out, err := exec.Command("nix", "--extra-experimental-features", "nix-command", "hash", "path", "--type", "sha256", "--sri", p).CombinedOutput()
		if err != nil {
			t.Skipf("nix hash path: %v: %s", err, out)
		}
		if want := strings.TrimSpace(string(out)); h != want {
			t.Errorf("NARHash(%s) = %s, nix hash path = %s", p, h, want)
		}
	}
}
