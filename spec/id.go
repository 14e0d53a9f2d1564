// Package spec is the only place Nucleus reads, defaults and validates an OCI
// runtime config (config.json). Every error it returns names the file and the
// JSON field at fault, so a user can fix a bundle from one line of output.
package spec

import (
	"fmt"
)

// MaxIDLength bounds container ids: the id becomes a directory name under
// --root and a cgroup directory name, both limited by NAME_MAX.
const MaxIDLength = 255

// ValidateID checks a container id the way libcontainer will, but up front
// and with a message that says what is wrong.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("container id cannot be empty")
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("container id %.20q...: longer than %d characters", id, MaxIDLength)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: not a usable name", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '+', c == '-', c == '.':
		default:
			return fmt.Errorf("invalid container id %q: character %q not allowed (use letters, digits, _ + - .)", id, c)
		}
	}
	return nil
}
