package spec

import (
	"strings"
	"testing"
)

func TestValidateIDAccepts(t *testing.T) {
	for _, id := range []string{
		"a", "core-1", "A_b+c.d", "0", "x.y", "...x", strings.Repeat("a", MaxIDLength),
	} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
}

func TestValidateIDRejects(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string
	}{
		{"", "container id cannot be empty"},
		{".", `invalid container id "."`},
		{"..", `invalid container id ".."`},
		{"a/b", `character '/' not allowed`},
		{"/abs", `character '/' not allowed`},
		{"../etc", `character '/' not allowed`},
		{"a b", `character ' ' not allowed`},
		{"a\x00b", `not allowed`},
		{"a\nb", `not allowed`},
		{"é", `not allowed`},
		{"a:b", `character ':' not allowed`},
		{strings.Repeat("a", MaxIDLength+1), "longer than 255 characters"},
		{strings.Repeat("b", 300), "longer than 255 characters"},
	} {
		err := ValidateID(tc.id)
		if err == nil {
			t.Errorf("ValidateID(%q) = nil, want an error containing %q", tc.id, tc.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) {
			t.Errorf("ValidateID(%q) = %q, want it to contain %q", tc.id, msg, tc.want)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("ValidateID(%q): message is not one line: %q", tc.id, msg)
		}
		if len(msg) > 200 {
			t.Errorf("ValidateID(%q): message is %d bytes long; an overlong id must be abbreviated: %q", tc.id, len(msg), msg)
		}
	}
}
