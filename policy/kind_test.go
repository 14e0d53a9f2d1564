package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestDetectKind(t *testing.T) {
	for _, tc := range []struct{ data, want, errPart string }{
		{`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}`, KindSeccomp, ""},
		{`{"keep":["CAP_CHOWN"]}`, KindCaps, ""},
		{`{"read":["/data"],"no_exec_root":["/opt"]}`, KindLandlock, ""},
		{`{"exec":["/x"]}`, KindLandlock, ""},
		{`{}`, "", "no field of any"},
		{`{"keep":[],"read":[]}`, "", "caps (keep) and landlock (read)"},
		{`[1]`, "", "not a JSON object"},
	} {
		got, err := DetectKind("f.json", []byte(tc.data))
		if tc.errPart == "" {
			if err != nil || got != tc.want {
				t.Errorf("%s: got %q, %v; want %q", tc.data, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrUnknownKind) || !strings.Contains(err.Error(), tc.errPart) || !strings.HasPrefix(err.Error(), "f.json: ") {
			t.Errorf("%s: got %q, %v; want an ErrUnknownKind naming %q", tc.data, got, err, tc.errPart)
		}
	}
}
