// Package lockdown reads the kernel's lockdown level and refuses a start
// when it is below what a service asks for (--require-lockdown).
package lockdown

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/nucleus-run/nucleus/opterr"
)

// Level is a lockdown level, ordered: None < Integrity < Confidentiality.
type Level int

const (
	None Level = iota
	Integrity
	Confidentiality
)

var names = []string{"none", "integrity", "confidentiality"}

func (l Level) String() string {
	if l < 0 || int(l) >= len(names) {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return names[l]
}

// Path is where the lockdown LSM reports the level.
const Path = "/sys/kernel/security/lockdown"

// ErrNotMet: the kernel's lockdown is below what was required, or the
// kernel has no lockdown LSM at all (which is never a pass).
var ErrNotMet = errors.New("kernel lockdown requirement not met")

// Parse reads a required level: integrity or confidentiality ("none"
// requires nothing and is refused as a mistake).
func Parse(s string) (Level, error) {
	switch s {
	case "integrity":
		return Integrity, nil
	case "confidentiality":
		return Confidentiality, nil
	}
	return 0, opterr.Errorf("require-lockdown", "%q: want integrity or confidentiality", s)
}

// Current reads the kernel's level from path (Path): the file lists every
// level with the current one in brackets ("none [integrity] confidentiality").
func Current(path string) (Level, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, f := range strings.Fields(string(data)) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			name := strings.Trim(f, "[]")
			for i, n := range names {
				if n == name {
					return Level(i), nil
				}
			}
			return 0, fmt.Errorf("%s: unknown level %q", path, name)
		}
	}
	return 0, fmt.Errorf("%s: no current level in %q", path, strings.TrimSpace(string(data)))
}

// Require refuses unless the kernel (as path reports it) is locked down at
// least at want. The error names the option, so the CLI shows the flag.
func Require(path string, want Level) error {
	got, err := Current(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &opterr.Error{Option: "require-lockdown", Err: ErrNotMet,
			Msg: fmt.Sprintf("%s: this kernel has no lockdown LSM (%s is absent), so it is not locked down: refusing to start", want, path)}
	}
	if err != nil {
		return &opterr.Error{Option: "require-lockdown", Err: ErrNotMet, Msg: fmt.Sprintf("%s: %v: refusing to start", want, err)}
	}
	if got < want {
		return &opterr.Error{Option: "require-lockdown", Err: ErrNotMet,
			Msg: fmt.Sprintf("%s: the kernel's lockdown is %s (%s): refusing to start", want, got, path)}
	}
	return nil
}
