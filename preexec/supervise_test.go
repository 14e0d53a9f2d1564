package preexec

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/nucleus-run/nucleus/supervise"
)

// TestSupervisorRequestRoundTrip: what the client encodes, the supervisor
// decodes to the same request; what is malformed, it refuses.
func TestSupervisorRequestRoundTrip(t *testing.T) {
	req := supervise.Request{Args: []string{"sh", "-c", "echo hi"}, Env: []string{"A=1", "PATH=/bin"}, Cwd: "/work", UID: 1000, GID: 100}
	b, err := req.Encode()
	if err != nil {
		t.Fatal(err)
	}
	args, env, cwd, uid, gid, err := parseSupervisorRequest(b)
	if err != nil || !slices.Equal(args, req.Args) || !slices.Equal(env, req.Env) || cwd != req.Cwd || uid != 1000 || gid != 100 {
		t.Fatalf("decoded %q %q %q %d:%d %v", args, env, cwd, uid, gid, err)
	}
	bad := map[string][]byte{
		"short":      b[:10],
		"truncated":  b[:len(b)-1],
		"extra":      append(slices.Clone(b), 'x', 0),
		"no NUL":     append(slices.Clone(b[:len(b)-1]), 'x'),
		"bad magic":  append([]byte{1}, b[1:]...),
		"length":     patch(b, 1, uint32(len(b)+1)),
		"argc 0":     patch(b, 2, 0),
		"argc large": patch(b, 2, 1<<31),
		"envc":       patch(b, 3, 3),
		"flags":      patch(b, 6, 1),
	}
	for name, m := range bad {
		if _, _, _, _, _, err := parseSupervisorRequest(m); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, r := range []supervise.Request{
		{Args: []string{"x"}, Cwd: "rel"},
		{Args: []string{"x"}, Cwd: "/", Env: []string{"NOEQUALS"}},
		{Args: []string{""}, Cwd: "/"},
	} {
		if _, err := r.Encode(); err == nil {
			t.Errorf("%+v: encoded", r)
		}
	}
}

func patch(b []byte, field int, v uint32) []byte {
	c := slices.Clone(b)
	binary.LittleEndian.PutUint32(c[field*4:], v)
	return c
}

// FuzzSupervisorRequest: no input crashes the decoder, and whatever it
// accepts is a well-formed request that encodes back to the same bytes.
func FuzzSupervisorRequest(f *testing.F) {
	for _, r := range []supervise.Request{
		{Args: []string{"true"}, Cwd: "/"},
		{Args: []string{"sh", "-c", "x"}, Env: []string{"A=B", "C="}, Cwd: "/tmp", UID: 5, GID: 6},
	} {
		b, _ := r.Encode()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("NXS1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		args, env, cwd, uid, gid, err := parseSupervisorRequest(b)
		if err != nil {
			return
		}
		again, err := supervise.Request{Args: args, Env: env, Cwd: cwd, UID: uid, GID: gid}.Encode()
		if err != nil {
			t.Fatalf("accepted %q, which does not encode: %v", b, err)
		}
		if string(again) != string(b) {
			t.Fatalf("accepted %q, which encodes to %q", b, again)
		}
	})
}
