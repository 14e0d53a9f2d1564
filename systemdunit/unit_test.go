package systemdunit

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "plain",
		"/a b":         `"/a b"`,
		`say "hi"`:     `"say \"hi\""`,
		"$HOME":        "$$HOME",
		"100%":         "100%%",
		`a\b`:          `"a\\b"`,
		"curl -f x; y": `"curl -f x; y"`,
		"":             `""`,
		"it's":         `"it's"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestUnit(t *testing.T) {
	u := Unit(Options{Name: "web", Nucleus: "/usr/bin/nucleus", RunArgs: []string{"--health-cmd", "wget -q -O- localhost:80"}})
	for _, want := range []string{
		"Type=notify\n", "NotifyAccess=all\n", "KillMode=mixed\n", "Restart=on-failure\n",
		`ExecStart=/usr/bin/nucleus run --mode production --health-cmd "wget -q -O- localhost:80" web` + "\n",
		"ExecStopPost=/usr/bin/nucleus delete --force web\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
}
