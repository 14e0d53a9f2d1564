package spec

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Marshal returns the bytes of config.json for s: indented JSON with a final
// newline. Writers of bundles use it so the same spec always gives the same
// bytes (attestations hash them).
func Marshal(s *specs.Spec) ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
