package preexec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// This test binary links preexec.c: run with "landlock-exec", its ELF
// constructor takes over before Go starts, so these tests drive the real
// C decoder.

func memfd(t *testing.T, data []byte) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("px-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "px-test")
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// decode runs the C decoder on raw with --dump-record; extra files follow
// the record (fd 4 on).
func decode(t *testing.T, raw []byte, extra ...*os.File) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], Command, RecordFlag+"3", "--dump-record")
	cmd.ExtraFiles = append([]*os.File{memfd(t, raw)}, extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// want is the dump the decoder must print for r.
func want(t *testing.T, r *Record) string {
	t.Helper()
	id, posture, degraded, rules, err := r.Fragments()
	if err != nil {
		t.Fatal(err)
	}
	flags := 0
	if r.Strict {
		flags |= FlagStrict
	}
	if r.ScopeSignals {
		flags |= FlagScopeSignals
	}
	if r.Hold {
		flags |= FlagHold
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version %d\nflags %d\nmin_abi %d\n", Version, flags, r.MinABI)
	fmt.Fprintf(&b, "self_fd %d\naudit_fd %d\nseccomp_fd %d\nstatus_fd %d\nseccomp_sha256 %x\n", r.SelfFd, r.AuditFd, r.SeccompFd, r.StatusFd, r.SeccompSHA256)
	for i, f := range []string{id, posture, degraded, rules} {
		fmt.Fprintf(&b, "%s %x\n", []string{"frag_id", "frag_posture", "frag_degraded", "frag_rules"}[i], f)
	}
	for i, list := range r.Lists() {
		for _, p := range list {
			fmt.Fprintf(&b, "%s %x\n", ListNames[i], p)
		}
	}
	return b.String()
}

func sample() *Record {
	return &Record{
		Strict: true, ScopeSignals: true, MinABI: 3, SelfFd: 5, AuditFd: 6, SeccompFd: -1, StatusFd: 7,
		SeccompSHA256: sha256.Sum256([]byte("program")),
		ID:            `c1","applied":true,"x":"`, Posture: "strict-agent", DegradedPosture: "strict-agent-degraded\n",
		Read:           []string{"/", "/a\"b\\c", "/nl\nx", "/ünï", "/\x01\x7f\xff"},
		Write:          []string{"/tmp", "/dev/shm"},
		Devices:        []string{"/dev/null", "/dev/pts"},
		Exec:           []string{"/" + strings.Repeat("e", MaxPathLen-1)},
		ExecRootExcept: []string{"/tmp", "/proc", "/sys", "/dev", "/run"},
	}
}

func TestRoundTrip(t *testing.T) {
	full := &Record{SelfFd: 3, AuditFd: -1, SeccompFd: -1, StatusFd: -1}
	for i := 0; i < MaxPaths; i++ {
		full.ExecRootExcept = append(full.ExecRootExcept, fmt.Sprintf("/d%d", i))
	}
	scoped := &Record{ScopeSignals: true, SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1}
	for name, r := range map[string]*Record{"sample": sample(), "empty": {SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1}, "full": full, "scoped": scoped} {
		raw, err := r.Encode()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, stderr, code := decode(t, raw)
		if code != 0 {
			t.Fatalf("%s: decoder exit %d: %s", name, code, stderr)
		}
		if w := want(t, r); out != w {
			t.Errorf("%s: decoder's view differs:\n got %s\nwant %s", name, out, w)
		}
	}
}

// TestFragmentsAreJSON: the pieces C concatenates make one JSON object on
// one line, whatever the id and paths hold.
func TestFragmentsAreJSON(t *testing.T) {
	r := sample()
	id, posture, degraded, rules, err := r.Fragments()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{posture, degraded} {
		line := `{"time":"t","event":"landlock_applied",` + id + "," + p + `,"abi":7,"applied":false,` + rules + "}"
		if strings.ContainsAny(line, "\n\r") {
			t.Fatalf("fragment holds a newline: %q", line)
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %v: %s", err, line)
		}
		if e["applied"] != false || e["id"] != r.ID {
			t.Errorf("fields forged: %v", e)
		}
	}
}

func TestEncodeLimits(t *testing.T) {
	for name, c := range map[string]struct {
		r    Record
		want string
	}{
		"too many":   {Record{Read: make([]string, MaxPaths+1)}, "too many"},
		"too long":   {Record{Write: []string{"/" + strings.Repeat("x", MaxPathLen)}}, "too long"},
		"relative":   {Record{Exec: []string{"tmp"}}, "absolute"},
		"nul":        {Record{Devices: []string{"/dev/\x00"}}, "NUL"},
		"bad fd":     {Record{SelfFd: -2}, "descriptor"},
		"bad abi":    {Record{MinABI: -1}, "ABI"},
		"empty path": {Record{Read: []string{""}}, "absolute"},
	} {
		for i := range c.r.Read {
			if c.r.Read[i] == "" && name == "too many" {
				c.r.Read[i] = "/r"
			}
		}
		_, err := c.r.Encode()
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: Encode error %v, want a one-line ErrLimit naming %q", name, err, c.want)
		}
	}
}

// TestDecoderRefuses: records the encoder would never produce are refused
// by the step, before it does anything.
func TestDecoderRefuses(t *testing.T) {
	good, err := (&Record{SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1, Read: []string{"/"}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	patch := func(off int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	unchecked := func(r *Record) []byte {
		b, err := r.marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tooMany := &Record{SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1}
	for i := 0; i <= MaxPaths; i++ {
		tooMany.Read = append(tooMany.Read, "/r")
	}
	cases := map[string][]byte{
		"magic":        append([]byte("NUCLPXQ\x00"), good[8:]...),
		"version":      patch(8, Version+1),
		"version 1":    patch(8, 1),
		"body length":  patch(12, uint32(len(good)-16+1)),
		"trailing":     append(bytes.Clone(good), 0),
		"flags":        patch(16, 1<<7),
		"fd":           patch(24, uint32(0xfffffff0)),
		"too many":     unchecked(tooMany),
		"too long":     unchecked(&Record{SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1, Read: []string{"/" + strings.Repeat("x", MaxPathLen)}}),
		"relative":     unchecked(&Record{SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1, Exec: []string{"x"}}),
		"nul":          unchecked(&Record{SelfFd: -1, AuditFd: -1, SeccompFd: -1, StatusFd: -1, Write: []string{"/a\x00b"}}),
		"count > data": patch(len(good)-4-1-4-16, 1000),
		"empty":        {},
	}
	// A newline in a fragment (the encoder escapes them all).
	nl := bytes.Clone(good)
	if i := bytes.Index(nl, []byte(`"id":""`)); i > 0 {
		nl[i+5] = '\n'
		cases["newline"] = nl
	}
	for i := 0; i < len(good); i++ {
		cases[fmt.Sprintf("truncated at %d", i)] = good[:i]
	}
	for name, raw := range cases {
		out, stderr, code := decode(t, raw)
		if code != 125 || !strings.Contains(stderr, "refusing the pre-exec record") || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want the record refused", name, code, out, stderr)
		}
	}
}

// TestSHA256 checks the C digest against Go's over block boundaries.
func TestSHA256(t *testing.T) {
	for _, n := range []int{0, 1, 8, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 32768} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + n)
		}
		raw, err := (&Record{SelfFd: -1, AuditFd: -1, SeccompFd: 4, StatusFd: -1}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		out, stderr, code := decode(t, raw, memfd(t, data))
		sum := sha256.Sum256(data)
		if code != 0 || !strings.Contains(out, "seccomp_sum "+hex.EncodeToString(sum[:])+"\n") {
			t.Errorf("%d bytes: exit %d (%s), dump %q, want sum %x", n, code, stderr, out, sum)
		}
	}
}
