package health

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// Annotation carries a container's health in `nucleus state`.
const Annotation = "org.nucleus.health"

// statusName is the health record in the container's state directory
// (removed with it).
const statusName = "nucleus-health.json"

// Status is the record a monitor keeps up to date.
type Status struct {
	State    State     `json:"state"`
	Failures int       `json:"failures"`
	Since    time.Time `json:"since"`
	Last     Result    `json:"last"`
}

// WriteStatus replaces the record in stateDir (atomically: state readers
// never see half of it). A state dir that is gone (the container was
// deleted) is not an error.
func WriteStatus(stateDir string, s Status) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := filepath.Join(stateDir, "."+statusName)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	return os.Rename(tmp, filepath.Join(stateDir, statusName))
}

// ReadState is the state recorded in stateDir, "" if none.
func ReadState(stateDir string) State {
	data, err := os.ReadFile(filepath.Join(stateDir, statusName))
	if err != nil {
		return ""
	}
	var s Status
	if json.Unmarshal(data, &s) != nil {
		return ""
	}
	return s.State
}
