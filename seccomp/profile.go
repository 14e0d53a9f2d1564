package seccomp

import (
	"encoding/json"
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ParseProfile parses an OCI seccomp profile (the linux.seccomp
// object of config.json) and checks it can be applied.
func ParseProfile(file string, data []byte) (*specs.LinuxSeccomp, error) {
	var s specs.LinuxSeccomp
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: not an OCI seccomp profile: %w", file, err)
	}
	if s.DefaultAction == "" {
		return nil, fmt.Errorf("%s: defaultAction: must be set", file)
	}
	if !knownAction(s.DefaultAction) {
		return nil, fmt.Errorf("%s: defaultAction: unknown action %q", file, s.DefaultAction)
	}
	for i, sc := range s.Syscalls {
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("%s: syscalls[%d].names: must not be empty", file, i)
		}
		if !knownAction(sc.Action) {
			return nil, fmt.Errorf("%s: syscalls[%d].action: unknown action %q", file, i, sc.Action)
		}
		for j, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("%s: syscalls[%d].args[%d].index: %d is not an argument index (0-5)", file, i, j, a.Index)
			}
			if !knownOp(a.Op) {
				return nil, fmt.Errorf("%s: syscalls[%d].args[%d].op: unknown operator %q", file, i, j, a.Op)
			}
		}
	}
	return &s, nil
}

func knownAction(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActErrno,
		specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify:
		return true
	}
	return false
}

func knownOp(o specs.LinuxSeccompOperator) bool {
	switch o {
	case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual,
		specs.OpGreaterThan, specs.OpMaskedEqual:
		return true
	}
	return false
}
