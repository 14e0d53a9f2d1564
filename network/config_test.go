package network

import (
	"errors"
	"testing"

	"github.com/nucleus-run/nucleus/opterr"
)

func TestParseAllow(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.0.0/15":          "198.18.0.0/15 0 ",
		"10.1.2.3":               "10.1.2.3/32 0 ",
		"10.0.0.0/8:443":         "10.0.0.0/8 443 ",
		"10.0.0.0/8:53/udp":      "10.0.0.0/8 53 udp",
		"fd00::/8":               "fd00::/8 0 ",
		"[fd00::/8]:443/tcp":     "fd00::/8 443 tcp",
		"pypi.org":               "pypi.org 0 ",
		"*.example.com:443":      "*.example.com 443 ",
		"Files.PythonHosted.org": "files.pythonhosted.org 0 ",
	} {
		r, err := ParseAllow(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		got := r.Name
		if r.Net != nil {
			got = r.Net.String()
		}
		got += " " + itoa(r.Port) + " " + r.Proto
		if got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/33", "10.0.0.0/8:0", "10.0.0.0/8:70000", "a.b:80/sctp", "exa mple.com", "foo.*.com", "-x.com", "[fd00::/8", "10.0.0.0/8:"} {
		_, err := ParseAllow(in)
		var oe *opterr.Error
		if !errors.As(err, &oe) || oe.Option != "allow" {
			t.Errorf("%q: want an allow option error, got %v", in, err)
		}
	}
}

func TestParsePublish(t *testing.T) {
	for in, want := range map[string]string{
		"8080:80":           "8080:80/tcp",
		"8053:53/udp":       "8053:53/udp",
		"127.0.0.1:8080:80": "127.0.0.1:8080:80/tcp",
		"[::1]:8080:80/tcp": "[::1]:8080:80/tcp",
	} {
		p, err := ParsePublish(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if p.String() != want {
			t.Errorf("%s: got %q, want %q", in, p.String(), want)
		}
	}
	for _, in := range []string{"80", "a:80", "8080:80/icmp", "1.2.3:80:80", "::1:80:80", "0:80", "1:2:3:4"} {
		_, err := ParsePublish(in)
		var oe *opterr.Error
		if !errors.As(err, &oe) || oe.Option != "publish" {
			t.Errorf("%q: want a publish option error, got %v", in, err)
		}
	}
}

func itoa(n uint16) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
