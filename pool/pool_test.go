package pool

import "testing"

func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{"a": true, "warm-1": true, "x_y.z": true, "": false, "-a": false, "a/b": false, "a b": false,
		"0123456789012345678901234567890123456789012345678": false} {
		if validName(name) != ok {
			t.Errorf("validName(%q) = %v", name, !ok)
		}
	}
	for id, ok := range map[string]bool{"p-0123456789ab": true, "p-0123456789AB": false, "p-0123456789a": false, "p-b-0123456789a": false, "q-0123456789ab": false} {
		if isMemberID("p", id) != ok {
			t.Errorf("isMemberID(p, %q) = %v", id, !ok)
		}
	}
}
