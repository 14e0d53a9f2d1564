package policy

import (
	"testing"
)

// The parsers take user files; they must reject bad input with an error,
// never panic, and accept what they produce themselves.

func FuzzParseWorkspace(f *testing.F) {
	for _, s := range []string{"/tmp/w", "/tmp/w:bind-ro", "/tmp/w:/data:copy-in-out", ":", "a::b", "/x:/", "/x:rw"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		w, err := ParseWorkspace(arg)
		if err != nil {
			return
		}
		if w.Source == "" || w.Dest == "" || w.Dest == "/" || w.Dest[0] != '/' {
			t.Fatalf("ParseWorkspace(%q) = %+v", arg, w)
		}
		switch w.Kind {
		case WorkspaceBindRW, WorkspaceBindRO, WorkspaceCopyInOut:
		default:
			t.Fatalf("ParseWorkspace(%q): kind %q", arg, w.Kind)
		}
	})
}

func FuzzParseCapsPolicy(f *testing.F) {
	f.Add([]byte(`{"keep":["CAP_NET_BIND_SERVICE"]}`))
	f.Add([]byte(`{"keep":[]}`))
	f.Add([]byte(`{"keep":["net_admin"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCapsPolicy("fuzz.json", data)
		if err != nil {
			return
		}
		for _, k := range c.Keep {
			if len(k) < 5 || k[:4] != "CAP_" {
				t.Fatalf("accepted capability %q", k)
			}
		}
	})
}

func FuzzParseLandlockRules(f *testing.F) {
	f.Add([]byte(`{"read":["/srv"],"write":["/var/lib/app"],"exec":["/opt/app"],"no_exec_root":["/home"]}`))
	f.Add([]byte(`{"write":["relative"]}`))
	f.Add([]byte(`{"no_exec_root":["/a/b"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseLandlockRules("fuzz.json", data)
		if err != nil {
			return
		}
		for _, group := range [][]string{r.Read, r.Write, r.Exec, r.NoExecRoot} {
			for _, p := range group {
				if p == "" || p[0] != '/' {
					t.Fatalf("accepted path %q", p)
				}
			}
		}
	})
}
