package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/nucleus-run/nucleus/runtime/engine"
)

// Ps prints the container's processes as runc does: a JSON list of host
// pids, or ps(1)'s output (default -ef) narrowed to them.
func (r *Engine) Ps(id string, o engine.PsOptions, w io.Writer) error {
	pids, err := r.pids(id)
	if err != nil {
		return err
	}
	if o.Format == "json" {
		if pids == nil {
			pids = []int{}
		}
		return json.NewEncoder(w).Encode(pids)
	}
	psArgs := o.Args
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ps %s: %w: %s", strings.Join(psArgs, " "), err, out)
	}
	lines := strings.Split(string(out), "\n")
	pidIndex := slices.Index(strings.Fields(lines[0]), "PID")
	if pidIndex < 0 {
		return errors.New("ps output has no PID column")
	}
	fmt.Fprintln(w, lines[0])
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) <= pidIndex {
			continue
		}
		if p, err := strconv.Atoi(fields[pidIndex]); err == nil && slices.Contains(pids, p) {
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

// pids lists the host pids of every process in the container.
func (r *Engine) pids(id string) ([]int, error) {
	c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	pids, err := c.Processes()
	if err != nil {
		return nil, fmt.Errorf("processes of %s: %w", id, err)
	}
	return pids, nil
}
