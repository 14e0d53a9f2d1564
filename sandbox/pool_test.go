package sandbox_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nucleus-run/nucleus/pool"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/sandbox"
)

// poolMembers are the pool's sandboxes under the root.
func poolMembers(name string) []string {
	var ids []string
	entries, _ := os.ReadDir(exampleRoot)
	for _, e := range entries {
		if id, ok := strings.CutPrefix(e.Name(), "@sandbox-"); ok && strings.HasPrefix(id, name+"-") {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestFromPool: the API against a real pool, as the command line's
// sandbox --pool: a warm run's workspace is bound (bind-ro is read-only,
// bind-rw writes land as the directory's owner) or copied; cancelling
// the context kills the command; an empty pool runs cold and says so;
// the used sandboxes are destroyed, and RemovePool leaves nothing.
func TestFromPool(t *testing.T) {
	ctx := context.Background()
	name := "p2-api"
	if err := sandbox.CreatePool(ctx, sandbox.Pool{Name: name, Size: 2}, sandbox.Options{Root: exampleRoot, Bundle: exampleBundle}); err != nil {
		t.Fatal(err)
	}
	defer sandbox.RemovePool(exampleRoot, name)
	first := poolMembers(name)
	if len(first) != 2 {
		t.Fatalf("pool of 2 has %v", first)
	}
	work := t.TempDir()
	os.Chmod(filepath.Dir(work), 0o755)
	os.WriteFile(filepath.Join(work, "in.txt"), []byte("host\n"), 0o644)
	os.Chown(filepath.Join(work, "in.txt"), 1000, 1000)
	os.Chown(work, 1000, 1000)

	var out, errOut bytes.Buffer
	res, err := sandbox.FromPool(ctx, exampleRoot, name, sandbox.Cmd{Args: []string{"sh", "-c", "cat in.txt; echo x > new.txt"},
		Stdout: &out, Stderr: &errOut}, &sandbox.Workspace{Host: work, Kind: "bind-ro"})
	if err != nil || res.Status == 0 || res.Pool != sandbox.PoolWarm || out.String() != "host\n" || !strings.Contains(errOut.String(), "Read-only") {
		t.Errorf("bind-ro: %v, %+v, stdout %q, stderr %q", err, res, out.String(), errOut.String())
	}
	if _, err := os.Stat(filepath.Join(work, "new.txt")); err == nil {
		t.Errorf("a bind-ro workspace was written")
	}
	used := res.ID

	// Cancelling the context kills the command.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	res, err = sandbox.FromPool(short, exampleRoot, name, sandbox.Cmd{Args: []string{"sh", "-c", "echo started > started; while :; do :; done"}},
		&sandbox.Workspace{Host: work, Kind: "bind-rw"})
	if err != nil || res.Status != 137 || res.Reason != "timeout" || res.Pool != sandbox.PoolWarm {
		t.Errorf("cancelled: %v, %+v", err, res)
	}
	if st, err := os.Stat(filepath.Join(work, "started")); err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000 {
		t.Errorf("bind-rw: the command's file is not on the host as the owner's: %v", err)
	}
	// Taken ones are destroyed, never reused.
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range []string{used, res.ID} {
		for {
			if _, err := os.Stat(filepath.Join(exampleRoot, "@sandbox-"+id)); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("used sandbox %s not removed", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := sandbox.RemovePool(exampleRoot, name); err != nil {
		t.Fatal(err)
	}
	if ids := poolMembers(name); len(ids) != 0 {
		t.Errorf("after RemovePool: %v", ids)
	}

	// An empty pool (its one member taken here): cold, from the pool's
	// config.
	if err := sandbox.CreatePool(ctx, sandbox.Pool{Name: name, Size: 1}, sandbox.Options{Root: exampleRoot, Bundle: exampleBundle, Env: []string{"FROM_POOL=yes"}}); err != nil {
		t.Fatal(err)
	}
	r, err := runtime.New(exampleRoot, false, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&pool.Pools{R: r}).Take(name); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	res, err = sandbox.FromPool(ctx, exampleRoot, name, sandbox.Cmd{Args: []string{"sh", "-c", "echo $FROM_POOL; cat in.txt"}, Stdout: &out},
		&sandbox.Workspace{Host: work})
	if err != nil || res.Status != 0 || res.Pool != sandbox.PoolCold || out.String() != "yes\nhost\n" {
		t.Errorf("cold: %v, %+v, stdout %q", err, res, out.String())
	}
	if _, err := sandbox.FromPool(ctx, exampleRoot, "p2-none", sandbox.Cmd{Args: []string{"true"}}, nil); !strings.Contains(err.Error(), "no such pool") {
		t.Errorf("a missing pool: %v", err)
	}
	if err := sandbox.RemovePool(exampleRoot, name); err != nil {
		t.Fatal(err)
	}
	if ids := poolMembers(name); len(ids) != 0 {
		t.Errorf("after RemovePool: %v", ids)
	}
	if data, _ := os.ReadFile(filepath.Join(work, "in.txt")); string(data) != "host\n" {
		t.Errorf("the workspace changed: %q", data)
	}
}
