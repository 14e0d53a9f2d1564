package seccomp

import (
	"testing"
)

// The parsers take user files; they must reject bad input with an error,
// never panic, and accept what they produce themselves.

func FuzzParseProfile(f *testing.F) {
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_KILL_PROCESS","architectures":["SCMP_ARCH_X86_64"],"syscalls":[]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile("fuzz.json", data)
		if err != nil {
			return
		}
		if p.DefaultAction == "" {
			t.Fatalf("accepted a profile without defaultAction: %q", data)
		}
		_ = AllowedSyscallCount(p)
	})
}

func FuzzParseTrace(f *testing.F) {
	f.Add([]byte(`{"command":["sh"],"status":0,"syscalls":["read","write"]}`))
	f.Add([]byte(`{"syscalls":["a b"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTrace("fuzz.json", data)
		if err != nil {
			return
		}
		p, _ := Generate([]*Trace{tr})
		if p.DefaultAction != "SCMP_ACT_KILL_PROCESS" {
			t.Fatal("generated profile does not kill by default")
		}
	})
}
