// Package ipam hands out container addresses from nucleus's subnets: one
// file per address under <root>/@net/leases, written under a lock, naming
// the container that holds it.
package ipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The subnets: 10.90.0.0/16 (podman takes 10.88.0.0/16) and a ULA /64.
// The gateway is the first address of each.
var (
	Subnet4  = mustCIDR("10.90.0.0/16")
	Subnet6  = mustCIDR("fd6e:7563:6c65:7573::/64")
	Gateway4 = net.ParseIP("10.90.0.1").To4()
	Gateway6 = net.ParseIP("fd6e:7563:6c65:7573::1")
)

// ErrExhausted: no free address is left.
var ErrExhausted = errors.New("no free address left in the subnet")

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Dir is where root's leases are.
func Dir(root string) string { return filepath.Join(root, "@net", "leases") }

// Lease is a container's pair of addresses (the IPv6 one ends in the
// same host number as the IPv4 one).
type Lease struct {
	IPv4 net.IP `json:"ipv4"`
	IPv6 net.IP `json:"ipv6"`
}

func lock(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("leases: lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// Allocate leases the lowest free address to id, passing over the ones
// skip names (addresses found taken elsewhere on the host).
func Allocate(root, id string, skip map[string]bool) (Lease, error) {
	dir := Dir(root)
	unlock, err := lock(dir)
	if err != nil {
		return Lease{}, err
	}
	defer unlock()
	base := binary.BigEndian.Uint32(Subnet4.IP.To4())
	ones, _ := Subnet4.Mask.Size()
	size := uint32(1) << (32 - ones)
	// .0 is the network, .1 the gateway, the last the broadcast.
	for n := uint32(2); n < size-1; n++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+n)
		if skip[ip.String()] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, ip.String()), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return Lease{}, fmt.Errorf("lease %s: %w", ip, err)
		}
		_, werr := f.WriteString(id)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(f.Name())
			return Lease{}, fmt.Errorf("lease %s: %w", ip, werr)
		}
		ip6 := make(net.IP, 16)
		copy(ip6, Subnet6.IP.To16())
		binary.BigEndian.PutUint32(ip6[12:], n)
		return Lease{IPv4: ip, IPv6: ip6}, nil
	}
	return Lease{}, fmt.Errorf("%s: %w", Subnet4, ErrExhausted)
}

// Release frees ip if id holds it; a lease already gone is no error.
func Release(root, id string, ip net.IP) error {
	if ip == nil {
		return nil
	}
	dir := Dir(root)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	p := filepath.Join(dir, ip.String())
	holder, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", ip, err)
	}
	if strings.TrimSpace(string(holder)) != id {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release %s: %w", ip, err)
	}
	return nil
}

// Held lists the leases under root: address -> container id.
func Held(root string) (map[string]string, error) {
	entries, err := os.ReadDir(Dir(root))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(Dir(root), e.Name()))
		if err == nil {
			out[e.Name()] = string(b)
		}
	}
	return out, nil
}

// SubnetEnv names the IPv4 subnet containers get addresses from when it is
// not the default (nucleus --subnet sets it for the processes it starts,
// the resolver among them).
const SubnetEnv = "NUCLEUS_SUBNET"

// SetSubnet4 makes cidr, an IPv4 network of /8 to /28, the subnet
// addresses are leased from, its first address the gateway. The bridge is
// the host's, so every nucleus on a host must use the same one.
func SetSubnet4(cidr string) error {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil || ip.To4() == nil {
		return fmt.Errorf("%q: want an IPv4 network such as 10.90.0.0/16", cidr)
	}
	ones, _ := n.Mask.Size()
	if ones < 8 || ones > 28 {
		return fmt.Errorf("%q: want a prefix from /8 to /28", cidr)
	}
	if !ip.Equal(n.IP) {
		return fmt.Errorf("%q: host bits set; the network is %s", cidr, n)
	}
	gw := make(net.IP, 4)
	binary.BigEndian.PutUint32(gw, binary.BigEndian.Uint32(n.IP.To4())+1)
	Subnet4, Gateway4 = n, gw
	return nil
}
