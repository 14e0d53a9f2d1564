package runtime

import (
	"github.com/nucleus-run/nucleus/health"
	"github.com/nucleus-run/nucleus/runtime/engine"
)

// annotateHealth adds the health state a service's monitor recorded.
func (r *Runtime) annotateHealth(st *State) {
	if h := health.ReadState(engine.StateDir(r.Root, st.ID)); h != "" {
		if st.Annotations == nil {
			st.Annotations = map[string]string{}
		}
		st.Annotations[health.Annotation] = string(h)
	}
}
