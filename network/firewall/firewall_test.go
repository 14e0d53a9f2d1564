package firewall

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// need skips without root or nft (fails under CI).
func need(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := exec.LookPath("nft"); err != nil {
		why = "needs nft (Debian nftables) to read the ruleset back"
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

func listTable(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("nft", "-j", "list", "table", "inet", TableName).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("nft -j output: %v", err)
	}
	return string(out)
}

func TestAddRemoveContainer(t *testing.T) {
	need(t)
	h := "ft" + time.Now().Format("150405")
	_, allow, _ := net.ParseCIDR("198.18.7.0/24")
	ct := Container{H: h, Veth: VethPrefix + h, IPv4: net.ParseIP("10.90.250.9"), IPv6: net.ParseIP("fd6e:7563:6c65:7573::fa09"),
		Gateways: []net.IP{net.ParseIP("10.90.0.1")},
		Allow:    []Allow{{Net: allow, Proto: "tcp", Port: 80}},
		Publish:  []Publish{{HostPort: 18080, ContainerPort: 80, Proto: "tcp"}}}
	if err := Add(ct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Remove(h) })
	js := listTable(t)
	for _, want := range []string{`"name": "` + Chain(h) + `"`, `"169.254.0.0"`, `"fd00:ec2::"`, `"100.100.100.200"`, `"fd20:ce::254"`, `"64:ff9b::a9fe:0"`, `"64:ff9b:1::a9fe:0"`, `"2002:a9fe::"`, `"fe80::"`, `"198.18.7.0"`, `"n4-` + h, `"p6-` + h, `"d4-` + h} {
		if !strings.Contains(js, want) {
			t.Errorf("ruleset lacks %s", want)
		}
	}
	if err := AddResolved(h, net.ParseIP("198.18.9.9"), "", 0, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := AddResolved(h, net.ParseIP("fd6e::9"), "tcp", 443, time.Minute); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("nft", "list", "set", "inet", TableName, "n4-"+h).CombinedOutput()
	if !strings.Contains(string(out), "198.18.9.9") {
		t.Fatalf("n4 set lacks the resolved address: %s", out)
	}
	time.Sleep(3 * time.Second)
	out, _ = exec.Command("nft", "list", "set", "inet", TableName, "n4-"+h).CombinedOutput()
	if strings.Contains(string(out), "198.18.9.9") {
		t.Fatalf("the address outlived its TTL: %s", out)
	}
	out, _ = exec.Command("nft", "list", "set", "inet", TableName, "p6-"+h).CombinedOutput()
	if !strings.Contains(string(out), "fd6e::9 . tcp . 443") {
		t.Fatalf("p6 set lacks the resolved address: %s", out)
	}
	if err := Remove(h); err != nil {
		t.Fatal(err)
	}
	if js := listTable(t); strings.Contains(js, h) {
		t.Fatalf("ruleset still names %s after Remove: %s", h, js)
	}
	if err := Remove(h); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}
