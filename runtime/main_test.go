package runtime

import (
	"os"
	"testing"

	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of the container's init
)

// TestMain lets this test binary be a native container's init, as
// libcontainer re-executes /proc/self/exe init for every container.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		libcontainer.Init()
	}
	os.Exit(m.Run())
}
