package dns

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
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
	cfg, err := readConfig(r.Root, ip)
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
		c, cerr := readConfig(other, ip)
		if cerr == nil || !errors.Is(cerr, os.ErrNotExist) {
			return c, cerr
		}
	}
	return cfg, err
}
