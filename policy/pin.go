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
