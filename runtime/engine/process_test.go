package engine

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for raw, want := range map[string]unix.Signal{
		"KILL":     unix.SIGKILL,
		"SIGKILL":  unix.SIGKILL,
		"kill":     unix.SIGKILL,
		"sigkill":  unix.SIGKILL,
		"9":        unix.SIGKILL,
		"TERM":     unix.SIGTERM,
		"term":     unix.SIGTERM,
		"SIGTERM":  unix.SIGTERM,
		"SigTerm":  unix.SIGTERM,
		"15":       unix.SIGTERM,
		"HUP":      unix.SIGHUP,
		"SIGUSR1":  unix.SIGUSR1,
		"usr2":     unix.SIGUSR2,
		"STOP":     unix.SIGSTOP,
		"WINCH":    unix.SIGWINCH,
		"1":        unix.SIGHUP,
		"0":        unix.Signal(0),
		"64":       unix.Signal(64),
		"34":       unix.Signal(34),
		"SIGCHLD":  unix.SIGCHLD,
		"SIGPWR":   unix.SIGPWR,
		"sigalrm":  unix.SIGALRM,
		"SIGWINCH": unix.SIGWINCH,
	} {
		got, err := ParseSignal(raw)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", raw, got, err, want)
		}
	}
}
func TestParseSignalRejects(t *testing.T) {
	for raw, want := range map[string]string{
		"":         `invalid signal "": unknown name`,
		"BOGUS":    `invalid signal "BOGUS": unknown name`,
		"SIGBOGUS": `invalid signal "SIGBOGUS": unknown name`,
		"SIG":      `invalid signal "SIG": unknown name`,
		"65":       `invalid signal "65": number out of range 0-64`,
		"-9":       `invalid signal "-9": number out of range 0-64`,
		"9x":       `invalid signal "9x": unknown name`,
		"K ILL":    `invalid signal "K ILL": unknown name`,
	} {
		got, err := ParseSignal(raw)
		if err == nil {
			t.Errorf("ParseSignal(%q) = %d, want an error", raw, got)
			continue
		}
		if err.Error() != want {
			t.Errorf("ParseSignal(%q) error %q, want %q", raw, err, want)
		}
	}
}
func TestParseUser(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	for _, tc := range []struct {
		in  string
		uid uint32
		gid *uint32
	}{
		{"0", 0, nil},
		{"1000", 1000, nil},
		{"65534:65534", 65534, u32(65534)},
		{"0:0", 0, u32(0)},
		{"4294967295:4294967295", 1<<32 - 1, u32(1<<32 - 1)},
		{"007:010", 7, u32(10)},
	} {
		uid, gid, err := ParseUser(tc.in)
		if err != nil {
			t.Errorf("ParseUser(%q): %v", tc.in, err)
			continue
		}
		if uid != tc.uid || (gid == nil) != (tc.gid == nil) || (gid != nil && *gid != *tc.gid) {
			t.Errorf("ParseUser(%q) = %d, %v; want %d, %v", tc.in, uid, gid, tc.uid, tc.gid)
		}
	}
	for in, want := range map[string]string{
		"":                       `user: "": uid: empty`,
		":5":                     `user: ":5": uid: empty`,
		"5:":                     `user: "5:": gid: empty`,
		"root":                   `user: "root": uid: "root" is not a number`,
		"1000:users":             `user: "1000:users": gid: "users" is not a number`,
		"-1":                     `user: "-1": uid: "-1" is not a number`,
		"4294967296":             `user: "4294967296": uid: "4294967296" out of range`,
		"1:99999999999999999999": `user: "1:99999999999999999999": gid: "99999999999999999999" out of range`,
		"1:2:3":                  `user: "1:2:3": gid: "2:3" is not a number`,
		" 1":                     `user: " 1": uid: " 1" is not a number`,
	} {
		uid, gid, err := ParseUser(in)
		if err == nil {
			t.Errorf("ParseUser(%q) = %d, %v; want an error", in, uid, gid)
			continue
		}
		if err.Error() != want {
			t.Errorf("ParseUser(%q) error %q, want %q", in, err, want)
		}
	}
}
func TestCheckTerminal(t *testing.T) {
	for _, tc := range []struct {
		terminal, detach bool
		socket           string
		want             string
	}{
		{false, false, "", ""},
		{false, true, "", ""},
		{true, false, "", ""},
		{true, true, "/s", ""},
		{true, true, "", "pass a console socket"},
		{false, true, "/s", "console-socket: needs process.terminal true"},
		{true, false, "/s", "console-socket: needs process.terminal true and a detached container"},
	} {
		err := CheckTerminal(tc.terminal, tc.detach, tc.socket)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckTerminal(%v, %v, %q) = %v, want nil", tc.terminal, tc.detach, tc.socket, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckTerminal(%v, %v, %q) = %v, want %q", tc.terminal, tc.detach, tc.socket, err, tc.want)
		}
	}
}
func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"": Native, "native": Native, "gvisor": Gvisor} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseKind("kvm"); err == nil {
		t.Error("ParseKind(kvm): no error")
	}
}
