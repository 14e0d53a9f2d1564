package dns

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/nucleus-run/nucleus/network/firewall"
)

// needFirewall skips without root or nft (fails under CI).
func needFirewall(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root for nftables"
	} else if _, err := exec.LookPath("nft"); err != nil {
		why = "needs nft (Debian nftables) to read the sets back"
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

// setElems reads a set of the inet nucleus table: address -> seconds
// until it expires.
func setElems(t *testing.T, set string) map[string]int {
	t.Helper()
	out, err := exec.Command("nft", "-j", "list", "set", "inet", firewall.TableName, set).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list set %s: %v: %s", set, err, out)
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []struct {
					Elem struct {
						Val     any `json:"val"`
						Expires int `json:"expires"`
					} `json:"elem"`
				} `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j: %v: %s", err, out)
	}
	got := map[string]int{}
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, e := range o.Set.Elem {
			switch v := e.Elem.Val.(type) {
			case string:
				got[v] = e.Elem.Expires
			case map[string]any: // {"concat": [addr, proto, port]}
				if parts, ok := v["concat"].([]any); ok {
					var ss []string
					for _, p := range parts {
						ss = append(ss, fmt.Sprint(p))
					}
					got[strings.Join(ss, " . ")] = e.Elem.Expires
				}
			}
		}
	}
	return got
}

// The resolver with the real firewall: an answer's address goes into the
// container's nftables set with the record's TTL, a new answer renews it,
// and the kernel drops it when the TTL runs out.
func TestAnswersGoIntoTheRealSets(t *testing.T) {
	needFirewall(t)
	h := "dt" + strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	ct := firewall.Container{H: h, Veth: firewall.VethPrefix + h, IPv4: net.ParseIP("10.90.251.7"),
		Gateways: []net.IP{net.ParseIP("10.90.0.1")}}
	if err := firewall.Add(ct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = firewall.Remove(h) })

	// An owned upstream whose TTL for ttl.test grows with each answer.
	var n atomic.Int32
	ttls := []uint32{2, 30, 300}
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(req)
		i := min(int(n.Add(1))-1, len(ttls)-1)
		m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: req.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: ttls[i]},
			A: net.ParseIP("198.18.0.17")})
		w.WriteMsg(m)
	})
	up := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	srv := &mdns.Server{Addr: up, Net: "udp", Handler: handler}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ListenAndServe()
	<-started
	defer srv.Shutdown()

	root := t.TempDir()
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	if err := WriteConfig(root, ContainerConfig{Addresses: []string{"127.0.0.2"}, Handle: h,
		Names: []Name{{Name: "ttl.test"}, {Name: "port.test", Port: 443}}, Upstreams: []string{up}, Listen: []string{listen}}); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Root: root, Sets: SetsFunc(firewall.AddResolved)}
	done := make(chan struct{})
	ready := make(chan error, 1)
	go func() { r.Serve(t.Context(), func(err error) { ready <- err }); close(done) }()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	defer func() { RemoveConfig(root, "127.0.0.2"); <-done }()

	wantRcode(t, query(t, "127.0.0.2", "udp", listen, "ttl.test.", mdns.TypeA), mdns.RcodeSuccess)
	if _, ok := setElems(t, "n4-"+h)["198.18.0.17"]; !ok {
		t.Fatalf("n4-%s lacks the answer: %v", h, setElems(t, "n4-"+h))
	}
	// The kernel expires it after the record's 2s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := setElems(t, "n4-"+h)["198.18.0.17"]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("198.18.0.17 still in n4-%s 30s after its 2s TTL", h)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Asked again, it comes back; a later answer renews it with its TTL.
	wantRcode(t, query(t, "127.0.0.2", "udp", listen, "ttl.test.", mdns.TypeA), mdns.RcodeSuccess)
	if exp, ok := setElems(t, "n4-"+h)["198.18.0.17"]; !ok || exp > 30 {
		t.Fatalf("after a 30s answer: in set %v, expires in %ds", ok, exp)
	}
	wantRcode(t, query(t, "127.0.0.2", "udp", listen, "ttl.test.", mdns.TypeA), mdns.RcodeSuccess)
	if exp, ok := setElems(t, "n4-"+h)["198.18.0.17"]; !ok || exp < 200 {
		t.Fatalf("after a 300s answer: in set %v, expires in %ds", ok, exp)
	}
	// A name allowed on a port goes into the port set, on both protocols.
	wantRcode(t, query(t, "127.0.0.2", "udp", listen, "port.test.", mdns.TypeA), mdns.RcodeSuccess)
	p4 := setElems(t, "p4-"+h)
	for _, want := range []string{"198.18.0.17 . tcp . 443", "198.18.0.17 . udp . 443"} {
		if _, ok := p4[want]; !ok {
			t.Fatalf("p4-%s lacks %s: %v", h, want, p4)
		}
	}
	// Denied names add nothing.
	wantRcode(t, query(t, "127.0.0.2", "udp", listen, "other.test.", mdns.TypeA), mdns.RcodeRefused)
	if got := setElems(t, "n4-"+h); len(got) != 1 {
		t.Fatalf("n4-%s: %v", h, got)
	}
}

// A hostile upstream for an allowed name cannot grow a container's sets
// without bound (red-team F3): each answer brings new addresses, and past
// firewall.SetLimit elements the resolver answers REFUSED and writes a
// dns_set_full audit event; the set holds no more than the limit.
func TestSetsAreBounded(t *testing.T) {
	needFirewall(t)
	h := "dq" + strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	ct := firewall.Container{H: h, Veth: firewall.VethPrefix + h, IPv4: net.ParseIP("10.90.251.8"),
		Gateways: []net.IP{net.ParseIP("10.90.0.1")}}
	if err := firewall.Add(ct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = firewall.Remove(h) })

	// 100 new addresses in every answer.
	var next atomic.Uint32
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(req)
		for range 100 {
			n := next.Add(1)
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: req.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 600},
				A: net.IPv4(198, 18, byte(n>>8), byte(n))})
		}
		w.WriteMsg(m)
	})
	up := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	srv := &mdns.Server{Addr: up, Net: "tcp", Handler: handler}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ListenAndServe()
	<-started
	defer srv.Shutdown()

	root := t.TempDir()
	audit := filepath.Join(t.TempDir(), "audit.log")
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	if err := WriteConfig(root, ContainerConfig{ID: "c-quota", Addresses: []string{"127.0.0.2"}, Handle: h, AuditLog: audit,
		Names: []Name{{Name: "many.test"}}, Upstreams: []string{up}, Listen: []string{listen}}); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Root: root, Sets: SetsFunc(firewall.AddResolved)}
	done := make(chan struct{})
	ready := make(chan error, 1)
	go func() { r.Serve(t.Context(), func(err error) { ready <- err }); close(done) }()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	defer func() { RemoveConfig(root, "127.0.0.2"); <-done }()

	refused := 0
	for i := 0; i < firewall.SetLimit/100+5; i++ {
		m := query(t, "127.0.0.2", "tcp", listen, "many.test.", mdns.TypeA)
		if m.Rcode == mdns.RcodeRefused {
			refused++
		}
	}
	n := len(setElems(t, "n4-"+h))
	t.Logf("%d addresses handed out, %d in the set, %d answers refused", next.Load(), n, refused)
	if n > firewall.SetLimit {
		t.Fatalf("n4-%s holds %d elements, more than the limit %d", h, n, firewall.SetLimit)
	}
	if refused == 0 {
		t.Fatalf("no answer refused past the limit")
	}
	// An address already in the full set is still renewed.
	if err := firewall.AddResolved(h, net.IPv4(198, 18, 0, 1), "", 0, time.Hour); err != nil {
		t.Fatalf("renewing an address of a full set: %v", err)
	}
	if exp := setElems(t, "n4-"+h)["198.18.0.1"]; exp < 1000 {
		t.Fatalf("198.18.0.1 not renewed: expires in %ds", exp)
	}
	data, _ := os.ReadFile(audit)
	if !strings.Contains(string(data), `"event":"dns_set_full"`) || !strings.Contains(string(data), `"name":"many.test."`) {
		t.Fatalf("no dns_set_full audit event naming many.test.: %s", data)
	}
}
