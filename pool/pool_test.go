package pool

import (
	"errors"
	"strings"
	"testing"

	"github.com/nucleus-run/nucleus/policy"
	"github.com/nucleus-run/nucleus/runtime"
)

func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "warm-1": true, "x_y.z": true, "": false, "-a": false, "a/b": false, "a b": false,
		"0123456789012345678901234567890123456789012345678": false} {
		if validName(name) != ok {
			t.Errorf("validName(%q) = %v", name, !ok)
		}
	}
	for id, ok := range map[string]bool{"p-0123456789ab": true, "p-0123456789AB": false, "p-0123456789a": false, "p-b-0123456789a": false, "q-0123456789ab": false} {
		if isMemberID("p", id) != ok {
			t.Errorf("isMemberID(p, %q) = %v", id, !ok)
		}
	}
}

// Run refuses a request it can't serve before it looks at the pool, so
// bad input costs no member.
func TestRunRefusesBadInput(t *testing.T) {
	r, err := runtime.New(t.TempDir(), false, "auto")
	if err != nil {
		t.Fatal(err)
	}
	p := &Pools{R: r}
	for _, c := range []struct {
		o    runtime.PooledRun
		want string
	}{
		{runtime.PooledRun{}, "no command"},
		{runtime.PooledRun{Args: []string{"true"}, Workspace: t.TempDir(), WorkspaceKind: "bogus"}, `kind "bogus"`},
		{runtime.PooledRun{Args: []string{"true"}, Workspace: "/nonexistent/p2", WorkspaceKind: policy.WorkspaceBindRO}, "not a directory"},
	} {
		res, err := p.Run("nopool", c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || res.Status != -1 {
			t.Errorf("Run(%+v): %v (status %d), want an error with %q", c.o, err, res.Status, c.want)
		}
	}
	if _, err := p.Run("nopool", runtime.PooledRun{Args: []string{"true"}}); !errors.Is(err, ErrNotExist) {
		t.Errorf("Run on a missing pool: %v, want ErrNotExist", err)
	}
}
