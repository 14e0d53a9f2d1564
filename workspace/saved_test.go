package workspace

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestSavedRoundTrip: a Copy saved after In and resumed (as a later
// `nucleus delete` does) writes back exactly what the live one would: the
// sandbox's edit, and not a file the host changed meanwhile.
func TestSavedRoundTrip(t *testing.T) {
	orig, dir, dropped := setup(t)
	write(t, filepath.Join(orig, "edited"), "old", 0o644)
	write(t, filepath.Join(orig, "host"), "host", 0o644)
	c := copyIn(t, orig, dir, dropped)
	c.MaxBytes = 1 << 20
	data, err := json.Marshal(c.Save())
	if err != nil {
		t.Fatal(err)
	}
	var saved Saved
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "edited"), "sandbox", 0o644)
	write(t, filepath.Join(orig, "host"), "host edit", 0o644)
	r := Resume(saved, func(p, why string) { dropped[p] = why })
	if r.MaxBytes != 1<<20 {
		t.Errorf("budget %d after resume", r.MaxBytes)
	}
	if err := r.Back(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(orig, "edited")); string(got) != "sandbox" {
		t.Errorf("sandbox edit: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(orig, "host")); string(got) != "host edit" {
		t.Errorf("untouched copy overwrote the host's edit: %q", got)
	}
}
