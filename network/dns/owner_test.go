package dns

import (
	"net"
	"testing"

	mdns "github.com/miekg/dns"
)

// The other tests play containers with loopback sources, which no veth
// routes: they stand for their configs' containers.
func init() {
	ownsAddr = func(ip net.IP, h string) bool { return ip.IsLoopback() || routedVia(ip, h) }
}

// TestStaleConfigRefused (red team S5a): a config whose container's veth
// is not the route to its address (the container died without a delete;
// another, maybe of another root, has the address now) answers nothing:
// its allowlist would serve the new holder of the address.
func TestStaleConfigRefused(t *testing.T) {
	if routedVia(net.ParseIP("127.0.0.2"), "h1") {
		t.Fatal("127.0.0.2 is routed via nvh1")
	}
	saved := ownsAddr
	ownsAddr = routedVia
	defer func() { ownsAddr = saved }()
	f := serve(t, Name{Name: "api.test"})
	wantRcode(t, query(t, "127.0.0.2", "udp", f.listen, "api.test.", mdns.TypeA), mdns.RcodeRefused)
	if got := f.sets.got(); len(got) != 0 {
		t.Fatalf("a stale config's query added %v", got)
	}
}
