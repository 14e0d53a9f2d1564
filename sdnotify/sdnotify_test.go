package sdnotify

import (
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	got := Filter([]byte("MAINPID=1\nREADY=1\nSTATUS=up\nFDSTORE=1\nWATCHDOG=1\nX=y\nEXTEND_TIMEOUT_USEC=5"))
	if strings.Join(got, "|") != "READY=1|STATUS=up|EXTEND_TIMEOUT_USEC=5" {
		t.Errorf("Filter: %q", got)
	}
	if Filter([]byte("MAINPID=4242")) != nil {
		t.Error("a MAINPID alone was kept")
	}
}
