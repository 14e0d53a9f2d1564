package dns

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/vishvananda/netlink"
)

// RootsDir is the host's registry of state roots whose resolver runs: one
// symlink per root, to the root. Every state root's containers share the
// bridge gateways, so each resolver must answer the others' containers
// too (a query reaches whichever socket the kernel picks). It is removed
// with the last resolver, and lives outside the default state root so
// that other roots' resolvers leave nothing there.
var RootsDir = "/run/nucleus-dns-roots"

func rootLink(dir, root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(dir, hex.EncodeToString(sum[:8]))
}

// register adds root to the registry dir. The last resolver to leave
// removes the dir, maybe between our MkdirAll and Symlink: then retry.
func register(dir, root string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	link := rootLink(dir, abs)
	for try := 0; ; try++ {
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if t, rerr := os.Readlink(link); rerr == nil && t == abs {
			return nil
		}
		tmp := link + ".tmp"
		os.Remove(tmp)
		if err = os.Symlink(abs, tmp); err == nil {
			if err = os.Rename(tmp, link); err == nil {
				return nil
			}
		}
		if !errors.Is(err, os.ErrNotExist) || try == 2 {
			return err
		}
	}
}

// unregister removes root from the registry, and the registry once empty.
func unregister(dir, root string) {
	if abs, err := filepath.Abs(root); err == nil {
		os.Remove(rootLink(dir, abs))
	}
	os.Remove(dir) // fails while another root is registered
}

// lookup finds the config of a source address: in this resolver's root,
// else in another registered root's. A registered root that is gone is
// dropped from the registry.
func (r *Resolver) lookup(ip net.IP) (ContainerConfig, error) {
	cfg, err := r.readOwned(r.Root, ip)
	if !errors.Is(err, os.ErrNotExist) || r.Roots == "" {
		return cfg, err
	}
	ents, _ := os.ReadDir(r.Roots)
	for _, e := range ents {
		link := filepath.Join(r.Roots, e.Name())
		other, lerr := os.Readlink(link)
		if lerr != nil {
			continue
		}
		if _, serr := os.Stat(Dir(other)); errors.Is(serr, os.ErrNotExist) {
			if _, rerr := os.Stat(other); errors.Is(rerr, os.ErrNotExist) {
				os.Remove(link)
			}
			continue
		}
		c, cerr := r.readOwned(other, ip)
		if cerr == nil || !errors.Is(cerr, os.ErrNotExist) {
			return c, cerr
		}
	}
	return cfg, err
}

// ErrNotOwner: the config for a query's source names a container whose
// veth is not the way to that address (it died without a delete, and
// another container, maybe of another root, has its address now).
var ErrNotOwner = errors.New("the address is not that container's")

// readOwned is readConfig, if the address is the container's: its
// answers open that container's sets, and its allowlist must not serve
// whoever has the address next. A stale config is as good as none.
func (r *Resolver) readOwned(root string, ip net.IP) (ContainerConfig, error) {
	cfg, err := readConfig(root, ip)
	if err != nil {
		return cfg, err
	}
	if !ownsAddr(ip, cfg.Handle) {
		r.logf("%s: the config of container %s (%s) is stale: ignored", ip, cfg.ID, cfg.Handle)
		return ContainerConfig{}, fmt.Errorf("%s: %w: %w", ip, ErrNotOwner, os.ErrNotExist)
	}
	return cfg, nil
}

// ownsAddr says whether the host routes ip through container h's veth
// (the antispoof chain makes that the only way a query from ip comes
// in).
var ownsAddr = routedVia

func routedVia(ip net.IP, h string) bool {
	routes, err := netlink.RouteGet(ip)
	if err != nil || len(routes) == 0 {
		return false
	}
	l, err := netlink.LinkByIndex(routes[0].LinkIndex)
	return err == nil && l.Attrs().Name == firewall.VethPrefix+h
}
