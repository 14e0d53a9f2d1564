// Package dns is the resolver of bridge networking: one process per state
// root answers the containers' queries on the bridge gateway, forwards only
// the names a container is allowed to its upstream servers, and puts each
// answer's addresses into that container's firewall set for the record's
// TTL. A denied name gets REFUSED and is never forwarded, so a container
// cannot leak data through names it may not resolve.
package dns

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/nucleus-run/nucleus/network/ipam"
)

// ErrConfig marks a container config that cannot be used.
var ErrConfig = errors.New("invalid resolver config")

// ContainerConfig is what the resolver knows of one container. The runtime
// writes it (WriteConfig) before the container starts and removes it
// (RemoveConfig) on delete; the file is <root>/@net/dns/<address>.json, one
// per address of the container, so a query is matched to its container by
// its source address alone. The JSON is network.DNSConfig's: network's
// Attach may write it itself.
type ContainerConfig struct {
	// ID is the container's id (delete removes only its own files).
	ID string `json:"id,omitempty"`
	// Handle names the container's firewall sets (the h of
	// firewall.AddResolved).
	Handle string `json:"h"`
	// Names are the names the container may resolve; every other name is
	// REFUSED.
	Names []Name `json:"names"`
	// Upstreams are the servers allowed names are forwarded to, as HOST or
	// HOST:PORT (port 53 when absent), tried in order; none: the
	// nameservers of ResolvConf, read when a query comes.
	Upstreams []string `json:"servers,omitempty"`
	// Listen are the addresses the resolver answers this container on,
	// as HOST or HOST:PORT; none: DefaultListen() (the bridge gateways).
	Listen []string `json:"listen,omitempty"`
	// Addresses are the container's addresses on the bridge (IPv4 and
	// IPv6); WriteConfig writes a file for each. A file read back has
	// at least its own.
	Addresses []string `json:"addresses,omitempty"`
	// AuditLog is the container's audit log, where the resolver records
	// what the container should know of (a full set).
	AuditLog string `json:"audit_log,omitempty"`
}

// ResolvConf holds the default upstreams.
var ResolvConf = "/etc/resolv.conf"

// DefaultListen are the gateway addresses of the bridge (network/ipam's,
// as --subnet set them), port 53.
func DefaultListen() []string {
	return []string{
		net.JoinHostPort(ipam.Gateway4.String(), "53"),
		net.JoinHostPort(ipam.Gateway6.String(), "53"),
	}
}

// Name is one allowed name: "api.example.com" matches that name only,
// "*.example.com" matches every name below example.com but not
// example.com itself. With a Port, the answer's addresses are allowed on
// that port only (Proto "tcp" or "udp"; empty leaves the choice to the
// firewall's set).
type Name struct {
	Name  string `json:"name"`
	Port  uint16 `json:"port,omitempty"`
	Proto string `json:"proto,omitempty"`
}

// Dir is where the container configs live under a state root.
func Dir(root string) string { return filepath.Join(root, "@net", "dns") }

// configPath is the file of one address; the address is canonical (as
// net.IP.String writes it), so it cannot name anything outside Dir.
func configPath(root string, ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return filepath.Join(Dir(root), ip.String()+".json")
}

// Validate checks a config and returns it in canonical form: lower-case
// fully qualified names, upstreams and listen addresses as HOST:PORT.
func (c ContainerConfig) Validate() (ContainerConfig, error) {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, a...))
	}
	out := ContainerConfig{ID: c.ID, Handle: c.Handle, AuditLog: c.AuditLog}
	for _, a := range c.Addresses {
		ip := net.ParseIP(a)
		if ip == nil {
			return out, bad("addresses", "%q is not an IP address", a)
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		out.Addresses = append(out.Addresses, ip.String())
	}
	if c.Handle == "" {
		return out, bad("handle", "empty")
	}
	for _, n := range c.Names {
		name, err := canonicalPattern(n.Name)
		if err != nil {
			return out, bad("names", "%v", err)
		}
		switch n.Proto {
		case "", "tcp", "udp":
		default:
			return out, bad("names", "%s: protocol %q: want tcp or udp", n.Name, n.Proto)
		}
		if n.Proto != "" && n.Port == 0 {
			return out, bad("names", "%s: protocol %s without a port", n.Name, n.Proto)
		}
		out.Names = append(out.Names, Name{Name: name, Port: n.Port, Proto: n.Proto})
	}
	for _, u := range c.Upstreams {
		hp, err := hostPort(u)
		if err != nil {
			return out, bad("upstreams", "%v", err)
		}
		out.Upstreams = append(out.Upstreams, hp)
	}
	for _, l := range c.Listen {
		hp, err := hostPort(l)
		if err != nil {
			return out, bad("listen", "%v", err)
		}
		out.Listen = append(out.Listen, hp)
	}
	return out, nil
}

// canonicalPattern checks an allowed name and returns it lower-case and
// fully qualified ("*.example.com.").
func canonicalPattern(s string) (string, error) {
	base, wild := strings.CutPrefix(s, "*.")
	if base == "" || strings.Contains(base, "*") {
		return "", fmt.Errorf("%q: want a name or *.name", s)
	}
	if _, ok := mdns.IsDomainName(base); !ok || !hostnameChars(base) || strings.HasPrefix(base, ".") {
		return "", fmt.Errorf("%q is not a domain name", s)
	}
	base = mdns.CanonicalName(base)
	if base == "." {
		return "", fmt.Errorf("%q: the root cannot be allowed", s)
	}
	if wild {
		return "*." + base, nil
	}
	return base, nil
}

// hostnameChars says whether s has only the characters of host names
// (letters, digits, '-', '_' for service labels, and dots): no escapes, so
// the name means what it reads.
func hostnameChars(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// hostPort parses HOST or HOST:PORT (IPv6 in brackets when a port is
// given) into HOST:PORT with the port defaulting to 53.
func hostPort(s string) (string, error) {
	if ip := net.ParseIP(s); ip != nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q: want IP or IP:PORT", s)
	}
	ip := net.ParseIP(h)
	port, perr := strconv.ParseUint(p, 10, 16)
	if ip == nil || perr != nil || port == 0 {
		return "", fmt.Errorf("%q: want IP or IP:PORT", s)
	}
	return net.JoinHostPort(ip.String(), p), nil
}

// WriteConfig validates cfg and writes it for each of its addresses,
// replacing what was there; a file appears whole or not at all.
func WriteConfig(root string, cfg ContainerConfig) error {
	c, err := cfg.Validate()
	if err != nil {
		return err
	}
	if len(c.Addresses) == 0 {
		return fmt.Errorf("%w: addresses: none given", ErrConfig)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	dir := Dir(root)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("resolver config: %w", err)
	}
	var written []string
	for _, a := range c.Addresses {
		path := configPath(root, net.ParseIP(a))
		if err := writeAtomic(dir, path, data); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return fmt.Errorf("resolver config %s: %w", path, err)
		}
		written = append(written, path)
	}
	return nil
}

// writeAtomic writes through a temporary file the resolver does not read
// (it reads *.json only) and renames it into place.
func writeAtomic(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// RemoveConfig removes the configs of the given addresses; an address with
// no config is not an error, so delete can call it after any failure. The
// resolver exits once no config remains.
func RemoveConfig(root string, addrs ...string) error {
	var errs []error
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil {
			errs = append(errs, fmt.Errorf("%w: address %q is not an IP address", ErrConfig, a))
			continue
		}
		if err := os.Remove(configPath(root, ip)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("resolver config: %w", err))
		}
	}
	return errors.Join(errs...)
}

// readConfig reads the config of the address a query came from, with the
// defaults filled in; a missing file means the source is no container of
// this root.
func readConfig(root string, ip net.IP) (ContainerConfig, error) {
	var c ContainerConfig
	p := configPath(root, ip)
	data, err := os.ReadFile(p)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%w: %s: %v", ErrConfig, p, err)
	}
	if len(c.Addresses) == 0 {
		c.Addresses = []string{ip.String()}
	}
	if len(c.Listen) == 0 {
		c.Listen = DefaultListen()
	}
	c, err = c.Validate()
	if err != nil {
		return c, fmt.Errorf("%s: %w", p, err)
	}
	if len(c.Upstreams) == 0 {
		if c.Upstreams, err = DefaultUpstreams(ResolvConf); err != nil {
			return c, fmt.Errorf("%w: %s: no servers: %v", ErrConfig, p, err)
		}
	}
	return c, nil
}

// configs reads the configs present; files is how many there are,
// unreadable ones included (the resolver runs while there is one).
func configs(root string) (cs []ContainerConfig, files int, err error) {
	paths, err := filepath.Glob(filepath.Join(Dir(root), "*.json"))
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, p := range paths {
		ip := net.ParseIP(strings.TrimSuffix(filepath.Base(p), ".json"))
		if ip == nil {
			continue
		}
		c, err := readConfig(root, ip)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the glob
		}
		files++
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cs = append(cs, c)
	}
	return cs, files, errors.Join(errs...)
}

// Match returns the allowed names a query name matches; none means the
// name is denied. Names are compared label by label, so an escaped dot
// ("evil\.example.com" is the label "evil.example" under com) cannot pass
// for a subdomain of example.com.
func (c ContainerConfig) Match(qname string) []Name {
	q := mdns.CanonicalName(qname)
	var out []Name
	for _, n := range c.Names {
		if base, wild := strings.CutPrefix(n.Name, "*."); wild {
			if mdns.CountLabel(q) > mdns.CountLabel(base) && mdns.IsSubDomain(base, q) {
				out = append(out, n)
			}
			continue
		}
		if mdns.CountLabel(q) == mdns.CountLabel(n.Name) && mdns.IsSubDomain(n.Name, q) {
			out = append(out, n)
		}
	}
	return out
}

// DefaultUpstreams returns the nameservers of a resolv.conf (normally
// /etc/resolv.conf) as HOST:PORT. Loopback servers are kept: the resolver
// runs in the host's network namespace, where they answer.
func DefaultUpstreams(resolvConf string) ([]string, error) {
	cc, err := mdns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", resolvConf, err)
	}
	var out []string
	for _, s := range cc.Servers {
		hp, err := hostPort(net.JoinHostPort(s, cc.Port))
		if err != nil {
			continue // a scoped IPv6 address (fe80::1%eth0) cannot be used here
		}
		out = append(out, hp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no nameserver", resolvConf)
	}
	return out, nil
}
