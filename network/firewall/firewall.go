// Package firewall owns nucleus's nftables ruleset: one table, inet
// nucleus, with base chains shared by every container and a chain and
// sets per container, all made through netlink (github.com/google/nftables),
// never by running nft or iptables.
//
// Egress from a container is deny-by-default: the forward base chain sends
// whatever comes in on a container's veth to that container's chain c-<h>,
// which drops the metadata addresses first, accepts the allowed CIDRs and
// the addresses the resolver put in its name sets, records what else it
// sees in a denied set and drops it.
package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the table nucleus owns (family inet).
const TableName = "nucleus"

// VethPrefix starts the name of every container's host-side veth; the
// base chains match it.
const VethPrefix = "nv"

// metadataBase are the cloud metadata services: all of IPv4 link-local
// (never a routed destination; AWS's 169.254.169.254/.253/.123, EKS's
// 169.254.170.2/.23, ...), Alibaba's 100.100.100.200, Azure's
// 168.63.129.16, IPv6 link-local, AWS's fd00:ec2::/64 (::254, ::23...)
// and GCP's fd20:ce::254.
var metadataBase = []string{"169.254.0.0/16", "100.100.100.200/32", "168.63.129.16/32", "fe80::/10", "fd00:ec2::/64", "fd20:ce::254/128"}

// MetadataNets are the prefixes dropped for every container before any
// allow rule, and that a DNS answer never adds to a set: metadataBase,
// and each IPv4 one embedded in IPv6 as NAT64 (well-known 64:ff9b::/96
// and local-use 64:ff9b:1::/96) and 6to4 (2002::/16) gateways would
// translate it.
var MetadataNets = func() []*net.IPNet {
	var out []*net.IPNet
	for _, s := range metadataBase {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			panic(err)
		}
		out = append(out, n)
	}
	for _, n := range out[:len(out):len(out)] {
		v4 := n.IP.To4()
		if v4 == nil {
			continue
		}
		ones, _ := n.Mask.Size()
		for _, pfx := range []string{"64:ff9b::", "64:ff9b:1::"} {
			ip := net.ParseIP(pfx).To16()
			copy(ip[12:], v4)
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(96+ones, 128)})
		}
		ip := make(net.IP, net.IPv6len)
		ip[0], ip[1] = 0x20, 0x02
		copy(ip[2:], v4)
		out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(16+ones, 128)})
	}
	return out
}()

// IsMetadata says whether ip is in MetadataNets.
func IsMetadata(ip net.IP) bool {
	for _, n := range MetadataNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// DNSRate is how many DNS packets a second each container address may
// send to the resolver (twice that in a burst); more are dropped, so one
// container's flood leaves the others' lookups alone.
const DNSRate = 200

// MaxConns is how many connections each container address may have in
// the host's conntrack table; a new one beyond is dropped, so one
// container can't fill the table (nf_conntrack_max) for the host.
const MaxConns = 4096

// SetLimit is how many addresses each of a container's name sets holds
// at most: an upstream answering an allowed name cannot grow the ruleset
// without bound. AddResolved fails with ErrSetFull beyond it.
const SetLimit = 4096

// lockName is an abstract socket in the host's network namespace whose
// binding serializes the changes of every nucleus on the host (the table
// is the host's, whatever the state root). It leaves no file behind, and
// the kernel releases it when its holder dies.
var lockName = "@nucleus-firewall-lock"

// Allow is an accepted destination: a prefix, with an optional protocol
// ("" = any, tcp, udp) and port (0 = any; a port with no protocol is
// either).
type Allow struct {
	Net   *net.IPNet
	Proto string
	Port  uint16
}

// Publish forwards HostPort on the host (on HostIP only, if set) to
// ContainerPort.
type Publish struct {
	HostIP        net.IP
	HostPort      uint16
	ContainerPort uint16
	Proto         string
}

// Container is one container's share of the ruleset.
type Container struct {
	// H names its chain and sets (Chain(H), ...); Veth is its host-side
	// interface.
	H    string
	Veth string
	// IPv4 and IPv6 are its addresses (IPv6 may be nil); Gateways are
	// the addresses it may send DNS to (the resolver's).
	IPv4, IPv6 net.IP
	Gateways   []net.IP
	Allow      []Allow
	Publish    []Publish
}

// Names of a container's chains and sets.
func Chain(h string) string { return "c-" + h }

// PublishChain holds what may enter container h's veth through its
// published ports.
func PublishChain(h string) string { return "pub-" + h }
func setName(kind string, v6 bool, h string) string {
	if v6 {
		return kind + "6-" + h
	}
	return kind + "4-" + h
}

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}

// ErrFirewall is the class of every error of this package.
var ErrFirewall = errors.New("nftables")

// ErrSetFull: a container's name set holds SetLimit addresses already.
var ErrSetFull = errors.New("the container's set is full")

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrFirewall, what, err)
}

func lock() (func(), error) {
	for {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("firewall lock: %w", err)
		}
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: lockName})
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		unix.Close(fd)
		if !errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("firewall lock: %w", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func conn() (*nftables.Conn, error) {
	c, err := nftables.New()
	return c, wrap("netlink", err)
}

// base chains and the regular chains they jump to.
var (
	chForward = &nftables.Chain{Name: "forward", Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}
	chInput   = &nftables.Chain{Name: "input", Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter}
	chPost    = &nftables.Chain{Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
	chPre     = &nftables.Chain{Name: "prerouting", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}
	chOutput  = &nftables.Chain{Name: "output", Table: table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest}
	chSpoof   = &nftables.Chain{Name: "antispoof", Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle}
	chEgress  = &nftables.Chain{Name: "egress", Table: table}
	chPublish = &nftables.Chain{Name: "publish", Table: table}
	chGuard   = &nftables.Chain{Name: "publishguard", Table: table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityFilter}
	chPubOK   = &nftables.Chain{Name: "published", Table: table}
	chLoSNAT  = &nftables.Chain{Name: "loopbacksnat", Table: table}
	setGw4    = &nftables.Set{Table: table, Name: "gateways4", KeyType: nftables.TypeIPAddr}
	setGw6    = &nftables.Set{Table: table, Name: "gateways6", KeyType: nftables.TypeIP6Addr}
	// Per source address: its DNS packets' rate (to drop a flood
	// that would starve the other containers' lookups), and its
	// connections in conntrack (to keep one container from filling the
	// host's table).
	setDNSRate4 = &nftables.Set{Table: table, Name: "dnsrate4", KeyType: nftables.TypeIPAddr, Dynamic: true, HasTimeout: true, Timeout: time.Minute, Size: 65535}
	setDNSRate6 = &nftables.Set{Table: table, Name: "dnsrate6", KeyType: nftables.TypeIP6Addr, Dynamic: true, HasTimeout: true, Timeout: time.Minute, Size: 65535}
	setConns4   = &nftables.Set{Table: table, Name: "conns4", KeyType: nftables.TypeIPAddr, Dynamic: true, Size: 65535}
	setConns6   = &nftables.Set{Table: table, Name: "conns6", KeyType: nftables.TypeIP6Addr, Dynamic: true, Size: 65535}
	iifVeth     = ifPrefix(expr.MetaKeyIIFNAME, VethPrefix)
	oifVeth     = ifPrefix(expr.MetaKeyOIFNAME, VethPrefix)
	stateEstab  = ctState(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
)

// baseVersion is an empty chain whose name says which version of the
// base rules the table has; bump it when they change.
const baseVersion = "base-v10"

// ensureBase makes the table and its base chains once; the caller holds
// the lock.
func ensureBase(c *nftables.Conn) error {
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err == nil {
		if _, err := c.ListChain(table, baseVersion); err == nil {
			return nil
		}
		// An older nucleus made the base chains: replace their rules,
		// keeping the containers' chains and sets.
		for _, ch := range []*nftables.Chain{chForward, chInput, chPost, chPre, chOutput} {
			c.FlushChain(ch)
		}
		for _, ch := range []*nftables.Chain{chSpoof, chGuard} {
			if _, err := c.ListChain(table, ch.Name); err == nil {
				c.FlushChain(ch)
			}
		}
	}
	c.AddTable(table)
	for _, ch := range []*nftables.Chain{chSpoof, chForward, chInput, chPost, chPre, chOutput, chEgress, chPublish, chPubOK, chGuard, chLoSNAT, {Name: baseVersion, Table: table}} {
		c.AddChain(ch)
	}
	for _, s := range []*nftables.Set{setGw4, setGw6, setDNSRate4, setDNSRate6, setConns4, setConns6} {
		if err := c.AddSet(s, nil); err != nil {
			return wrap("add set "+s.Name, err)
		}
	}
	rule := func(ch *nftables.Chain, e ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: concat(e...)})
	}
	// forward: replies pass; a container's packets go to its chain (via
	// egress), and what no chain accepted is dropped; a published port's
	// DNAT'd connections reach the container; nothing else does.
	// A container sends only from its own addresses: its veth must be
	// the route back to the source (strict reverse path), so it can
	// neither pass as another container (the resolver tells containers
	// apart by source) nor have replies sent elsewhere.
	rule(chSpoof, iifVeth, []expr.Any{&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, ResultOIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)}, &expr.Counter{}, drop()})
	// Nothing from a container is for the host's loopback (its veth
	// has route_localnet when it publishes ports, for the replies to a
	// client on 127.0.0.1, which are de-NATed only after this hook).
	rule(chSpoof, iifVeth, matchNet(&net.IPNet{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}, true), []expr.Any{&expr.Counter{}, drop()})
	// Nor is anything from any other interface than lo: a neighbour
	// on the LAN sending to 127.0.0.1 through the host's MAC would
	// otherwise be DNAT'd to a port published on 127.0.0.1 alone before
	// the kernel's martian check (CVE-2020-8558). This hook runs before
	// the DNAT one.
	notLo := []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifName(expr.MetaKeyIIFNAME, "lo")[1].(*expr.Cmp).Data}}
	rule(chSpoof, notLo, matchNet(&net.IPNet{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}, true), []expr.Any{&expr.Counter{}, drop()})
	rule(chSpoof, notLo, matchNet(&net.IPNet{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)}, true), []expr.Any{&expr.Counter{}, drop()})
	rule(chForward, stateEstab, []expr.Any{accept()})
	// At most MaxConns connections in conntrack per container address.
	connCap := func(v6 bool) []expr.Any {
		set := setConns4
		if v6 {
			set = setConns6
		}
		return concat(iifVeth, nfproto(v6), ctState(expr.CtStateBitNEW), []expr.Any{loadAddr(v6, false, 1),
			&expr.Dynset{SrcRegKey: 1, SetName: set.Name, SetID: set.ID, Operation: uint32(unix.NFT_DYNSET_OP_ADD),
				Exprs: []expr.Any{&expr.Connlimit{Count: MaxConns, Flags: 1 /* NFT_CONNLIMIT_F_INV: over */}}},
			&expr.Counter{}, drop()})
	}
	rule(chForward, connCap(false))
	rule(chForward, connCap(true))
	rule(chForward, iifVeth, []expr.Any{jump(chEgress.Name)})
	rule(chForward, iifVeth, []expr.Any{&expr.Counter{}, drop()})
	dnat := []expr.Any{&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: nativeU32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)}}
	rule(chForward, oifVeth, dnat, []expr.Any{accept()})
	rule(chForward, oifVeth, []expr.Any{drop()})
	// A published port's new connection, forwarded or the host's own,
	// enters only the veth of the container that publishes it, on the
	// port it publishes: the DNAT rules of a container killed before its
	// delete then lead nowhere, even when another container (of another
	// state root) has its address now.
	// (Each container's rules in chPubOK end in a drop; a container an
	// older nucleus made has none there, and keeps its published ports.)
	rule(chGuard, oifVeth, dnat, ctState(expr.CtStateBitNEW), []expr.Any{jump(chPubOK.Name)})
	// input: from a container, only DNS to a gateway (the resolver) and
	// replies reach the host.
	// The rate of DNS counts every packet, also those of a socket
	// conntrack calls established.
	for _, v6 := range []bool{false, true} {
		gw, rate := setGw4, setDNSRate4
		if v6 {
			gw, rate = setGw6, setDNSRate6
		}
		for _, proto := range []string{"udp", "tcp"} {
			rule(chInput, iifVeth, nfproto(v6), []expr.Any{loadAddr(v6, true, 1), &expr.Lookup{SourceRegister: 1, SetName: gw.Name, SetID: gw.ID}},
				matchPort(proto, 53), []expr.Any{loadAddr(v6, false, 1),
					&expr.Dynset{SrcRegKey: 1, SetName: rate.Name, SetID: rate.ID, Operation: uint32(unix.NFT_DYNSET_OP_UPDATE),
						Exprs: []expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: DNSRate, Over: true, Unit: expr.LimitTimeSecond, Burst: 2 * DNSRate}}},
					&expr.Counter{}, drop()})
		}
	}
	rule(chInput, iifVeth, stateEstab, []expr.Any{accept()})
	rule(chInput, connCap(false))
	rule(chInput, connCap(true))
	for _, v6 := range []bool{false, true} {
		gw := setGw4
		if v6 {
			gw = setGw6
		}
		for _, proto := range []string{"udp", "tcp"} {
			rule(chInput, iifVeth, nfproto(v6), []expr.Any{loadAddr(v6, true, 1), &expr.Lookup{SourceRegister: 1, SetName: gw.Name, SetID: gw.ID}},
				matchPort(proto, 53), []expr.Any{accept()})
		}
	}
	// Neighbour discovery: a container finds its IPv6 gateway (the
	// veth's fe80::1) with it.
	for _, typ := range []byte{135, 136} {
		rule(chInput, iifVeth, nfproto(true), []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}}, accept()})
	}
	rule(chInput, iifVeth, []expr.Any{drop()})
	// postrouting: masquerade what a container sends off the host.
	rule(chPost, iifVeth, []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte(VethPrefix)}, &expr.Masq{}})
	// A client on the host's 127.0.0.1 of a published port: its source
	// becomes the gateway (per container, loopbacksnat), to which the
	// container can reply.
	rule(chPost, oifVeth, nfproto(false), []expr.Any{jump(chLoSNAT.Name)})
	// DNAT of published ports, for packets from elsewhere and from the
	// host itself.
	fibLocal := []expr.Any{&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: nativeU32(unix.RTN_LOCAL)}}
	// A container's DNS to a gateway is for the resolver, never for a
	// port published on every address (which would answer for it).
	for _, v6 := range []bool{false, true} {
		gw := setGw4
		if v6 {
			gw = setGw6
		}
		for _, proto := range []string{"udp", "tcp"} {
			rule(chPre, iifVeth, nfproto(v6), []expr.Any{loadAddr(v6, true, 1), &expr.Lookup{SourceRegister: 1, SetName: gw.Name, SetID: gw.ID}},
				matchPort(proto, 53), []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}})
		}
	}
	rule(chPre, fibLocal, []expr.Any{jump(chPublish.Name)})
	rule(chOutput, fibLocal, []expr.Any{jump(chPublish.Name)})
	return wrap("create table inet "+TableName, c.Flush())
}

func nativeU32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// Ensure makes the table and its base chains if they are not there.
func Ensure() error {
	unlock, err := lock()
	if err != nil {
		return wrap("lock", err)
	}
	defer unlock()
	c, err := conn()
	if err != nil {
		return err
	}
	return ensureBase(c)
}

// Add installs c's chain, sets and rules (replacing any it had). A
// failure removes what it made.
func Add(ct Container) (err error) {
	unlock, err := lock()
	if err != nil {
		return wrap("lock", err)
	}
	defer unlock()
	c, err := conn()
	if err != nil {
		return err
	}
	if err := ensureBase(c); err != nil {
		return err
	}
	if err := remove(c, ct.H); err != nil {
		return err
	}
	// Before anything is queued: a clash leaves nothing to undo.
	if err := sweepStale(c, ct.H); err != nil {
		return err
	}
	if err := checkPublished(c, ct); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = remove(c, ct.H)
		}
	}()
	for _, gw := range ct.Gateways {
		s, key := setGw4, gw.To4()
		if key == nil {
			s, key = setGw6, gw.To16()
		}
		if err := c.SetAddElements(s, []nftables.SetElement{{Key: key}}); err != nil {
			return wrap("gateway set", err)
		}
	}
	tag := []byte(ct.H)
	chain := c.AddChain(&nftables.Chain{Name: Chain(ct.H), Table: table})
	sets := map[string]*nftables.Set{}
	for _, v6 := range []bool{false, true} {
		addr, tuple := nftables.TypeIPAddr, nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
		if v6 {
			addr, tuple = nftables.TypeIP6Addr, nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
		}
		for _, s := range []*nftables.Set{
			{Table: table, Name: setName("n", v6, ct.H), KeyType: addr, HasTimeout: true, Size: SetLimit},
			{Table: table, Name: setName("p", v6, ct.H), KeyType: tuple, Concatenation: true, HasTimeout: true, Size: SetLimit},
			{Table: table, Name: setName("d", v6, ct.H), KeyType: tuple, Concatenation: true, Dynamic: true, Size: 4096},
		} {
			if err := c.AddSet(s, nil); err != nil {
				return wrap("add set "+s.Name, err)
			}
			sets[s.Name] = s
		}
	}
	rule := func(ch *nftables.Chain, e ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: concat(e...), UserData: tag})
	}
	// The metadata services first: no allow rule may let them through.
	for _, m := range MetadataNets {
		rule(chain, matchNet(m, true), []expr.Any{&expr.Counter{}, drop()})
	}
	for _, a := range ct.Allow {
		protos := []string{a.Proto}
		if a.Port != 0 && a.Proto == "" {
			protos = []string{"tcp", "udp"}
		}
		for _, p := range protos {
			rule(chain, matchNet(a.Net, true), matchPort(p, a.Port), []expr.Any{accept()})
		}
	}
	// A DNS answer opens no path to another container (on any subnet,
	// bridge or state root: its veth is one of ours), whoever answers
	// for an allowed name: only a CIDR rule does.
	notContainer := []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte(VethPrefix)}}
	for _, v6 := range []bool{false, true} {
		n, p, d := sets[setName("n", v6, ct.H)], sets[setName("p", v6, ct.H)], sets[setName("d", v6, ct.H)]
		rule(chain, nfproto(v6), notContainer, []expr.Any{loadAddr(v6, true, 1), &expr.Lookup{SourceRegister: 1, SetName: n.Name, SetID: n.ID}, accept()})
		rule(chain, nfproto(v6), notContainer, loadTuple(v6), []expr.Any{&expr.Lookup{SourceRegister: regAddr, SetName: p.Name, SetID: p.ID}, accept()})
		// Record the denied destination; the drop is a rule of its own
		// so that a full set still drops.
		rule(chain, nfproto(v6), loadTuple(v6), []expr.Any{&expr.Dynset{SrcRegKey: regAddr, SetName: d.Name, SetID: d.ID, Operation: uint32(unix.NFT_DYNSET_OP_ADD)}})
	}
	rule(chain, []expr.Any{&expr.Counter{}, drop()})
	rule(chEgress, ifName(expr.MetaKeyIIFNAME, ct.Veth), []expr.Any{jump(chain.Name)})
	// The checks of what enters the veth through a published port live
	// in a chain of the container's own (google/nftables cannot read a
	// rule matching a conntrack direction back, so no shared chain that
	// is listed holds one).
	// Every container has one, empty if it publishes nothing: a
	// container that got the address of one killed before its delete
	// then drops what that one's leftover DNAT rules send it.
	pubChain := c.AddChain(&nftables.Chain{Name: PublishChain(ct.H), Table: table})
	rule(chPubOK, ifName(expr.MetaKeyOIFNAME, ct.Veth), []expr.Any{jump(pubChain.Name)})
	rule(chPubOK, ifName(expr.MetaKeyOIFNAME, ct.Veth), []expr.Any{&expr.Counter{}, drop()})
	if len(ct.Publish) > 0 && ct.IPv4 != nil {
		for _, gw := range ct.Gateways {
			if gw4 := gw.To4(); gw4 != nil {
				rule(chLoSNAT, ifName(expr.MetaKeyOIFNAME, ct.Veth),
					matchNet(&net.IPNet{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}, false), []expr.Any{
						&expr.Immediate{Register: 1, Data: gw4},
						&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
					})
				break
			}
		}
	}
	for _, pub := range ct.Publish {
		proto := pub.Proto
		if proto == "" {
			proto = "tcp"
		}
		var hostIP []expr.Any
		if pub.HostIP != nil {
			hostIP = matchNet(&net.IPNet{IP: pub.HostIP, Mask: net.CIDRMask(len(ipBytes(pub.HostIP))*8, len(ipBytes(pub.HostIP))*8)}, true)
		}
		targets := []net.IP{ct.IPv4}
		if ct.IPv6 != nil {
			targets = append(targets, ct.IPv6)
		}
		for _, to := range targets {
			v6 := to.To4() == nil
			if pub.HostIP != nil && (pub.HostIP.To4() == nil) != v6 {
				continue
			}
			fam := uint32(unix.NFPROTO_IPV4)
			if v6 {
				fam = unix.NFPROTO_IPV6
			}
			c.AddRule(&nftables.Rule{Table: table, Chain: chPublish, UserData: publishTag(ct.H, proto, pub.HostIP, pub.HostPort),
				Exprs: concat(nfproto(v6), hostIP, matchPort(proto, pub.HostPort), []expr.Any{
					&expr.Immediate{Register: 1, Data: ipBytes(to)},
					&expr.Immediate{Register: 2, Data: be16(pub.ContainerPort)},
					&expr.NAT{Type: expr.NATTypeDestNAT, Family: fam, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
				})})
			// What that DNAT sends to this container's veth, on
			// the container port, for this host port.
			rule(pubChain, nfproto(v6), matchPort(proto, pub.ContainerPort), []expr.Any{
				&expr.Ct{Register: 1, Key: expr.CtKeyPROTODST, Direction: 0},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(pub.HostPort)}, accept()})
		}
	}
	return wrap("add rules of "+ct.H, c.Flush())
}

// ErrPublished: a host port is published by another container already.
var ErrPublished = errors.New("published by another container")

// A publish rule's user data names its container, then what it
// publishes, so that a later Add can tell a clash: "h|proto|port|hostip".
func publishTag(h, proto string, hostIP net.IP, port uint16) []byte {
	ip := ""
	if hostIP != nil {
		ip = hostIP.String()
	}
	return []byte(fmt.Sprintf("%s|%s|%d|%s", h, proto, port, ip))
}

// owner is the container a rule's user data names.
func owner(ud []byte) string {
	h, _, _ := strings.Cut(string(ud), "|")
	return h
}

// sweepStale removes the published ports of containers whose veth is gone
// (killed without delete): their rules would hand the port to whoever
// gets the address next, and keep it from being published again. The
// rest of such a container (its chain, the sets delete reads its denials
// from) stays for its delete. keep is the container being added.
func sweepStale(c *nftables.Conn, keep string) error {
	n := 0
	for _, ch := range []*nftables.Chain{chPublish, chPubOK} {
		rules, err := c.GetRules(table, ch)
		if err != nil {
			return wrap("list "+ch.Name, err)
		}
		for _, r := range rules {
			h := owner(r.UserData)
			if h == "" || h == keep {
				continue
			}
			if _, err := net.InterfaceByName(VethPrefix + h); err == nil {
				continue
			}
			if err := c.DelRule(r); err != nil {
				return wrap("delete a stale publish rule", err)
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return wrap("delete stale publish rules", c.Flush())
}

// SweepStale removes the published ports of every container whose veth
// is gone (see sweepStale); `nucleus gc` runs it, and so does each Add.
func SweepStale() error {
	unlock, err := lock()
	if err != nil {
		return wrap("lock", err)
	}
	defer unlock()
	c, err := conn()
	if err != nil {
		return err
	}
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		return nil
	}
	if _, err := c.ListChain(table, chPubOK.Name); err != nil {
		return nil // a table of an older nucleus: its Add sweeps
	}
	return sweepStale(c, "")
}

// checkPublished fails with ErrPublished if another container publishes
// one of ct's host ports (same protocol, and the same host address or
// either on all of them).
func checkPublished(c *nftables.Conn, ct Container) error {
	rules, err := c.GetRules(table, chPublish)
	if err != nil {
		return wrap("list "+chPublish.Name, err)
	}
	for _, r := range rules {
		parts := strings.Split(string(r.UserData), "|")
		if len(parts) != 4 || parts[0] == ct.H {
			continue
		}
		for _, pub := range ct.Publish {
			proto := pub.Proto
			if proto == "" {
				proto = "tcp"
			}
			ip := ""
			if pub.HostIP != nil {
				ip = pub.HostIP.String()
			}
			if parts[1] == proto && parts[2] == strconv.Itoa(int(pub.HostPort)) && (ip == "" || parts[3] == "" || ip == parts[3]) {
				return fmt.Errorf("port %d/%s: %w", pub.HostPort, proto, ErrPublished)
			}
		}
	}
	return nil
}

func ipBytes(ip net.IP) []byte {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip.To16()
}

// Remove deletes everything of container h; what is already gone is no
// error.
func Remove(h string) error {
	unlock, err := lock()
	if err != nil {
		return wrap("lock", err)
	}
	defer unlock()
	c, err := conn()
	if err != nil {
		return err
	}
	return remove(c, h)
}

func remove(c *nftables.Conn, h string) error {
	if _, err := c.ListTableOfFamily(TableName, nftables.TableFamilyINet); err != nil {
		return nil
	}
	for _, ch := range []*nftables.Chain{chEgress, chPublish, chPubOK, chLoSNAT} {
		rules, err := c.GetRules(table, ch)
		if err != nil {
			if ch == chPubOK || ch == chLoSNAT {
				continue // a table of an older nucleus has none
			}
			return wrap("list "+ch.Name, err)
		}
		for _, r := range rules {
			if owner(r.UserData) == h {
				if err := c.DelRule(r); err != nil {
					return wrap("delete rule", err)
				}
			}
		}
	}
	for _, name := range []string{Chain(h), PublishChain(h)} {
		if _, err := c.ListChain(table, name); err == nil {
			c.DelChain(&nftables.Chain{Name: name, Table: table})
		}
	}
	sets, err := c.GetSets(table)
	if err != nil {
		return wrap("list sets", err)
	}
	for _, s := range sets {
		for _, kind := range []string{"n", "p", "d"} {
			if s.Name == setName(kind, false, h) || s.Name == setName(kind, true, h) {
				c.DelSet(s)
			}
		}
	}
	return wrap("remove rules of "+h, c.Flush())
}

// AddResolved lets container h reach ip for ttl (at least a second): on
// any port when port is 0, else on that proto ("tcp" or "udp"; "" is
// both) and port. The resolver calls it for each address it answers.
func AddResolved(h string, ip net.IP, proto string, port uint16, ttl time.Duration) error {
	if ip == nil {
		return fmt.Errorf("%w: AddResolved: no address", ErrFirewall)
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	c, err := conn()
	if err != nil {
		return err
	}
	v6 := ip.To4() == nil
	if port == 0 {
		s := &nftables.Set{Table: table, Name: setName("n", v6, h), KeyType: nftables.TypeIPAddr, HasTimeout: true}
		if v6 {
			s.KeyType = nftables.TypeIP6Addr
		}
		if err := c.SetAddElements(s, []nftables.SetElement{{Key: ipBytes(ip), Timeout: ttl}}); err != nil {
			return wrap("add to "+s.Name, err)
		}
		return full(s.Name, c.Flush())
	}
	s := &nftables.Set{Table: table, Name: setName("p", v6, h), Concatenation: true, HasTimeout: true}
	protos := []string{proto}
	if proto == "" {
		protos = []string{"tcp", "udp"}
	}
	var elems []nftables.SetElement
	for _, p := range protos {
		if p != "tcp" && p != "udp" {
			return fmt.Errorf("%w: AddResolved: protocol %q: want tcp or udp", ErrFirewall, p)
		}
		elems = append(elems, nftables.SetElement{Key: tupleKey(ip, protoNum(p), port), Timeout: ttl})
	}
	if err := c.SetAddElements(s, elems); err != nil {
		return wrap("add to "+s.Name, err)
	}
	return full(s.Name, c.Flush())
}

// full is wrap for an addition to set, with the kernel's "set full"
// (ENFILE) as ErrSetFull.
func full(set string, err error) error {
	if errors.Is(err, unix.ENFILE) {
		return fmt.Errorf("%w: %s holds %d addresses: %w", ErrFirewall, set, SetLimit, ErrSetFull)
	}
	return wrap("add to "+set, err)
}

// Denied is a destination container h tried and was refused.
type Denied struct {
	IP    net.IP
	Proto string
	Port  uint16
}

// ReadDenied lists the destinations container h was denied (each once).
func ReadDenied(h string) ([]Denied, error) {
	c, err := conn()
	if err != nil {
		return nil, err
	}
	var out []Denied
	for _, v6 := range []bool{false, true} {
		s, err := c.GetSetByName(table, setName("d", v6, h))
		if err != nil {
			continue
		}
		elems, err := c.GetSetElements(s)
		if err != nil {
			return nil, wrap("read "+s.Name, err)
		}
		n := 4
		if v6 {
			n = 16
		}
		for _, e := range elems {
			if len(e.Key) < n+8 {
				continue
			}
			d := Denied{IP: net.IP(append([]byte(nil), e.Key[:n]...)), Port: uint16(e.Key[n+4])<<8 | uint16(e.Key[n+5])}
			switch e.Key[n] {
			case unix.IPPROTO_TCP:
				d.Proto = "tcp"
			case unix.IPPROTO_UDP:
				d.Proto = "udp"
			case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
				d.Proto, d.Port = "icmp", 0
			default:
				d.Proto, d.Port = fmt.Sprint(e.Key[n]), 0
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// Gateways lists the gateway addresses of every nucleus bridge on the
// host (those its resolvers listen on), whatever the state root.
func Gateways() ([]net.IP, error) {
	c, err := conn()
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, s := range []*nftables.Set{setGw4, setGw6} {
		set, err := c.GetSetByName(table, s.Name)
		if err != nil {
			continue // no table yet: no gateway
		}
		elems, err := c.GetSetElements(set)
		if err != nil {
			return nil, wrap("read "+s.Name, err)
		}
		for _, e := range elems {
			out = append(out, net.IP(append([]byte(nil), e.Key...)))
		}
	}
	return out, nil
}
