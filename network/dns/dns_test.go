package dns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/network"
)

// The resolver in a process of its own (TestStart) is this test binary
// run again with childEnv set; its sets are appended to a file, one JSON
// line per address, so the test can read what it recorded.
const childEnv = "NUCLEUS_DNS_TEST_CHILD"

func TestMain(m *testing.M) {
	if root := os.Getenv(childEnv); root != "" {
		f, err := os.OpenFile(filepath.Join(root, "sets.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var mu sync.Mutex
		sets := SetsFunc(func(h string, ip net.IP, proto string, port uint16, ttl time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			return json.NewEncoder(f).Encode(added{h, ip.String(), proto, port, ttl})
		})
		if err := Run(root, sets); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type added struct {
	H     string
	IP    string
	Proto string
	Port  uint16
	TTL   time.Duration
}

// recorder is the container's firewall sets as the resolver sees them.
type recorder struct {
	mu   sync.Mutex
	adds []added
	fail error
}

func (r *recorder) AddResolved(h string, ip net.IP, proto string, port uint16, ttl time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.adds = append(r.adds, added{h, ip.String(), proto, port, ttl})
	return nil
}

func (r *recorder) got() []added {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]added(nil), r.adds...)
}

// upstream is a DNS server the test owns, on loopback, that knows a few
// names and remembers every name it was asked.
type upstream struct {
	addr  string
	mu    sync.Mutex
	asked []string
	ids   []uint16
	msgs  []*mdns.Msg
	// slow.test waits for release.
	release chan struct{}
	waiting sync.WaitGroup
}

func (u *upstream) names() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.asked...)
}

var zone = map[string][]string{
	"api.test.":         {"api.test. 7 IN A 198.18.0.10", "api.test. 9 IN AAAA 2001:db8::10"},
	"www.example.test.": {"www.example.test. 30 IN A 198.18.0.11"},
	"a.b.example.test.": {"a.b.example.test. 30 IN A 198.18.0.12"},
	"example.test.":     {"example.test. 30 IN A 198.18.0.13"},
	"zero.test.":        {"zero.test. 0 IN A 198.18.0.14"},
	"other.test.":       {"other.test. 30 IN A 198.18.0.15"},
	// A hostile upstream pointing an allowed name at what it must not
	// open: another container, loopback, link-local, metadata, an
	// IPv4-mapped address; and a TTL of 68 years.
	"inside.test.": {"inside.test. 30 IN A 10.90.0.5", "inside.test. 30 IN A 127.0.0.1", "inside.test. 30 IN A 169.254.170.2", "inside.test. 30 IN A 169.254.170.23",
		"inside.test. 30 IN A 168.63.129.16", "inside.test. 30 IN A 0.0.0.0", "inside.test. 2147483647 IN A 198.18.0.20"},
	"inside6.test.": {"inside6.test. 30 IN AAAA fd6e:7563:6c65:7573::5", "inside6.test. 30 IN AAAA ::ffff:198.18.0.2",
		"inside6.test. 30 IN AAAA fe80::1", "inside6.test. 30 IN AAAA 2001:db8::20",
		// Metadata services over IPv6 and through NAT64 and 6to4.
		"inside6.test. 30 IN AAAA fd00:ec2::23", "inside6.test. 30 IN AAAA fd20:ce::254", "inside6.test. 30 IN AAAA 64:ff9b::a9fe:a9fe",
		"inside6.test. 30 IN AAAA 64:ff9b:1::a9fe:a9fe", "inside6.test. 30 IN AAAA 2002:a9fe:a9fe::1", "inside6.test. 30 IN AAAA 64:ff9b::6464:64c8"},
	// A CNAME to a CDN name, and a record nobody asked for that a
	// confused upstream adds to the answer.
	"cdn.test.": {"cdn.test. 30 IN CNAME edge.cdn.example.", "edge.cdn.example. 20 IN A 198.18.0.16", "stray.example. 30 IN A 198.18.0.99"},
}

func init() {
	// Big enough to be truncated over UDP without EDNS.
	var big []string
	for i := 1; i <= 60; i++ {
		big = append(big, fmt.Sprintf("big.test. 30 IN A 198.18.1.%d", i))
	}
	zone["big.test."] = big
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{})}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		u.mu.Lock()
		u.asked = append(u.asked, q.Name)
		u.ids = append(u.ids, req.Id)
		u.msgs = append(u.msgs, req.Copy())
		u.mu.Unlock()
		if q.Name == "slow.test." {
			u.waiting.Done()
			<-u.release
		}
		rrs, ok := zone[strings.ToLower(q.Name)]
		if !ok {
			m.Rcode = mdns.RcodeNameError
		}
		for _, s := range rrs {
			rr, err := mdns.NewRR(s)
			if err != nil {
				panic(err)
			}
			if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == mdns.TypeCNAME || (q.Qtype == mdns.TypeA && rr.Header().Rrtype == mdns.TypeA) {
				m.Answer = append(m.Answer, rr)
			}
		}
		if q.Name == "liar.test." {
			// An answer for another name than the one asked.
			m.Question[0].Name = "api.test."
			m.Answer = append(m.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: "api.test.", Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 30},
				A: net.ParseIP("198.18.0.66")})
		}
		if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
			m.Truncate(mdns.MinMsgSize)
		}
		w.WriteMsg(m)
	})
	port := freePort(t, "127.0.0.1")
	u.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for _, n := range []string{"udp", "tcp"} {
		s := &mdns.Server{Addr: u.addr, Net: n, Handler: h}
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ListenAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return u
}

// freePort finds a port free for both UDP and TCP on host.
func freePort(t *testing.T, host string) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

type fixture struct {
	root   string
	listen string
	up     *upstream
	sets   *recorder
	done   chan error
	cancel context.CancelFunc
}

// serve starts a resolver for one container at 127.0.0.2 allowed names.
func serve(t *testing.T, names ...Name) *fixture {
	t.Helper()
	return serveWith(t, nil, names...)
}

// serveWith is serve with the resolver adjusted by set.
func serveWith(t *testing.T, set func(*Resolver), names ...Name) *fixture {
	t.Helper()
	f := &fixture{root: t.TempDir(), up: startUpstream(t), sets: &recorder{}, done: make(chan error, 1)}
	f.listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	if err := WriteConfig(f.root, ContainerConfig{Addresses: []string{"127.0.0.2"}, Handle: "h1", Names: names,
		Upstreams: []string{f.up.addr}, Listen: []string{f.listen}}); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Root: f.root, Sets: f.sets, Poll: 200 * time.Millisecond, Timeout: 30 * time.Second}
	if set != nil {
		set(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	ready := make(chan error, 1)
	go func() { f.done <- r.Serve(ctx, func(err error) { ready <- err }) }()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

func query(t *testing.T, src, network, server, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}}
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s from %s over %s: %v", name, mdns.TypeToString[qtype], src, network, err)
	}
	return resp
}

func answerIPs(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if ip := rrIP(rr); ip != nil {
			out = append(out, ip.String())
		}
	}
	return out
}

func wantRcode(t *testing.T, m *mdns.Msg, rcode int) {
	t.Helper()
	if m.Rcode != rcode {
		t.Fatalf("rcode %s, want %s: %v", mdns.RcodeToString[m.Rcode], mdns.RcodeToString[rcode], m)
	}
}

func wantAdds(t *testing.T, got []added, want ...added) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sets got %v, want %v", got, want)
	}
}

func TestAllowedNameAnsweredAndAddedWithTTL(t *testing.T) {
	f := serve(t, Name{Name: "api.test"}, Name{Name: "zero.test"})
	m := query(t, "127.0.0.2", "udp", f.listen, "api.test.", mdns.TypeA)
	wantRcode(t, m, mdns.RcodeSuccess)
	if got := answerIPs(m); fmt.Sprint(got) != "[198.18.0.10]" {
		t.Fatalf("answer %v", got)
	}
	wantAdds(t, f.sets.got(), added{"h1", "198.18.0.10", "", 0, 7 * time.Second})

	// A TTL of 0 still lets the connect that follows through.
	query(t, "127.0.0.2", "udp", f.listen, "zero.test.", mdns.TypeA)
	wantAdds(t, f.sets.got()[1:], added{"h1", "198.18.0.14", "", 0, MinTTL})
}

// TestUnreachableAnswersStayOut: whoever answers for an allowed name can't
// open a path to another container, the host or a metadata service
// through the sets (red-team finding), nor keep an address there for
// years.
func TestUnreachableAnswersStayOut(t *testing.T) {
	f := serve(t, Name{Name: "inside.test"}, Name{Name: "inside6.test"})
	wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, "inside.test.", mdns.TypeA), mdns.RcodeSuccess)
	wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, "inside6.test.", mdns.TypeAAAA), mdns.RcodeSuccess)
	wantAdds(t, f.sets.got(), added{"h1", "198.18.0.20", "", 0, MaxTTL}, added{"h1", "2001:db8::20", "", 0, 30 * time.Second})
}

func TestAAAA(t *testing.T) {
	f := serve(t, Name{Name: "api.test"})
	m := query(t, "127.0.0.2", "udp", f.listen, "API.test.", mdns.TypeAAAA)
	wantRcode(t, m, mdns.RcodeSuccess)
	if got := answerIPs(m); fmt.Sprint(got) != "[2001:db8::10]" {
		t.Fatalf("answer %v", got)
	}
	wantAdds(t, f.sets.got(), added{"h1", "2001:db8::10", "", 0, 9 * time.Second})
}

func TestNameWithPortGoesToThePortSet(t *testing.T) {
	f := serve(t, Name{Name: "api.test", Port: 443, Proto: "tcp"}, Name{Name: "api.test", Port: 53})
	query(t, "127.0.0.2", "udp", f.listen, "api.test.", mdns.TypeA)
	wantAdds(t, f.sets.got(),
		added{"h1", "198.18.0.10", "tcp", 443, 7 * time.Second},
		added{"h1", "198.18.0.10", "", 53, 7 * time.Second})
}

func TestWildcardMatchesSubdomainsOnly(t *testing.T) {
	f := serve(t, Name{Name: "*.example.test"})
	for _, name := range []string{"www.example.test.", "a.b.example.test."} {
		wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, name, mdns.TypeA), mdns.RcodeSuccess)
	}
	wantAdds(t, f.sets.got(),
		added{"h1", "198.18.0.11", "", 0, 30 * time.Second},
		added{"h1", "198.18.0.12", "", 0, 30 * time.Second})
	// The apex, and a label with an escaped dot that reads like a
	// subdomain but is a name under test. (not example.test.).
	for _, name := range []string{"example.test.", `evil\.example.test.`, "example.test.evil."} {
		wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, name, mdns.TypeA), mdns.RcodeRefused)
	}
	if got := f.up.names(); fmt.Sprint(got) != "[www.example.test. a.b.example.test.]" {
		t.Fatalf("upstream was asked %v", got)
	}
	if len(f.sets.got()) != 2 {
		t.Fatalf("sets %v", f.sets.got())
	}
}

// A denied name is refused without being forwarded: a container cannot
// carry data out in the names it asks for.
func TestDeniedNameRefusedAndNotForwarded(t *testing.T) {
	f := serve(t, Name{Name: "api.test"})
	m := query(t, "127.0.0.2", "udp", f.listen, "other.test.", mdns.TypeA)
	wantRcode(t, m, mdns.RcodeRefused)
	if len(m.Answer) != 0 {
		t.Fatalf("answer %v", m.Answer)
	}
	m = query(t, "127.0.0.2", "tcp", f.listen, "secret-data.api.test.", mdns.TypeA)
	wantRcode(t, m, mdns.RcodeRefused)
	if got := f.up.names(); len(got) != 0 {
		t.Fatalf("upstream was asked %v", got)
	}
	wantAdds(t, f.sets.got())
}

func TestUnknownSourceRefused(t *testing.T) {
	f := serve(t, Name{Name: "api.test"})
	for _, network := range []string{"udp", "tcp"} {
		wantRcode(t, query(t, "127.0.0.3", network, f.listen, "api.test.", mdns.TypeA), mdns.RcodeRefused)
	}
	if got := f.up.names(); len(got) != 0 {
		t.Fatalf("upstream was asked %v", got)
	}
	wantAdds(t, f.sets.got())
}

// A container flooding the resolver gets SERVFAIL beyond MaxInFlight
// queries at once; another container is still answered.
func TestInFlightLimitPerSource(t *testing.T) {
	f := serve(t, Name{Name: "slow.test"}, Name{Name: "api.test"})
	if err := WriteConfig(f.root, ContainerConfig{Addresses: []string{"127.0.0.4"}, Handle: "h2",
		Names: []Name{{Name: "api.test"}}, Upstreams: []string{f.up.addr}, Listen: []string{f.listen}}); err != nil {
		t.Fatal(err)
	}
	f.up.waiting.Add(MaxInFlight)
	var wg sync.WaitGroup
	for range MaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &mdns.Client{Timeout: 30 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}}}
			m := new(mdns.Msg)
			m.SetQuestion("slow.test.", mdns.TypeA)
			c.Exchange(m, f.listen)
		}()
	}
	f.up.waiting.Wait() // all of them are at the upstream
	wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, "api.test.", mdns.TypeA), mdns.RcodeServerFailure)
	wantRcode(t, query(t, "127.0.0.4", "udp", f.listen, "api.test.", mdns.TypeA), mdns.RcodeSuccess)
	close(f.up.release)
	wg.Wait()
	wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, "api.test.", mdns.TypeA), mdns.RcodeSuccess)
}

// The upstream query has an id of the resolver's choosing, not the
// container's: a container that knew it could forge the upstream's answer
// by guessing the port alone. The container gets its own id back.
func TestUpstreamQueryHasItsOwnID(t *testing.T) {
	f := serve(t, Name{Name: "api.test"})
	c := &mdns.Client{Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}}}
	same := 0
	for i := range 8 {
		m := new(mdns.Msg)
		m.SetQuestion("api.test.", mdns.TypeA)
		m.Id = uint16(4242 + i)
		resp, _, err := c.Exchange(m, f.listen)
		if err != nil {
			t.Fatal(err)
		}
		wantRcode(t, resp, mdns.RcodeSuccess)
		if resp.Id != m.Id {
			t.Fatalf("answer id %d, want the query's %d", resp.Id, m.Id)
		}
		f.up.mu.Lock()
		if f.up.ids[len(f.up.ids)-1] == m.Id {
			same++
		}
		f.up.mu.Unlock()
	}
	if same > 1 {
		t.Fatalf("the upstream saw the container's id %d times of 8", same)
	}
}

// A second question would ride along with an allowed first one.
func TestOnlyOneQuestion(t *testing.T) {
	f := serve(t, Name{Name: "api.test"})
	c := &mdns.Client{Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}}}
	m := new(mdns.Msg)
	m.SetQuestion("api.test.", mdns.TypeA)
	m.Question = append(m.Question, mdns.Question{Name: "other.test.", Qtype: mdns.TypeA, Qclass: mdns.ClassINET})
	resp, _, err := c.Exchange(m, f.listen)
	if err != nil {
		t.Fatal(err)
	}
	// miekg/dns's server refuses it as FORMERR before the resolver
	// sees it; either way, no answer and nothing forwarded.
	if resp.Rcode != mdns.RcodeFormatError && resp.Rcode != mdns.RcodeRefused || len(resp.Answer) != 0 {
		t.Fatalf("two questions answered: %v", resp)
	}
	if got := f.up.names(); len(got) != 0 {
		t.Fatalf("upstream was asked %v", got)
	}
}

func TestTCPAndTruncation(t *testing.T) {
	f := serve(t, Name{Name: "big.test"}, Name{Name: "api.test"})
	m := query(t, "127.0.0.2", "tcp", f.listen, "api.test.", mdns.TypeA)
	wantRcode(t, m, mdns.RcodeSuccess)
	wantAdds(t, f.sets.got(), added{"h1", "198.18.0.10", "", 0, 7 * time.Second})

	// Over UDP without EDNS the answer does not fit in 512 bytes: the
	// client is told to retry over TCP, where it gets all of it.
	m = query(t, "127.0.0.2", "udp", f.listen, "big.test.", mdns.TypeA)
	if !m.Truncated {
		t.Fatalf("a %d-record answer over UDP was not truncated", len(m.Answer))
	}
	m = query(t, "127.0.0.2", "tcp", f.listen, "big.test.", mdns.TypeA)
	if m.Truncated || len(m.Answer) != 60 {
		t.Fatalf("over TCP: truncated %v, %d records", m.Truncated, len(m.Answer))
	}
	n := 0
	for _, a := range f.sets.got() {
		if strings.HasPrefix(a.IP, "198.18.1.") {
			n++
		}
	}
	if n < 60 {
		t.Fatalf("%d of big.test's addresses in the set", n)
	}
}

// Addresses reached through a CNAME go into the set (a CDN); a record for
// a name the chain does not reach does not.
func TestCNAMEChain(t *testing.T) {
	f := serve(t, Name{Name: "cdn.test"})
	m := query(t, "127.0.0.2", "udp", f.listen, "cdn.test.", mdns.TypeA)
	wantRcode(t, m, mdns.RcodeSuccess)
	wantAdds(t, f.sets.got(), added{"h1", "198.18.0.16", "", 0, 20 * time.Second})
}

// Without its address in the set the container's connect would be
// dropped: the client hears SERVFAIL rather than an answer it cannot use.
func TestSetFailureIsServfail(t *testing.T) {
	f := serve(t, Name{Name: "api.test"})
	f.sets.fail = errors.New("netlink: no table")
	wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, "api.test.", mdns.TypeA), mdns.RcodeServerFailure)
}

// An upstream answer to another question is no answer.
func TestAnswerToAnotherQuestionIsServfail(t *testing.T) {
	f := serve(t, Name{Name: "liar.test"}, Name{Name: "api.test"})
	wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, "liar.test.", mdns.TypeA), mdns.RcodeServerFailure)
	wantAdds(t, f.sets.got())
}

func TestUpstreamDownIsServfail(t *testing.T) {
	root := t.TempDir()
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	// A port on loopback nothing listens on: the test owns it.
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	if err := WriteConfig(root, ContainerConfig{Addresses: []string{"127.0.0.2"}, Handle: "h1",
		Names: []Name{{Name: "api.test"}}, Upstreams: []string{dead}, Listen: []string{listen}}); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Root: root, Sets: &recorder{}, Timeout: 500 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan error, 1)
	go r.Serve(ctx, func(err error) { ready <- err })
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	wantRcode(t, query(t, "127.0.0.2", "udp", listen, "api.test.", mdns.TypeA), mdns.RcodeServerFailure)
}

func TestIPv6Source(t *testing.T) {
	if _, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	root := t.TempDir()
	up := startUpstream(t)
	listen := net.JoinHostPort("::1", strconv.Itoa(freePort(t, "::1")))
	if err := WriteConfig(root, ContainerConfig{Addresses: []string{"127.0.0.2", "::1"}, Handle: "h6",
		Names: []Name{{Name: "api.test"}}, Upstreams: []string{up.addr}, Listen: []string{listen}}); err != nil {
		t.Fatal(err)
	}
	sets := &recorder{}
	r := &Resolver{Root: root, Sets: sets}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan error, 1)
	go r.Serve(ctx, func(err error) { ready <- err })
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		wantRcode(t, query(t, "::1", network, listen, "api.test.", mdns.TypeAAAA), mdns.RcodeSuccess)
	}
	wantAdds(t, sets.got(), added{"h6", "2001:db8::10", "", 0, 9 * time.Second}, added{"h6", "2001:db8::10", "", 0, 9 * time.Second})
	if err := RemoveConfig(root, "::1"); err != nil {
		t.Fatal(err)
	}
	wantRcode(t, query(t, "::1", "udp", listen, "api.test.", mdns.TypeAAAA), mdns.RcodeRefused)
}

// The resolver goes away with the last config, and a new config is
// served at once (inotify; the poll is the backstop).
func TestExitsWhenNoConfigRemains(t *testing.T) {
	f := serve(t, Name{Name: "api.test"})
	if err := WriteConfig(f.root, ContainerConfig{Addresses: []string{"127.0.0.4"}, Handle: "h2",
		Names: []Name{{Name: "other.test"}}, Upstreams: []string{f.up.addr}, Listen: []string{f.listen}}); err != nil {
		t.Fatal(err)
	}
	wantRcode(t, query(t, "127.0.0.4", "udp", f.listen, "other.test.", mdns.TypeA), mdns.RcodeSuccess)
	if err := RemoveConfig(f.root, "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, "api.test.", mdns.TypeA), mdns.RcodeRefused)
	select {
	case err := <-f.done:
		t.Fatalf("exited with a config left: %v", err)
	case <-time.After(time.Second):
	}
	if err := RemoveConfig(f.root, "127.0.0.4", "127.0.0.9"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatal(err)
		}
		f.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("still serving 30s after the last config went")
	}
	// It no longer listens: the address can be bound again.
	pc, err := net.ListenPacket("udp", f.listen)
	if err != nil {
		t.Fatalf("%s still bound: %v", f.listen, err)
	}
	pc.Close()
}

func TestWriteConfigRefusesBadInput(t *testing.T) {
	good := ContainerConfig{Addresses: []string{"10.90.0.2"}, Handle: "h", Names: []Name{{Name: "api.test"}},
		Upstreams: []string{"192.0.2.1"}, Listen: []string{"10.90.0.1"}}
	for field, mod := range map[string]func(*ContainerConfig){
		"addresses": func(c *ContainerConfig) { c.Addresses = []string{"10.90.0.2", "../../etc/passwd"} },
		"handle":    func(c *ContainerConfig) { c.Handle = "" },
		"names":     func(c *ContainerConfig) { c.Names = []Name{{Name: "*.*.test"}} },
		"upstreams": func(c *ContainerConfig) { c.Upstreams = []string{"dns.google"} },
		"listen":    func(c *ContainerConfig) { c.Listen = []string{"10.90.0.1:0"} },
		"proto":     func(c *ContainerConfig) { c.Names = []Name{{Name: "api.test", Proto: "tcp"}} },
	} {
		c := good
		mod(&c)
		root := t.TempDir()
		err := WriteConfig(root, c)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
		if left, _ := filepath.Glob(filepath.Join(Dir(root), "*")); len(left) != 0 {
			t.Errorf("%s: left %v", field, left)
		}
	}
	for _, bad := range []string{"*", "*.", "", "a..b", `evil\.test`, "api.test:53", "x.*.test"} {
		c := good
		c.Names = []Name{{Name: bad}}
		if _, err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("name %q accepted", bad)
		}
	}
	root := t.TempDir()
	if err := WriteConfig(root, good); err != nil {
		t.Fatal(err)
	}
	c, err := readConfig(root, net.ParseIP("10.90.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.Names, c.Upstreams, c.Listen) != "[{api.test. 0 }] [192.0.2.1:53] [10.90.0.1:53]" {
		t.Fatalf("stored %+v", c)
	}
}

func TestDefaultUpstreams(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(p, []byte("nameserver 127.0.0.53\nnameserver 2001:db8::53\nsearch example\n"), 0o644)
	got, err := DefaultUpstreams(p)
	if err != nil || fmt.Sprint(got) != "[127.0.0.53:53 [2001:db8::53]:53]" {
		t.Fatalf("%v %v", got, err)
	}
	os.WriteFile(p, []byte("search example\n"), 0o644)
	if _, err := DefaultUpstreams(p); err == nil {
		t.Fatal("no nameserver accepted")
	}
}

// Containers starting together start one resolver, a detached process of
// its own session; it exits with the last config and the next container
// starts a new one.
func TestStartOnDemandOnce(t *testing.T) {
	root := t.TempDir()
	up := startUpstream(t)
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	old := Command
	Command = func(root string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+root, rootsDirEnv+"="+filepath.Join(root, "roots"))
		return cmd
	}
	defer func() { Command = old }()
	write := func(addr string) {
		if err := WriteConfig(root, ContainerConfig{Addresses: []string{addr}, Handle: "h-" + addr,
			Names: []Name{{Name: "api.test"}}, Upstreams: []string{up.addr}, Listen: []string{listen}}); err != nil {
			t.Fatal(err)
		}
	}
	if Running(root) {
		t.Fatal("running before any start")
	}
	addrs := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	var wg sync.WaitGroup
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		write(a)
		wg.Add(1)
		go func() { defer wg.Done(); errs <- Start(root) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !Running(root) {
		t.Fatal("not running after Start")
	}
	logText := func() string {
		b, _ := os.ReadFile(LogPath(root))
		return string(b)
	}
	if n := strings.Count(logText(), "serving "+root); n != 1 {
		t.Fatalf("%d resolvers started:\n%s", n, logText())
	}
	pid := readPid(t, root)
	// setsid: its own session.
	if sid := sessionOf(t, pid); sid != pid {
		t.Fatalf("resolver %d in session %d", pid, sid)
	}
	// Of root's capabilities it keeps nftables and port 53, for good.
	if os.Geteuid() == 0 {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, want := range []string{"CapPrm:\t0000000000001400", "CapEff:\t0000000000001400", "CapBnd:\t0000000000001400", "NoNewPrivs:\t1"} {
			if !strings.Contains(string(status), want+"\n") {
				t.Errorf("resolver's status lacks %q:\n%s", want, status)
			}
		}
	}
	wantRcode(t, query(t, "127.0.0.3", "udp", listen, "api.test.", mdns.TypeA), mdns.RcodeSuccess)
	wantRcode(t, query(t, "127.0.0.3", "udp", listen, "other.test.", mdns.TypeA), mdns.RcodeRefused)
	b, _ := os.ReadFile(filepath.Join(root, "sets.jsonl"))
	if !strings.Contains(string(b), `"H":"h-127.0.0.3","IP":"198.18.0.10"`) {
		t.Fatalf("sets file: %s", b)
	}

	if err := RemoveConfig(root, addrs...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for Running(root) || alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("resolver %d still running 30s after the last config went:\n%s", pid, logText())
		}
		time.Sleep(50 * time.Millisecond)
	}

	write("127.0.0.2")
	if err := Start(root); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logText(), "serving "+root); n != 2 {
		t.Fatalf("want a second resolver:\n%s", logText())
	}
	wantRcode(t, query(t, "127.0.0.2", "tcp", listen, "api.test.", mdns.TypeA), mdns.RcodeSuccess)
	pid = readPid(t, root)
	RemoveConfig(root, "127.0.0.2")
	for alive(pid) {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("second resolver %d still running", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readPid(t *testing.T, root string) int {
	t.Helper()
	b, err := os.ReadFile(pidPath(root))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid pgrp session ...
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// alive says whether pid runs (a zombie does not: Start's Wait reaps it).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return f[0] != "Z"
}

// network.Attach writes the config itself, in network.DNSConfig's JSON;
// the resolver reads it with the defaults: the host's nameservers and the
// bridge gateways.
func TestReadsNetworkDNSConfig(t *testing.T) {
	root := t.TempDir()
	var rules []network.Rule
	for _, s := range []string{"api.test", "*.example.test:443", "pypi.org:443/tcp", "10.0.0.0/8"} {
		r, err := network.ParseAllow(s)
		if err != nil {
			t.Fatal(err)
		}
		if r.Name != "" {
			rules = append(rules, r)
		}
	}
	data, err := json.Marshal(network.DNSConfig{ID: "c1", H: "abc", Names: rules})
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP("10.90.0.7")
	os.MkdirAll(network.DNSDir(root), 0o700)
	if err := os.WriteFile(network.DNSConfigPath(root, ip), data, 0o600); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(rc, []byte("nameserver 192.0.2.53\n"), 0o644)
	old := ResolvConf
	ResolvConf = rc
	defer func() { ResolvConf = old }()
	c, err := readConfig(root, ip)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintln(c.ID, c.Handle, c.Names, c.Upstreams, c.Listen, c.Addresses)
	want := "c1 abc [{api.test. 0 } {*.example.test. 443 } {pypi.org. 443 tcp}] [192.0.2.53:53] [10.90.0.1:53 [fd6e:7563:6c65:7573::1]:53] [10.90.0.7]\n"
	if got != want {
		t.Fatalf("read\n%s\nwant\n%s", got, want)
	}
	if m := c.Match("www.example.test."); len(m) != 1 || m[0].Port != 443 {
		t.Fatalf("match %v", m)
	}
}

// A descriptor the starter inherited without close-on-exec (a
// supervisor's pipe) is not held open by the long-lived resolver.
func TestStartedResolverHoldsNoInheritedFD(t *testing.T) {
	root := t.TempDir()
	up := startUpstream(t)
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	old := Command
	Command = func(root string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+root, rootsDirEnv+"="+filepath.Join(root, "roots"))
		return cmd
	}
	defer func() { Command = old }()
	if err := WriteConfig(root, ContainerConfig{Addresses: []string{"127.0.0.2"}, Handle: "h",
		Names: []Name{{Name: "api.test"}}, Upstreams: []string{up.addr}, Listen: []string{listen}}); err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	// As a supervisor would pass it: inheritable.
	if _, err := unix.FcntlInt(pw.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	err = Start(root)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	pid := readPid(t, root)
	defer func() {
		// The resolver exits once no config remains: wait for it, or
		// it still writes in the root the test's cleanup removes.
		RemoveConfig(root, "127.0.0.2")
		for deadline := time.Now().Add(10 * time.Second); alive(pid) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		for deadline := time.Now().Add(5 * time.Second); Running(root) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}()
	wantRcode(t, query(t, "127.0.0.2", "udp", listen, "api.test.", mdns.TypeA), mdns.RcodeSuccess)
	// EOF now: no other process holds the write end.
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := pr.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read from the inherited pipe: %d, %v; the resolver (pid %d) holds its write end", n, err, readPid(t, root))
	}
}

// Two state roots share the gateway: their resolvers both listen on it
// (SO_REUSEPORT), the kernel hands each some of the queries, and each
// answers the other root's containers from the registry. One resolver
// going away leaves the other serving both roots' addresses it gets.
func TestTwoRootsShareTheListenAddress(t *testing.T) {
	up := startUpstream(t)
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	registry := t.TempDir()
	type res struct {
		root string
		sets *recorder
		done chan error
	}
	var rs []*res
	for i, addr := range []string{"127.0.0.2", "127.0.0.4"} {
		x := &res{root: t.TempDir(), sets: &recorder{}, done: make(chan error, 1)}
		if err := WriteConfig(x.root, ContainerConfig{Addresses: []string{addr}, Handle: fmt.Sprint("h", i),
			Names: []Name{{Name: "api.test"}}, Upstreams: []string{up.addr}, Listen: []string{listen}}); err != nil {
			t.Fatal(err)
		}
		if err := register(registry, x.root); err != nil {
			t.Fatal(err)
		}
		r := &Resolver{Root: x.root, Sets: x.sets, Roots: registry, Poll: 200 * time.Millisecond}
		ready := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { x.done <- r.Serve(ctx, func(err error) { ready <- err }) }()
		if err := <-ready; err != nil {
			t.Fatalf("resolver %d: %v", i, err)
		}
		t.Cleanup(cancel)
		rs = append(rs, x)
	}
	ask := func(src string, want int) {
		t.Helper()
		for range 24 { // new source ports: the kernel spreads them
			wantRcode(t, query(t, src, "udp", listen, "api.test.", mdns.TypeA), want)
		}
	}
	ask("127.0.0.2", mdns.RcodeSuccess)
	ask("127.0.0.4", mdns.RcodeSuccess)
	if len(rs[0].sets.got()) == 0 || len(rs[1].sets.got()) == 0 {
		t.Fatalf("one resolver got every query (%d, %d): the test shows nothing", len(rs[0].sets.got()), len(rs[1].sets.got()))
	}
	for _, x := range rs {
		for _, a := range x.sets.got() {
			if a.IP != "198.18.0.10" || (a.H != "h0" && a.H != "h1") {
				t.Fatalf("added %v", a)
			}
		}
	}
	// Root 0's container goes: its resolver exits, root 1's serves on.
	if err := RemoveConfig(rs[0].root, "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rs[0].done:
	case <-time.After(30 * time.Second):
		t.Fatal("root 0's resolver still serving 30s after its last config went")
	}
	ask("127.0.0.4", mdns.RcodeSuccess)
	ask("127.0.0.2", mdns.RcodeRefused)
	RemoveConfig(rs[1].root, "127.0.0.4")
	<-rs[1].done
}
