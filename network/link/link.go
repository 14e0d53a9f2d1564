// Package link makes the interfaces of a bridged container, through
// netlink: the host bridge that holds the gateway addresses, and a veth
// pair per container, whose container end is moved into the container's
// network namespace (named by its init's pid) as eth0.
//
// The container's traffic is routed, not switched: its veth is not a port
// of the bridge, and each container address is a host route to its veth.
// Every packet between two containers then crosses the host's forward
// hook, where the firewall applies the sender's egress rules, with no need
// for br_netfilter.
package link

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNotBridge: the bridge's name is taken by another kind of interface.
var ErrNotBridge = errors.New("not a bridge")

// ErrAddrInUse: another container on the host (under another state root)
// routes this address already.
var ErrAddrInUse = errors.New("address already routed on this host")

// LinkLocalGateway is the IPv6 next hop a container uses: each host-side
// veth has it (a link-local address may repeat across interfaces), so the
// host answers the container's neighbour solicitation on that veth.
var LinkLocalGateway = net.ParseIP("fe80::1")

// EnsureBridge makes (or finds) the bridge and gives it the gateway
// addresses, each with its subnet's prefix length.
func EnsureBridge(name string, gws ...*net.IPNet) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	if l.Type() != "bridge" {
		return fmt.Errorf("%s: the host's interface of that name is a %s device, %w", name, l.Type(), ErrNotBridge)
	}
	for _, gw := range gws {
		// No duplicate address detection: a bridge without ports has no
		// carrier, and a tentative address could never be bound.
		a := &netlink.Addr{IPNet: gw, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrReplace(l, a); err != nil {
			return fmt.Errorf("bridge %s: address %s: %w", name, gw, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bridge %s: up: %w", name, err)
	}
	return nil
}

// Addrs are a container's addresses and its gateways (IPv6 ones may be
// nil).
type Addrs struct {
	IPv4, IPv6         net.IP
	Gateway4, Gateway6 net.IP
	// RouteLocalnet lets the host route 127.0.0.0/8 through the
	// host-side veth (route_localnet, on that interface only): a
	// published port then answers a client on the host's 127.0.0.1.
	RouteLocalnet bool
}

// enableForwarding makes the host a router for the containers: IPv4
// forwarding, and IPv6 forwarding on every interface (the replies to a
// container's IPv6 packets come in on the host's uplinks, which must
// forward them too). IPv6 forwarding stops an interface with accept_ra 1
// from accepting router advertisements, so each such interface (and the
// default for new ones) gets accept_ra 2 first: the host keeps the
// addresses and routes it learns that way.
func enableForwarding(veth string, v6 bool) error {
	if err := writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if !v6 {
		return nil
	}
	const conf = "/proc/sys/net/ipv6/conf"
	if b, err := os.ReadFile(filepath.Join(conf, "all", "forwarding")); err == nil && string(b) == "1\n" {
		return nil
	}
	ents, err := os.ReadDir(conf)
	if err != nil {
		return fmt.Errorf("IPv6 forwarding: %w", err)
	}
	for _, e := range ents {
		if e.Name() == "all" {
			continue
		}
		p := filepath.Join(conf, e.Name(), "accept_ra")
		if b, err := os.ReadFile(p); err == nil && string(b) == "1\n" {
			if err := writeSysctl(p, "2"); err != nil {
				return err
			}
		}
	}
	return writeSysctl(filepath.Join(conf, "all", "forwarding"), "1")
}

func writeSysctl(p, v string) error {
	if b, err := os.ReadFile(p); err == nil && string(b) == v+"\n" {
		return nil
	}
	if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
		return fmt.Errorf("sysctl %s: %w", p, err)
	}
	return nil
}

// Attach makes the veth pair host/peer, moves peer into the network
// namespace at nsPath (/proc/PID/ns/net, or a bind mount of one) as eth0
// with a's addresses and routes, and routes a's addresses to host. On
// error, what it made is removed.
func Attach(host, peer, nsPath string, a Addrs) (err error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: peer, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: %w", host, err)
	}
	defer func() {
		if err != nil {
			_ = Delete(host)
		}
	}()
	hl, err := netlink.LinkByName(host)
	if err != nil {
		return fmt.Errorf("veth %s: %w", host, err)
	}
	if a.IPv6 != nil {
		ll := &netlink.Addr{IPNet: &net.IPNet{IP: LinkLocalGateway, Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(hl, ll); err != nil {
			return fmt.Errorf("veth %s: address %s: %w", host, LinkLocalGateway, err)
		}
	}
	if err := netlink.LinkSetUp(hl); err != nil {
		return fmt.Errorf("veth %s: up: %w", host, err)
	}
	if err := enableForwarding(host, a.IPv6 != nil); err != nil {
		return err
	}
	if a.RouteLocalnet {
		if err := writeSysctl(filepath.Join("/proc/sys/net/ipv4/conf", host, "route_localnet"), "1"); err != nil {
			return err
		}
	}
	for _, r := range []struct{ ip, src net.IP }{{a.IPv4, a.Gateway4}, {a.IPv6, a.Gateway6}} {
		if r.ip == nil {
			continue
		}
		bits := 32
		if r.ip.To4() == nil {
			bits = 128
		}
		route := &netlink.Route{LinkIndex: hl.Attrs().Index, Dst: &net.IPNet{IP: r.ip, Mask: net.CIDRMask(bits, bits)}, Src: r.src, Scope: netlink.SCOPE_LINK}
		// RouteAdd is exclusive: it claims the address on the host.
		if err := netlink.RouteAdd(route); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("route %s: %w", r.ip, ErrAddrInUse)
			}
			return fmt.Errorf("route %s: %w", r.ip, err)
		}
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in the container: %w", err)
	}
	defer h.Close()
	return inside(h, peer, a)
}

// inside configures the container's end.
func inside(h *netlink.Handle, peer string, a Addrs) error {
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("container lo: %w", err)
	}
	l, err := h.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("container veth: %w", err)
	}
	if err := h.LinkSetName(l, "eth0"); err != nil {
		return fmt.Errorf("container eth0: %w", err)
	}
	if a.IPv4 != nil {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: a.IPv4, Mask: net.CIDRMask(32, 32)}}); err != nil {
			return fmt.Errorf("container eth0 %s: %w", a.IPv4, err)
		}
	}
	if a.IPv6 != nil {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: a.IPv6, Mask: net.CIDRMask(128, 128)}, Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("container eth0 %s: %w", a.IPv6, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("container eth0 up: %w", err)
	}
	idx := l.Attrs().Index
	if a.IPv4 != nil {
		gw := &net.IPNet{IP: a.Gateway4, Mask: net.CIDRMask(32, 32)}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: gw, Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("container route to %s: %w", a.Gateway4, err)
		}
		if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: a.Gateway4, Src: a.IPv4}); err != nil {
			return fmt.Errorf("container default route: %w", err)
		}
	}
	if a.IPv6 != nil {
		// The gateway's ULA address is on the host's bridge: reach it,
		// and everything else, through the veth's link-local peer.
		if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: LinkLocalGateway, Src: a.IPv6, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}); err != nil {
			return fmt.Errorf("container IPv6 default route: %w", err)
		}
	}
	return nil
}

// NewNetNS makes a network namespace that outlives its maker: a bind
// mount of it at path (for an engine whose container joins it, as
// runsc does).
func NewNetNS(path string) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	// The new namespace is this thread's only: lock it, switch back
	// after, and let it die if switching back failed.
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err = unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	return nil
}

// RemoveNetNS unmounts and removes a NewNetNS; one already gone is no
// error.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network namespace %s: %w", path, err)
	}
	return nil
}

// Delete removes the veth host (its peer and its routes go with it); a
// veth already gone is no error.
func Delete(host string) error {
	l, err := netlink.LinkByName(host)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("veth %s: %w", host, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete veth %s: %w", host, err)
	}
	return nil
}

// Exists says whether the host has an interface of that name.
func Exists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}
