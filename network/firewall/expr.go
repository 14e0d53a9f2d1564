package firewall

import (
	"encoding/binary"
	"net"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The registers of a concatenated key: the address in reg 1 (NFT_REG_1,
// 16 bytes), then the 32-bit registers after it.
const (
	regAddr = 1
	// 32-bit register numbers: NFT_REG32_00 is 8 and overlaps NFT_REG_1.
	reg32Base = 8
)

// ifPrefix matches an interface name starting with prefix (nft's
// `iifname "nv*"`): a Cmp on the bytes of the prefix, without its NUL.
func ifPrefix(key expr.MetaKey, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(prefix)},
	}
}

// ifName matches an interface name exactly.
func ifName(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

func nfproto(v6 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if v6 {
		p = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// addrOffset is where the source or destination address is in the
// network header, and its length.
func addrOffset(v6, dst bool) (uint32, uint32) {
	switch {
	case v6 && dst:
		return 24, 16
	case v6:
		return 8, 16
	case dst:
		return 16, 4
	}
	return 12, 4
}

func loadAddr(v6, dst bool, reg uint32) expr.Any {
	off, n := addrOffset(v6, dst)
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}

// matchNet matches the destination (or source) address against a prefix.
func matchNet(n *net.IPNet, dst bool) []expr.Any {
	v6 := n.IP.To4() == nil
	ip, mask := n.IP.To16(), []byte(n.Mask)
	if !v6 {
		ip = n.IP.To4()
		if len(mask) == 16 {
			mask = mask[12:]
		}
	}
	out := append(nfproto(v6), loadAddr(v6, dst, 1))
	ones, bits := n.Mask.Size()
	if ones != bits {
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))})
	}
	masked := make([]byte, len(ip))
	for i := range ip {
		masked[i] = ip[i] & mask[i]
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: masked})
}

func protoNum(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// matchPort matches the transport protocol ("" = any) and destination
// port (0 = any); a port comes with a protocol (callers add one rule per
// protocol for "tcp or udp").
func matchPort(proto string, port uint16) []expr.Any {
	var out []expr.Any
	if proto != "" {
		out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNum(proto)}})
	}
	if port != 0 {
		out = append(out,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(port)})
	}
	return out
}

// loadTuple loads `daddr . meta l4proto . th dport` into consecutive
// registers, as nft does for a concatenated set key.
func loadTuple(v6 bool) []expr.Any {
	_, n := addrOffset(v6, true)
	next := uint32(reg32Base) + n/4
	return []expr.Any{
		loadAddr(v6, true, regAddr),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: next},
		&expr.Payload{DestRegister: next + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

// tupleKey is a set element of type addr . inet_proto . inet_service:
// each field padded to 4 bytes.
func tupleKey(ip net.IP, proto byte, port uint16) []byte {
	var k []byte
	if v4 := ip.To4(); v4 != nil {
		k = append(k, v4...)
	} else {
		k = append(k, ip.To16()...)
	}
	k = append(k, proto, 0, 0, 0)
	return append(k, be16(port)[0], be16(port)[1], 0, 0)
}

func be16(v uint16) []byte {
	b := make([]byte, 2)
	binary.BigEndian.PutUint16(b, v)
	return b
}

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }
func drop() expr.Any   { return &expr.Verdict{Kind: expr.VerdictDrop} }
func jump(chain string) expr.Any {
	return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain}
}

func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ipsDstNAT is the conntrack status bit of a DNAT'd connection
// (IPS_DST_NAT, `ct status dnat`).
const ipsDstNAT = 1 << 5
