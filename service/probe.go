package service

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nucleus-run/nucleus/health"
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/sdnotify"
)

func encode(c health.Config) string {
	data, _ := json.Marshal(c)
	return string(data)
}

// Probe is the probe child's work: one round of the probes config (as
// Run encodes it) against container id, as a JSON line.
func Probe(r *runtime.Runtime, id, config string) ([]byte, error) {
	var c health.Config
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		return nil, fmt.Errorf("probe config: %w", err)
	}
	var res health.Result
	st, err := r.State(id)
	switch {
	case err != nil:
		res.Detail = err.Error()
	case st.InitProcessPid <= 0 || st.Status != "running":
		res.Detail = fmt.Sprintf("container %s is %s", id, st.Status)
	default:
		res = health.Round(r, id, st.InitProcessPid, c)
	}
	return json.Marshal(res)
}

// specMount is the bind of the relay's directory into the container: the
// flags every mount of a sandbox carries.
func specMount(dir string) specs.Mount {
	return specs.Mount{Destination: dirOf(sdnotify.ContainerSocket), Type: "bind", Source: dir,
		Options: []string{"rbind", "nosuid", "nodev", "noexec"}}
}

func dirOf(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}
