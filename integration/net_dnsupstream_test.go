package integration

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// upstreamScript is an owned DNS server: it answers every A query with
// 198.19.204.2 and anything else with no data, and appends each query it
// gets, as hex, to a file.
const upstreamScript = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
log = open(sys.argv[2], "a")
while True:
    d, a = s.recvfrom(4096)
    log.write(d.hex() + "\n"); log.flush()
    i = 12
    while d[i] != 0:
        i += 1 + d[i]
    qtype = int.from_bytes(d[i+1:i+3], "big")
    q = d[12:i+5]
    an = b""
    if qtype == 1:
        an = b"\xc0\x0c" + b"\x00\x01\x00\x01" + (30).to_bytes(4, "big") + b"\x00\x04" + bytes([198, 19, 204, 2])
    hdr = d[:2] + b"\x81\x80" + b"\x00\x01" + (1 if an else 0).to_bytes(2, "big") + b"\x00\x00\x00\x00"
    s.sendto(hdr + q + an, a)
`

// TestNetDNSUpstreamQueryNormalized (red-team F4): what the upstream, an
// owned DNS server in a network namespace the test makes, receives for a
// container's queries is the resolver's own query: the allowed name in
// lower case whatever the case the container used, only A and AAAA (a
// TXT query is answered empty, not forwarded), recursion desired and no
// other flag, no EDNS option.
func TestNetDNSUpstreamQueryNormalized(t *testing.T) {
	requireNet(t)
	py := requireCmd(t, "python3")
	r := newRunner(t)
	h := newNetHost(t, 204)
	queries := filepath.Join(t.TempDir(), "queries.hex")
	srv := exec.Command("ip", "netns", "exec", h.NS, py, "-c", upstreamScript, h.IP, queries)
	srvOut := &syncBuffer{}
	srv.Stdout, srv.Stderr = srvOut, srvOut
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("upstream:\n%s", srvOut.String())
		}
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	waitFor(t, "the owned upstream to answer", func() bool {
		m := new(mdns.Msg)
		m.SetQuestion("ready.test.", mdns.TypeA)
		resp, err := mdns.Exchange(m, h.IP+":53")
		return err == nil && len(resp.Answer) == 1
	})
	os.Truncate(queries, 0) // the test's own queries
	bundle := newBundle(t)
	res := r.OK("sandbox", "--bundle", bundle.Dir, "--id", "n2-dnsnorm", "--net", "bridge", "--allow", "api.test", "--dns", h.IP,
		"--", "sh", "-c", "nslookup ApI.TeSt; nslookup -type=txt API.test; nslookup -type=mx api.TEST; true")
	if !strings.Contains(res.Stdout, "198.19.204.2") {
		q, _ := os.ReadFile(queries)
		t.Fatalf("the allowed name did not resolve through the owned upstream:\n%s%s\nqueries: %s\nresolver log: %s", res.Stdout, res.Stderr, q, readTrim(filepath.Join(r.Root, "@net", "dns.log")))
	}
	data, err := os.ReadFile(queries)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	if len(lines) == 0 {
		t.Fatal("the upstream got no query")
	}
	for _, l := range lines {
		b, err := hex.DecodeString(l)
		if err != nil {
			t.Fatal(err)
		}
		m := new(mdns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("the upstream got an unreadable query %s: %v", l, err)
		}
		q := m.Question[0]
		if q.Name != "api.test." || (q.Qtype != mdns.TypeA && q.Qtype != mdns.TypeAAAA) {
			t.Errorf("upstream got %s %s, want api.test. A or AAAA", q.Name, mdns.TypeToString[q.Qtype])
		}
		if !m.RecursionDesired || m.CheckingDisabled || m.AuthenticatedData || m.Zero || len(m.Answer)+len(m.Ns) != 0 {
			t.Errorf("upstream query carries other bits or records: %v", m)
		}
		for _, rr := range m.Extra {
			if o, ok := rr.(*mdns.OPT); !ok || len(o.Option) != 0 {
				t.Errorf("upstream query has an additional record or EDNS option: %v", rr)
			}
		}
	}
	t.Logf("%d queries at the upstream, all normalized", len(lines))
	assertNoNetLeftovers(t, r.Root, "n2-dnsnorm")
}
