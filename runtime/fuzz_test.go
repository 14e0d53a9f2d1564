package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzContainerID: the id a command names is user input. state, kill
// and delete (forced too) of any id in an empty root answer in one line,
// never panic, and make nothing, in the root or beside it.
func FuzzContainerID(f *testing.F) {
	for _, s := range []string{"c1", "", ".", "..", "../x", "a/b", "@sandbox-c1", "@rootfs-c1", "@gvisor", "user.slice", strings.Repeat("x", 300), "a\nb", "-f"} {
		f.Add(s)
	}
	parent := f.TempDir()
	root := filepath.Join(parent, "root")
	r, err := New(root, false, "false")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id string) {
		for what, call := range map[string]func() error{
			"state":          func() error { _, err := r.State(id); return err },
			"kill":           func() error { return r.Kill(id, 0, false) },
			"delete":         func() error { return r.Delete(id, false) },
			"delete --force": func() error { return r.Delete(id, true) },
		} {
			err := call()
			if err == nil && what != "delete --force" {
				t.Errorf("%s %q in an empty root succeeded", what, id)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("%s %q: error is not one line: %q", what, id, err)
			}
		}
		if entries, _ := os.ReadDir(parent); len(entries) > 1 || (len(entries) == 1 && entries[0].Name() != "root") {
			t.Fatalf("id %q made %v beside the root", id, entries)
		}
		if entries, _ := os.ReadDir(root); len(entries) > 0 {
			t.Fatalf("id %q left %v in the root", id, entries)
		}
	})
}
