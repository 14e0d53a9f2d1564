package runtime

import (
	"github.com/nucleus-run/nucleus/network"
)

// checkNetwork refuses a network the engine cannot give.
func checkNetwork(o CreateOptions) error {
	if o.Network == nil {
		return nil
	}
	return o.Network.Check()
}

// releaseNetwork removes container id's network, if it has one (a
// record, written before anything else was made, says so).
func (r *Runtime) releaseNetwork(id string) error {
	if !network.Has(r.Root, id) {
		return nil
	}
	return network.Teardown(r.Root, id)
}

// annotateNetwork adds a bridged container's addresses to its state.
func (r *Runtime) annotateNetwork(st *State) {
	if a := network.AddressAnnotation(r.Root, st.ID); a != "" {
		if st.Annotations == nil {
			st.Annotations = map[string]string{}
		}
		st.Annotations[network.Annotation] = a
	}
}
