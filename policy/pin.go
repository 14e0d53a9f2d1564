package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/opencontainers/runc/libcontainer/capabilities"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ReadPinned reads a policy file and, when want is set, refuses it unless
// its SHA-256 is want. flag names the option in errors.
func ReadPinned(flag, file, want string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, file, err)
	}
	if want == "" {
		return data, nil
	}
	want = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(want), "sha256:"))
	if len(want) != 64 {
		return nil, fmt.Errorf("%s %s: pinned sha256 %q: want 64 hex digits", flag, file, want)
	}
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if got != want {
		return nil, fmt.Errorf("%s %s: sha256 mismatch: file has %s, pinned %s; refusing to start", flag, file, got, want)
	}
	return data, nil
}

// ParseSeccompProfile parses an OCI seccomp profile (the linux.seccomp
// object of config.json) and checks it can be applied.
func ParseSeccompProfile(file string, data []byte) (*specs.LinuxSeccomp, error) {
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

// CapsPolicy is a capability policy file: the capabilities a production
// service keeps, all others dropped.
type CapsPolicy struct {
	Keep []string `json:"keep"`
}

// ParseCapsPolicy parses and checks a capability policy file.
func ParseCapsPolicy(file string, data []byte) (*CapsPolicy, error) {
	var c CapsPolicy
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: not a capability policy ({\"keep\": [...]}): %w", file, err)
	}
	for i, name := range c.Keep {
		if !slices.Contains(capabilities.KnownCapabilities(), name) {
			return nil, fmt.Errorf("%s: keep[%d]: %q is not a capability name like CAP_NET_BIND_SERVICE", file, i, name)
		}
	}
	return &c, nil
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
