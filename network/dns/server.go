package dns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/netutil"
	"golang.org/x/sys/unix"

	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/network/ipam"
	"github.com/nucleus-run/nucleus/policy"
)

// Sets is where the resolver puts the addresses it hands out: the
// container's firewall name sets. network/firewall's AddResolved has this
// signature (wrap it in SetsFunc).
type Sets interface {
	AddResolved(h string, ip net.IP, proto string, port uint16, ttl time.Duration) error
}

// SetsFunc adapts a function to Sets.
type SetsFunc func(h string, ip net.IP, proto string, port uint16, ttl time.Duration) error

// AddResolved calls f.
func (f SetsFunc) AddResolved(h string, ip net.IP, proto string, port uint16, ttl time.Duration) error {
	return f(h, ip, proto, port, ttl)
}

// MinTTL is the shortest timeout an address gets in a set: a record with
// TTL 0 must still be usable for the connect that follows the answer.
const MinTTL = time.Second

// Resolver answers the containers of one state root.
type Resolver struct {
	Root string
	Sets Sets
	// Log receives denials and errors; nil discards them.
	Log *log.Logger
	// Timeout bounds one exchange with one upstream (default 2s).
	Timeout time.Duration
	// Poll is how often the config directory is re-read besides inotify
	// (default 5s).
	Poll time.Duration
	// ExitLock, when set, is held while the resolver decides that no
	// config remains and stops listening, so a container that writes its
	// config and then starts the resolver under the same lock either
	// keeps this one running or starts the next; unlock(true) must also
	// give up whatever says this resolver runs.
	ExitLock func() (unlock func(exiting bool), err error)
	// Roots, if set, is the host's registry of state roots with a
	// resolver (see RootsDir). The resolvers of several roots share the
	// gateway addresses (SO_REUSEPORT), so the kernel may hand any of
	// them a query from any root's container: each answers for all.
	Roots string
	// TCPConns bounds the TCP connections of a listener (default
	// MaxTCPConns).
	TCPConns int

	mu        sync.Mutex
	listeners map[string]*listener
	limit     logLimit
	inflight  inflight
	// fullAt is when each container was last told its set is full.
	fullAt map[string]time.Time
}

// auditFull writes a dns_set_full event to the container's audit log, at
// most once a minute per container.
func (r *Resolver) auditFull(cfg ContainerConfig, name string) {
	if cfg.AuditLog == "" {
		return
	}
	r.mu.Lock()
	if r.fullAt == nil {
		r.fullAt = map[string]time.Time{}
	}
	if time.Since(r.fullAt[cfg.Handle]) < time.Minute {
		r.mu.Unlock()
		return
	}
	r.fullAt[cfg.Handle] = time.Now()
	r.mu.Unlock()
	a, err := policy.OpenAudit(cfg.AuditLog, cfg.ID, "", false)
	if err != nil || a == nil {
		r.logf("%s: audit log: %v", cfg.Handle, err)
		return
	}
	defer a.Close()
	a.Event("dns_set_full", map[string]any{"name": name, "limit": firewall.SetLimit,
		"why": "the container's address set is full: answers are REFUSED until addresses expire"})
}

// MaxInFlight bounds the queries of one source being forwarded at once,
// MaxTCPConns the TCP connections of a listener, and MaxTCPPerSource
// those of one source address (more are closed at once): a container
// that floods or holds the resolver must not take it (and the others'
// DNS) down.
const (
	MaxInFlight     = 64
	MaxTCPConns     = 1024
	MaxTCPPerSource = 16
)

// TCPReadTimeout is how long a TCP client has to send a whole query, and
// to send the next one on the same connection.
const TCPReadTimeout = 3 * time.Second

// UpstreamUDPSize is the EDNS buffer size of every query sent upstream
// (the DNS flag day's 1232: no fragments); a bigger answer is truncated
// and the client retries over TCP.
const UpstreamUDPSize = 1232

type inflight struct {
	mu  sync.Mutex
	per map[string]int
}

func (f *inflight) acquire(src string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.per == nil {
		f.per = map[string]int{}
	}
	if f.per[src] >= MaxInFlight {
		return false
	}
	f.per[src]++
	return true
}

func (f *inflight) release(src string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.per[src]--; f.per[src] <= 0 {
		delete(f.per, src)
	}
}

type listener struct {
	udp, tcp *mdns.Server
}

func (r *Resolver) logf(format string, a ...any) {
	if r.Log != nil && r.limit.allow() {
		r.Log.Printf(format, a...)
	}
}

// logLimit keeps a container that floods denied queries from filling the
// disk with the log: at most 20 lines a second.
type logLimit struct {
	mu     sync.Mutex
	second int64
	n      int
}

func (l *logLimit) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now().Unix()
	if now != l.second {
		l.second, l.n = now, 0
	}
	l.n++
	return l.n <= 20
}

// Serve listens on the addresses the configs name and answers until no
// config remains or ctx is done. ready, if not nil, is called once the
// first listeners are up (or failed, with the error).
func (r *Resolver) Serve(ctx context.Context, ready func(error)) error {
	if r.Timeout == 0 {
		r.Timeout = 2 * time.Second
	}
	if r.Poll == 0 {
		r.Poll = 5 * time.Second
	}
	if err := os.MkdirAll(Dir(r.Root), 0o700); err != nil {
		if ready != nil {
			ready(err)
		}
		return err
	}
	changed, stopWatch, err := watch(Dir(r.Root))
	if err != nil {
		r.logf("inotify on %s: %v; polling only", Dir(r.Root), err)
		changed = make(chan struct{})
		stopWatch = func() {}
	}
	defer stopWatch()
	defer r.closeAll()

	_, err = r.reconcile()
	if ready != nil {
		// A sibling's unreadable config is logged, not the
		// starter's failure.
		var le *listenError
		if !errors.As(err, &le) {
			err = nil
		} else if err != nil {
			r.logf("%v", err)
		}
		ready(err)
	}
	tick := time.NewTicker(r.Poll)
	defer tick.Stop()
	for {
		n, err := r.reconcile()
		if err != nil {
			r.logf("%v", err)
		}
		if n == 0 {
			if done, err := r.exitIfIdle(); err != nil {
				r.logf("%v", err)
			} else if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick.C:
		}
	}
}

// exitIfIdle stops listening when, under ExitLock, no config remains. The
// listeners are closed before the lock is released, so the next resolver
// can bind the same addresses.
func (r *Resolver) exitIfIdle() (bool, error) {
	unlock := func(bool) {}
	if r.ExitLock != nil {
		u, err := r.ExitLock()
		if err != nil {
			return false, err
		}
		unlock = u
	}
	if _, n, _ := configs(r.Root); n > 0 {
		unlock(false)
		return false, nil
	}
	r.closeAll()
	unlock(true)
	return true, nil
}

// reconcile listens on every address a config names and stops listening on
// the others; it returns how many configs there are.
func (r *Resolver) reconcile() (int, error) {
	cs, files, cerr := configs(r.Root)
	want := map[string]bool{}
	for _, c := range cs {
		for _, l := range c.Listen {
			want[l] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.listeners == nil {
		r.listeners = map[string]*listener{}
	}
	for addr, l := range r.listeners {
		if !want[addr] {
			l.close()
			delete(r.listeners, addr)
			r.logf("stopped listening on %s", addr)
		}
	}
	errs := []error{cerr}
	for addr := range want {
		if r.listeners[addr] != nil {
			continue
		}
		l, err := r.listen(addr)
		if err != nil {
			errs = append(errs, &listenError{addr, err})
			continue
		}
		r.listeners[addr] = l
		r.logf("listening on %s udp+tcp", addr)
	}
	return files, errors.Join(errs...)
}

type listenError struct {
	addr string
	err  error
}

func (e *listenError) Error() string { return fmt.Sprintf("listen on %s: %v", e.addr, e.err) }
func (e *listenError) Unwrap() error { return e.err }

func (r *Resolver) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for addr, l := range r.listeners {
		l.close()
		delete(r.listeners, addr)
	}
}

func (l *listener) close() {
	l.udp.Shutdown()
	l.tcp.Shutdown()
}

// listenConfig binds with IP_FREEBIND and SO_REUSEPORT: a gateway address may not be usable
// yet (IPv6 duplicate address detection keeps it tentative for a second or
// two after the bridge gets it), and the resolver must not fail for that.
var listenConfig = net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "udp6" || network == "tcp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}
		// The resolvers of other state roots listen on the same
		// gateway addresses.
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}}

func (r *Resolver) listen(addr string) (*listener, error) {
	ctx := context.Background()
	pc, err := listenConfig.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := listenConfig.Listen(ctx, "tcp", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	l := &listener{
		udp: &mdns.Server{PacketConn: pc, Handler: r},
		// The per-source cap is checked first, in Accept, so a
		// source over it never holds one of the MaxTCPConns slots.
		tcp: &mdns.Server{Listener: netutil.LimitListener(&perSource{Listener: ln, max: MaxTCPPerSource, log: r.logf}, cmp.Or(r.TCPConns, MaxTCPConns)), Handler: r,
			ReadTimeout: TCPReadTimeout, IdleTimeout: func() time.Duration { return TCPReadTimeout }},
	}
	started := make(chan struct{}, 2)
	l.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	l.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go l.udp.ActivateAndServe()
	go l.tcp.ActivateAndServe()
	<-started
	<-started
	return l, nil
}

// ServeDNS answers one query: REFUSED unless it comes from a container of
// this root and asks for a name that container may resolve; otherwise the
// upstream's answer, whose addresses are first put into the container's
// sets so that the connect following the answer is allowed.
func (r *Resolver) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	src := addrIP(w.RemoteAddr())
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	resp := r.answer(src, network, req)
	if resp == nil {
		return
	}
	if network == "udp" {
		size := mdns.MinMsgSize
		if o := req.IsEdns0(); o != nil && int(o.UDPSize()) > size {
			size = int(o.UDPSize())
		}
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		r.logf("%s: reply: %v", src, err)
	}
}

// perSource closes, as soon as they are accepted, the TCP connections of
// a source address that has max open already.
type perSource struct {
	net.Listener
	max int
	log func(string, ...any)
	mu  sync.Mutex
	per map[string]int
}

func (l *perSource) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := addrIP(c.RemoteAddr()).String()
		l.mu.Lock()
		if l.per == nil {
			l.per = map[string]int{}
		}
		if l.per[src] >= l.max {
			l.mu.Unlock()
			c.Close()
			l.log("%s: more than %d TCP connections: closed", src, l.max)
			continue
		}
		l.per[src]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.per[src]--; l.per[src] <= 0 {
				delete(l.per, src)
			}
		}}, nil
	}
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func addrIP(a net.Addr) net.IP {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return ip
}

func (r *Resolver) answer(src net.IP, network string, req *mdns.Msg) *mdns.Msg {
	refuse := func() *mdns.Msg {
		m := new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeRefused)
		return m
	}
	if src == nil {
		return refuse()
	}
	cfg, err := r.lookup(src)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.logf("%s: %v", src, err)
		}
		r.logf("%s: not a container of this root: REFUSED", src)
		return refuse()
	}
	// One question of class IN in a standard query: a second question
	// would ride along with an allowed first one.
	if req.Response || req.Opcode != mdns.OpcodeQuery || len(req.Question) != 1 || req.Question[0].Qclass != mdns.ClassINET {
		r.logf("%s: not a single IN query: REFUSED", src)
		return refuse()
	}
	q := req.Question[0]
	rules := cfg.Match(q.Name)
	if len(rules) == 0 {
		r.logf("%s (%s): %s %s denied: REFUSED", src, cfg.Handle, q.Name, mdns.TypeToString[q.Qtype])
		return refuse()
	}
	if q.Qtype != mdns.TypeA && q.Qtype != mdns.TypeAAAA {
		// Only addresses open a path, and other types (TXT, NULL,
		// ANY...) would carry data both ways: answered empty (no
		// data), never forwarded.
		m := new(mdns.Msg)
		m.SetReply(req)
		return m
	}
	if !r.inflight.acquire(src.String()) {
		r.logf("%s: more than %d queries in flight: SERVFAIL", src, MaxInFlight)
		m := new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeServerFailure)
		return m
	}
	resp, err := r.forward(cfg.Upstreams, network, req)
	r.inflight.release(src.String())
	if err != nil {
		r.logf("%s: %s: %v", src, q.Name, err)
		m := new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeServerFailure)
		return m
	}
	for _, rr := range addresses(q.Name, resp.Answer) {
		ip, ttl := rrIP(rr), time.Duration(rr.Header().Ttl)*time.Second
		ttl = min(max(ttl, MinTTL), MaxTTL)
		if why := notReachable(ip); why != "" {
			// Whoever answers for an allowed name must not open a
			// path to another container, the host or a metadata
			// service: such an address stays out of the set (the
			// client still gets the answer, which leads nowhere).
			r.logf("%s: %s: %s is %s: not allowed", src, q.Name, ip, why)
			continue
		}
		for _, rule := range rules {
			if err := r.Sets.AddResolved(cfg.Handle, ip, rule.Proto, rule.Port, ttl); errors.Is(err, firewall.ErrSetFull) {
				// A hostile upstream (or a name with very many
				// addresses) must not grow the ruleset without
				// bound: the name is refused until addresses
				// expire.
				r.logf("%s: %s: %v: REFUSED", src, q.Name, err)
				r.auditFull(cfg, q.Name)
				return refuse()
			} else if err != nil {
				// Without the address in the set the connect
				// would be dropped; say so now.
				r.logf("%s: %s: add %s to the set of %s: %v", src, q.Name, ip, cfg.Handle, err)
				m := new(mdns.Msg)
				m.SetRcode(req, mdns.RcodeServerFailure)
				return m
			}
		}
	}
	return resp
}

// forward asks the upstreams in order over the client's transport (a
// truncated UDP answer goes back truncated, and the client retries over
// TCP). The query it sends is made afresh, not copied: nothing the client
// chose beyond the name's letters and the type (A or AAAA) reaches the
// upstream, so the letter case of an allowed name, header bits, EDNS
// options and the id cannot carry data out.
func (r *Resolver) forward(upstreams []string, network string, req *mdns.Msg) (*mdns.Msg, error) {
	c := &mdns.Client{Net: network, Timeout: r.Timeout, UDPSize: UpstreamUDPSize}
	name := strings.ToLower(req.Question[0].Name)
	var errs []error
	for _, u := range upstreams {
		// A fresh random id per upstream: an id the container knew
		// would leave only the port to guess for a forged answer.
		q := new(mdns.Msg)
		q.SetQuestion(name, req.Question[0].Qtype)
		q.SetEdns0(UpstreamUDPSize, false)
		resp, _, err := c.Exchange(q, u)
		if err == nil && !sameQuestion(resp, q) {
			err = errors.New("the answer is for another question")
		}
		if err == nil {
			return reply(req, resp), nil
		}
		errs = append(errs, fmt.Errorf("upstream %s: %w", u, err))
	}
	return nil, errors.Join(errs...)
}

// reply is the upstream's answer to the client: its rcode and answer and
// authority sections, under the client's own id and question, with EDNS
// only if the client used it (and then without the upstream's options).
func reply(req, resp *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Rcode = resp.Rcode
	m.Truncated = resp.Truncated
	m.RecursionAvailable = resp.RecursionAvailable
	m.Answer, m.Ns = resp.Answer, resp.Ns
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(max(o.UDPSize(), mdns.MinMsgSize), false)
	}
	return m
}

func sameQuestion(resp, q *mdns.Msg) bool {
	if len(resp.Question) != 1 {
		return false
	}
	a, b := resp.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && mdns.CanonicalName(a.Name) == mdns.CanonicalName(b.Name)
}

// addresses returns the A and AAAA records that answer qname, following
// CNAMEs from it: records for other owners (which a hostile or confused
// upstream might add) stay out of the sets.
func addresses(qname string, answer []mdns.RR) []mdns.RR {
	names := map[string]bool{mdns.CanonicalName(qname): true}
	// A chain is at most as long as the answer.
	for range answer {
		grew := false
		for _, rr := range answer {
			if c, ok := rr.(*mdns.CNAME); ok && names[mdns.CanonicalName(c.Hdr.Name)] && !names[mdns.CanonicalName(c.Target)] {
				names[mdns.CanonicalName(c.Target)] = true
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	var out []mdns.RR
	for _, rr := range answer {
		if !names[mdns.CanonicalName(rr.Header().Name)] {
			continue
		}
		switch rr.(type) {
		case *mdns.A, *mdns.AAAA:
			out = append(out, rr)
		}
	}
	return out
}

// MaxTTL caps how long an answer's address stays in a set, so an
// upstream can't keep one there for years with one answer.
const MaxTTL = 24 * time.Hour

// notReachable says why ip must never enter a container's set from a DNS
// answer ("" if it may): the bridge's own subnets (other containers, the
// gateways), loopback, link-local, multicast, unspecified and IPv4-mapped
// IPv6 addresses, and the metadata services.
func notReachable(ip net.IP) string {
	switch {
	case ip == nil:
		return "not an address"
	case len(ip) == net.IPv6len && ip.To4() != nil:
		return "an IPv4-mapped IPv6 address"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast(), ip.IsMulticast():
		return "link-local or multicast"
	case ipam.Subnet4.Contains(ip), ipam.Subnet6.Contains(ip):
		return "on the containers' bridge"
	}
	if firewall.IsMetadata(ip) {
		return "a metadata service"
	}
	return ""
}

func rrIP(rr mdns.RR) net.IP {
	switch rr := rr.(type) {
	case *mdns.A:
		return rr.A.To4()
	case *mdns.AAAA:
		return rr.AAAA
	}
	return nil
}
