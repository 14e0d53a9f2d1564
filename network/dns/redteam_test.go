package dns

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// A container holding the resolver's TCP connections open (red-team F2:
// 256 slow connections, the listener's limit then, stopped TCP DNS for
// every other container) gets MaxTCPPerSource of them; another
// container's TCP query is still answered, well before the read deadline
// would free a slot. (Checked: without the per-source cap it times out.)
func TestTCPHogCannotDenyOthers(t *testing.T) {
	// The listener takes 64 connections in all (MaxTCPConns is 1024:
	// the same, with fewer sockets); the hog tries 100.
	const total, hogConns = 64, 100
	f := serveWith(t, func(r *Resolver) { r.TCPConns = total }, Name{Name: "api.test"})
	if err := WriteConfig(f.root, ContainerConfig{Addresses: []string{"127.0.0.4"}, Handle: "h2",
		Names: []Name{{Name: "api.test"}}, Upstreams: []string{f.up.addr}, Listen: []string{f.listen}}); err != nil {
		t.Fatal(err)
	}
	// The hog keeps more connections open than the listener takes,
	// sending nothing, and opens a new one whenever one is closed.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		stop.Store(true)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	var open atomic.Int32
	for range hogConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for !stop.Load() {
				c, err := d.Dial("tcp", f.listen)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				open.Add(1)
				c.Read(buf) // until the resolver closes it
				c.Close()
				open.Add(-1)
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	for open.Load() < MaxTCPPerSource {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the rest of the hog connects
	// A timeout below the resolver's read deadline: an answer that
	// waits for the hog's connections to time out is a denial.
	c := &mdns.Client{Net: "tcp", Timeout: TCPReadTimeout * 2 / 3, Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.4")}, Timeout: TCPReadTimeout * 2 / 3}}
	m := new(mdns.Msg)
	m.SetQuestion("api.test.", mdns.TypeA)
	for i := range 3 {
		resp, _, err := c.Exchange(m, f.listen)
		if err != nil {
			t.Fatalf("query %d from another container while one hogs TCP: %v", i, err)
		}
		wantRcode(t, resp, mdns.RcodeSuccess)
	}
}

// The query the upstream gets is rebuilt by the resolver (red-team F4: a
// container could pass data to the upstream through an allowed name's
// letter case, EDNS options, header bits and odd query types): the name in
// lower case, type A or AAAA, class IN, RD set and no other flag, no EDNS
// option, an id of the resolver's.
func TestUpstreamQueryIsNormalized(t *testing.T) {
	f := serve(t, Name{Name: "api.test"})
	c := &mdns.Client{Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}}}
	send := func(name string, qtype uint16) *mdns.Msg {
		t.Helper()
		m := new(mdns.Msg)
		m.SetQuestion(name, qtype)
		m.Id = 0x5eC2
		m.CheckingDisabled, m.AuthenticatedData, m.Zero = true, true, true
		m.SetEdns0(4000, true)
		o := m.IsEdns0()
		o.Option = append(o.Option,
			&mdns.EDNS0_LOCAL{Code: 65001, Data: []byte("secret-payload")},
			&mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0123456789abcdef"},
			&mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("192.0.2.0").To4()},
			&mdns.EDNS0_PADDING{Padding: []byte("more-secret")})
		resp, _, err := c.Exchange(m, f.listen)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := send("ApI.TeSt.", mdns.TypeA)
	wantRcode(t, resp, mdns.RcodeSuccess)
	if got := answerIPs(resp); len(got) != 1 || got[0] != "198.18.0.10" {
		t.Fatalf("answer %v", got)
	}
	if resp.Question[0].Name != "ApI.TeSt." || resp.Id != 0x5eC2 {
		t.Fatalf("the answer does not echo the question as asked: %v", resp)
	}
	// Other types are answered empty and never forwarded.
	for _, qt := range []uint16{mdns.TypeTXT, mdns.TypeNULL, mdns.TypeANY, mdns.TypeCNAME, mdns.TypeMX, 65280} {
		r := send("api.test.", qt)
		if r.Rcode != mdns.RcodeSuccess && r.Rcode != mdns.RcodeRefused || len(r.Answer) != 0 {
			t.Fatalf("type %d: %v", qt, r)
		}
	}
	f.up.mu.Lock()
	msgs := append([]*mdns.Msg(nil), f.up.msgs...)
	f.up.mu.Unlock()
	if len(msgs) != 1 {
		t.Fatalf("the upstream got %d queries, want the A query only: %v", len(msgs), msgs)
	}
	q := msgs[0]
	if q.Question[0].Name != "api.test." || q.Question[0].Qtype != mdns.TypeA || q.Question[0].Qclass != mdns.ClassINET {
		t.Errorf("upstream question %v, want api.test. IN A", q.Question[0])
	}
	if q.Id == 0x5eC2 || !q.RecursionDesired || q.CheckingDisabled || q.AuthenticatedData || q.Zero || q.Opcode != mdns.OpcodeQuery {
		t.Errorf("upstream header carries the container's bits: %v", q.MsgHdr)
	}
	if len(q.Ns) != 0 || len(q.Answer) != 0 {
		t.Errorf("upstream query has records: %v", q)
	}
	for _, rr := range q.Extra {
		o, ok := rr.(*mdns.OPT)
		if !ok {
			t.Errorf("upstream query has an additional record %v", rr)
			continue
		}
		if len(o.Option) != 0 || o.Do() || o.UDPSize() != UpstreamUDPSize {
			t.Errorf("upstream EDNS carries the container's options: %v", o)
		}
	}
}
