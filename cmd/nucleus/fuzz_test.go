package main

import (
	"errors"
	"strings"
	"testing"
)

// FuzzCommandLine: any command line (words split at NUL) is rewritten or
// refused with one line, never a panic; what follows -- is untouched.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"run\x00-d\x00c1\x00--bundle\x00b", "exec\x00c1\x00sh\x00-c\x00x", "kill\x00c1\x000\x00--all", "update\x00c1\x00--memory",
		"sandbox\x00--\x00-x", "policy\x00chek", "--root\x00", "-", "--", "delete\x00--force=\x00c1", "ps\x00c1\x00-ef", "\x00\x00",
	} {
		f.Add(s)
	}
	app := newApp()
	f.Fuzz(func(t *testing.T, line string) {
		args := append([]string{"nucleus"}, strings.Split(line, "\x00")...)
		out, err := canonicalFlags(app, args)
		if err != nil {
			if !errors.Is(err, errUsage) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%q: error %q: want one usage line", args, err)
			}
			return
		}
		if out[0] != "nucleus" {
			t.Errorf("%q: rewritten to %q", args, out)
		}
		// Everything from the first -- after the command on is the
		// command's, in order.
		if i := indexOf(args[1:], "--"); i >= 0 {
			tail := args[1+i+1:]
			if len(out) < len(tail) || strings.Join(out[len(out)-len(tail):], "\x00") != strings.Join(tail, "\x00") {
				t.Errorf("%q: words after -- changed: %q", args, out)
			}
		}
	})
}

func indexOf(s []string, w string) int {
	for i, v := range s {
		if v == w {
			return i
		}
	}
	return -1
}
