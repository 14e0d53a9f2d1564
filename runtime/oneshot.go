package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nucleus-run/nucleus/runtime/engine"
)

// A foreground sandbox lives as long as the nucleus process running it:
// that process deletes it when the command ends. Killed with SIGKILL, it
// can't, and the container would run on, unbounded by --timeout, with its
// network, cgroups and workspace copies. So the process leaves its pid and
// start time at <root>/@oneshot-<id>, and the next command that sweeps the
// root (list, sandbox, gc) removes a sandbox whose owner is gone.

// oneShotGrace is how long an unreadable owner record is taken for one
// being written.
const oneShotGrace = 5 * time.Second

type oneShotOwner struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

func (r *Runtime) oneShotPath(id string) string {
	return filepath.Join(r.Root, engine.OneShotPrefix+id)
}

// markOneShot records this process as the owner of sandbox id and returns
// the function that removes the record once the sandbox is gone.
func (r *Runtime) markOneShot(id string) (func(), error) {
	start, err := processStart(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	path := r.oneShotPath(id)
	if err := writeJSONFile(path, oneShotOwner{Pid: os.Getpid(), Start: start}); err != nil {
		return nil, fmt.Errorf("sandbox %s: owner record: %w", id, err)
	}
	return func() { _ = os.Remove(path) }, nil
}

// processStart is the start time of pid (clock ticks since boot), which
// tells a live process from a later one given the same pid.
func processStart(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses: fields count from
	// the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	fields := strings.Fields(string(data[i+1:]))
	// starttime is field 22 of stat; fields here start at field 3.
	if len(fields) < 20 {
		return 0, errors.New("short /proc stat")
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// ownerAlive reports whether the process recorded for sandbox id still
// runs. An unreadable record counts as alive only while it is new (its
// owner may be writing it).
func (r *Runtime) ownerAlive(id string) bool {
	path := r.oneShotPath(id)
	data, err := os.ReadFile(path)
	var o oneShotOwner
	if err != nil || json.Unmarshal(data, &o) != nil || o.Pid <= 0 {
		fi, serr := os.Stat(path)
		return serr == nil && time.Since(fi.ModTime()) < oneShotGrace
	}
	start, err := processStart(o.Pid)
	return err == nil && start == o.Start
}

// sweepOneShot removes foreground sandbox id if its nucleus process is
// gone, and then calls done with its id.
func (r *Runtime) sweepOneShot(id string, done func(string)) error {
	if r.ownerAlive(id) {
		return nil
	}
	if err := r.Delete(id, true); err != nil && !errors.Is(err, ErrNotExist) {
		logrus.Warnf("remove sandbox %s (its nucleus is gone): %v", id, err)
		return fmt.Errorf("sandbox %s: %w", id, err)
	}
	_ = os.Remove(r.oneShotPath(id))
	if done != nil {
		done(id)
	}
	return nil
}
