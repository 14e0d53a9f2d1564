package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The kinds of policy file a command line takes: --seccomp-profile,
// --caps-policy, --landlock-policy.
const (
	KindSeccomp  = "seccomp"
	KindCaps     = "caps"
	KindLandlock = "landlock"
)

// Kinds lists every policy file kind.
var Kinds = []string{KindSeccomp, KindCaps, KindLandlock}

// ErrUnknownKind is a policy file whose kind its fields do not tell.
var ErrUnknownKind = errors.New("not a seccomp profile, capability policy or Landlock policy")

// fieldKinds maps each kind's distinguishing top-level fields to it.
var fieldKinds = map[string]string{
	"defaultAction": KindSeccomp, "defaultErrnoRet": KindSeccomp, "architectures": KindSeccomp,
	"flags": KindSeccomp, "listenerPath": KindSeccomp, "listenerMetadata": KindSeccomp, "syscalls": KindSeccomp,
	"keep": KindCaps,
	"read": KindLandlock, "write": KindLandlock, "exec": KindLandlock, "no_exec_root": KindLandlock,
}

// DetectKind tells a policy file's kind by its top-level fields; fields of
// two kinds, or of none, are an error naming them (the parser of the kind
// then names a stray field).
func DetectKind(file string, data []byte) (string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return "", fmt.Errorf("%s: %w: not a JSON object: %v", file, ErrUnknownKind, err)
	}
	found := map[string][]string{}
	for field := range top {
		if k, ok := fieldKinds[field]; ok {
			found[k] = append(found[k], field)
		}
	}
	switch len(found) {
	case 1:
		for k := range found {
			return k, nil
		}
	case 0:
		return "", fmt.Errorf("%s: %w (no field of any; give --kind %s)", file, ErrUnknownKind, strings.Join(Kinds, "|"))
	}
	var parts []string
	for _, k := range Kinds {
		if fields := found[k]; len(fields) > 0 {
			sort.Strings(fields)
			parts = append(parts, fmt.Sprintf("%s (%s)", k, strings.Join(fields, ", ")))
		}
	}
	return "", fmt.Errorf("%s: %w: has fields of %s; give --kind", file, ErrUnknownKind, strings.Join(parts, " and "))
}

// ValidKind reports whether k names a policy file kind.
func ValidKind(k string) bool { return slices.Contains(Kinds, k) }
