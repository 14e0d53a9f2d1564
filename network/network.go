package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/nucleus-run/nucleus/network/firewall"
	"github.com/nucleus-run/nucleus/network/ipam"
	"github.com/nucleus-run/nucleus/network/link"
	"github.com/nucleus-run/nucleus/opterr"
	"github.com/nucleus-run/nucleus/policy"
)

// vethPrefix starts every host-side veth (and no bridge name).
const vethPrefix = firewall.VethPrefix

// Annotation carries a bridged container's addresses in `state` and
// `list --format json` (comma-separated).
const Annotation = "run.nucleus.net.addresses"

// StartResolver, if set, makes sure the DNS resolver of the state root
// runs; Attach calls it when a container's allowlist has names, after
// that container's DNS config is written. Nil: no resolver (names are
// then never resolved, so never allowed).
var StartResolver func(root string) error

// Dir is root's network state: the records, leases and DNS configs.
func Dir(root string) string { return filepath.Join(root, "@net") }

// RecordPath is the record of container id.
func RecordPath(root, id string) string { return filepath.Join(Dir(root), id+".json") }

// ResolvConfPath is the file bind-mounted at a bridged container's
// /etc/resolv.conf: the gateways, where the resolver answers.
func ResolvConfPath(root, id string) string { return filepath.Join(Dir(root), id+".resolv.conf") }

// WriteResolvConf writes container id's resolv.conf (before the
// container is created: its mount needs the file).
func WriteResolvConf(root, id string) (string, error) {
	if err := os.MkdirAll(Dir(root), 0o700); err != nil {
		return "", fmt.Errorf("resolv.conf: %w", err)
	}
	p := ResolvConfPath(root, id)
	data := "# nucleus: the resolver on the bridge gateway answers for the allowed names only\n" +
		"nameserver " + ipam.Gateway4.String() + "\nnameserver " + ipam.Gateway6.String() + "\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		return "", fmt.Errorf("resolv.conf: %w", err)
	}
	return p, nil
}

// Has says whether container id has network state under root to tear
// down.
func Has(root, id string) bool {
	for _, p := range []string{RecordPath(root, id), ResolvConfPath(root, id), NetNSPath(root, id)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// DNSDir holds one DNSConfig per container address, named <address>.json:
// the resolver tells containers apart by the source of a query.
func DNSDir(root string) string { return filepath.Join(Dir(root), "dns") }

// DNSConfigPath is the DNS config of the container with address ip.
func DNSConfigPath(root string, ip net.IP) string {
	return filepath.Join(DNSDir(root), ip.String()+".json")
}

// DNSConfig is what the resolver knows of a container: the names it may
// resolve (each added to its sets with the port, if any) and the servers
// to ask.
type DNSConfig struct {
	ID string `json:"id"`
	// H is the name of its sets, for firewall.AddResolved.
	H       string   `json:"h"`
	Names   []Rule   `json:"names"`
	Servers []string `json:"servers,omitempty"`
	// AuditLog is where the resolver writes the container's events
	// (dns_set_full).
	AuditLog string `json:"audit_log,omitempty"`
}

// Hash is the short name of a container's veth, chain and sets: unique
// per state root and id, and short enough for an interface name.
func Hash(root, id string) string {
	sum := sha256.Sum256([]byte(root + "\x00" + id))
	return hex.EncodeToString(sum[:])[:10]
}

// Record is what delete needs to remove a container's network without
// the container.
type Record struct {
	ID       string `json:"id"`
	H        string `json:"h"`
	Bridge   string `json:"bridge"`
	Veth     string `json:"veth"`
	IPv4     net.IP `json:"ipv4,omitempty"`
	IPv6     net.IP `json:"ipv6,omitempty"`
	Allow    []Rule `json:"allow,omitempty"`
	Publish  []Port `json:"publish,omitempty"`
	AuditLog string `json:"audit_log,omitempty"`
}

// Addresses are the record's addresses, IPv4 first.
func (r *Record) Addresses() []string {
	var out []string
	for _, ip := range []net.IP{r.IPv4, r.IPv6} {
		if ip != nil {
			out = append(out, ip.String())
		}
	}
	return out
}

func (r *Record) save(root string) error {
	if err := os.MkdirAll(Dir(root), 0o700); err != nil {
		return fmt.Errorf("network record: %w", err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := RecordPath(root, r.ID)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("network record: %w", err)
	}
	return os.Rename(tmp, p)
}

// Load reads container id's record (os.ErrNotExist if it has none).
func Load(root, id string) (*Record, error) {
	data, err := os.ReadFile(RecordPath(root, id))
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", RecordPath(root, id), err)
	}
	return &r, nil
}

// Attach gives container id, whose init is pid, the network c describes
// (bridge only; none and host need nothing done). The record comes
// first, so that Teardown finds whatever a killed Attach made; on error,
// Attach removes what it made itself.
func Attach(root, id string, c *Config, pid int, audit *policy.Audit) (*Record, error) {
	return AttachPath(root, id, c, fmt.Sprintf("/proc/%d/ns/net", pid), audit)
}

// NetNSPath is where PrepareNetNS puts container id's network namespace.
func NetNSPath(root, id string) string { return filepath.Join(Dir(root), id+".netns") }

// PrepareNetNS makes container id a network namespace of its own, for
// an engine that joins one rather than making it (gVisor's runsc runs
// with --network=host inside it), and returns its path. Teardown
// removes it.
func PrepareNetNS(root, id string) (string, error) {
	if err := os.MkdirAll(Dir(root), 0o700); err != nil {
		return "", fmt.Errorf("network namespace: %w", err)
	}
	p := NetNSPath(root, id)
	return p, link.NewNetNS(p)
}

// AttachPath is Attach for the network namespace at nsPath.
func AttachPath(root, id string, c *Config, nsPath string, audit *policy.Audit) (rec *Record, err error) {
	if c == nil || c.Mode != ModeBridge {
		return nil, nil
	}
	// Before anything is made: a refusal leaves nothing behind.
	if err := checkHostPorts(c.Publish); err != nil {
		return nil, err
	}
	h := Hash(root, id)
	rec = &Record{ID: id, H: h, Bridge: c.Bridge, Veth: vethPrefix + h, Allow: c.Allow, Publish: c.Publish}
	if rec.Bridge == "" {
		rec.Bridge = DefaultBridge
	}
	if f := audit.File(); f != nil {
		rec.AuditLog = f.Name()
	}
	if err := rec.save(root); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if tdErr := Teardown(root, id); tdErr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, tdErr)
			}
		}
	}()
	gw4 := &net.IPNet{IP: ipam.Gateway4, Mask: ipam.Subnet4.Mask}
	gw6 := &net.IPNet{IP: ipam.Gateway6, Mask: ipam.Subnet6.Mask}
	if err := link.EnsureBridge(rec.Bridge, gw4, gw6); err != nil {
		if errors.Is(err, link.ErrNotBridge) {
			return nil, opterr.Errorf("bridge", "%w", err)
		}
		return nil, err
	}
	if err := firewall.Ensure(); err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for {
		lease, err := ipam.Allocate(root, id, skip)
		if err != nil {
			return nil, err
		}
		rec.IPv4, rec.IPv6 = lease.IPv4, lease.IPv6
		if err := rec.save(root); err != nil {
			return nil, err
		}
		err = link.Attach(rec.Veth, "np"+h, nsPath, link.Addrs{IPv4: lease.IPv4, IPv6: lease.IPv6, Gateway4: ipam.Gateway4, Gateway6: ipam.Gateway6,
			RouteLocalnet: len(c.Publish) > 0})
		if errors.Is(err, link.ErrAddrInUse) {
			// Another state root's container has it: keep looking.
			skip[lease.IPv4.String()] = true
			if err := ipam.Release(root, id, lease.IPv4); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	ct := firewall.Container{H: h, Veth: rec.Veth, IPv4: rec.IPv4, IPv6: rec.IPv6, Gateways: []net.IP{ipam.Gateway4, ipam.Gateway6}}
	for _, r := range c.Allow {
		if r.Net != nil {
			ct.Allow = append(ct.Allow, firewall.Allow{Net: r.Net, Proto: r.Proto, Port: r.Port})
		}
	}
	for _, p := range c.Publish {
		ct.Publish = append(ct.Publish, firewall.Publish{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto})
	}
	if err := firewall.Add(ct); err != nil {
		if errors.Is(err, firewall.ErrPublished) {
			return nil, opterr.Errorf("publish", "%w", err)
		}
		return nil, err
	}
	if c.HasNames() {
		if err := writeDNSConfig(root, rec, c); err != nil {
			return nil, err
		}
		if StartResolver != nil {
			if err := StartResolver(root); err != nil {
				return nil, fmt.Errorf("DNS resolver: %w", err)
			}
		}
	}
	allow := make([]string, 0, len(c.Allow))
	for _, r := range c.Allow {
		allow = append(allow, r.Text)
	}
	publish := make([]string, 0, len(c.Publish))
	for _, p := range c.Publish {
		publish = append(publish, p.String())
	}
	audit.Event("network_configured", map[string]any{"mode": c.Mode, "bridge": rec.Bridge, "addresses": rec.Addresses(),
		"allow": allow, "publish": publish, "dns": c.DNS})
	return rec, nil
}

func writeDNSConfig(root string, rec *Record, c *Config) error {
	dc := DNSConfig{ID: rec.ID, H: rec.H, Servers: c.DNS, AuditLog: rec.AuditLog}
	for _, r := range c.Allow {
		if r.Name != "" {
			dc.Names = append(dc.Names, r)
		}
	}
	data, err := json.Marshal(dc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(DNSDir(root), 0o700); err != nil {
		return fmt.Errorf("DNS config: %w", err)
	}
	for _, ip := range []net.IP{rec.IPv4, rec.IPv6} {
		if ip == nil {
			continue
		}
		p := DNSConfigPath(root, ip)
		if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
			return fmt.Errorf("DNS config: %w", err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return fmt.Errorf("DNS config: %w", err)
		}
	}
	return nil
}

// Teardown removes everything of container id's network: its rules and
// sets (after logging what they denied as egress_denied events), its
// veth, its leases, its DNS config and its record. It works from the
// names alone when the record is missing or partial, and what is already
// gone is no error, so it can run any number of times.
func Teardown(root, id string) error {
	rec, err := Load(root, id)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		// A record cut short (a full disk): what it named is found
		// without it, by the hash and the leases.
		logrus.Warnf("network of %s: %v; removing what the id implies", id, err)
		rec = nil
	}
	h := Hash(root, id)
	if rec == nil {
		rec = &Record{ID: id, H: h}
	}
	rec.H, rec.Veth = h, vethPrefix+h
	var errs []error
	if rec.AuditLog != "" {
		logDenied(rec)
	}
	errs = append(errs, firewall.Remove(h), link.Delete(rec.Veth))
	held, err := ipam.Held(root)
	errs = append(errs, err)
	for ip, holder := range held {
		if holder == id {
			errs = append(errs, ipam.Release(root, id, net.ParseIP(ip)))
			errs = append(errs, removeIfHolder(root, id, net.ParseIP(ip)))
		}
	}
	for _, ip := range []net.IP{rec.IPv4, rec.IPv6} {
		if ip != nil {
			errs = append(errs, removeIfHolder(root, id, ip))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network of %s: %w", id, err)
	}
	if err := link.RemoveNetNS(NetNSPath(root, id)); err != nil {
		return err
	}
	if err := os.Remove(ResolvConfPath(root, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(RecordPath(root, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	os.Remove(RecordPath(root, id) + ".tmp")
	return nil
}

// removeIfHolder removes the DNS config of ip if it is id's.
func removeIfHolder(root, id string, ip net.IP) error {
	if ip == nil {
		return nil
	}
	p := DNSConfigPath(root, ip)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var dc DNSConfig
	if json.Unmarshal(data, &dc) == nil && dc.ID != id {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// logDenied writes one egress_denied event per destination the
// container was refused.
func logDenied(rec *Record) {
	denied, err := firewall.ReadDenied(rec.H)
	if err != nil || len(denied) == 0 {
		return
	}
	audit, err := policy.OpenAudit(rec.AuditLog, rec.ID, "", false)
	if err != nil || audit == nil {
		return
	}
	defer audit.Close()
	for _, d := range denied {
		f := map[string]any{"destination": d.IP.String(), "proto": d.Proto}
		if d.Port != 0 {
			f["port"] = d.Port
		}
		audit.Event("egress_denied", f)
	}
}

// Addresses are container id's addresses under root (none if it is not
// bridged).
func Addresses(root, id string) []string {
	rec, err := Load(root, id)
	if err != nil {
		return nil
	}
	return rec.Addresses()
}

// AddressAnnotation is Addresses joined for the Annotation ("" if none).
func AddressAnnotation(root, id string) string { return strings.Join(Addresses(root, id), ",") }
