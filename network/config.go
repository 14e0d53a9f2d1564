// Package network gives a container its network: none (an empty network
// namespace), host (the host's), or bridge (a veth to the host, addresses
// from ipam, egress deny-by-default through the firewall's nftables
// rules, published ports). Attach sets a container up once its init
// exists; Teardown removes all of it again, from the record Attach wrote
// first, so that a nucleus killed half-way leaves nothing a later
// `delete --force` cannot find.
package network

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/nucleus-run/nucleus/opterr"
)

// Modes.
const (
	ModeNone   = "none"
	ModeHost   = "host"
	ModeBridge = "bridge"
	// ModePod keeps the network namespace the config names: a Kubernetes
	// pod's, which its CNI plugins set up (policy.NetPod).
	ModePod = "pod"
)

// DefaultBridge is the host bridge that holds the gateway addresses.
const DefaultBridge = "nucleus0"

// Config is a container's network.
type Config struct {
	Mode string
	// Bridge names the host bridge (DefaultBridge if empty).
	Bridge  string
	Allow   []Rule
	Publish []Port
	// DNS are the servers the resolver forwards to (default: the host's
	// resolv.conf).
	DNS []string
}

// Rule is one --allow: a prefix, or a name (a leading "*." matches any
// subdomain), with an optional port and protocol ("" = tcp and udp).
type Rule struct {
	Net   *net.IPNet `json:"-"`
	Name  string     `json:"name,omitempty"`
	Port  uint16     `json:"port,omitempty"`
	Proto string     `json:"proto,omitempty"`
	// Text is the rule as given.
	Text string `json:"rule"`
}

// Port is one --publish.
type Port struct {
	HostIP        net.IP `json:"host_ip,omitempty"`
	HostPort      uint16 `json:"host_port"`
	ContainerPort uint16 `json:"container_port"`
	Proto         string `json:"proto"`
}

// HasNames says whether any rule is a name (so the container needs the
// resolver).
func (c *Config) HasNames() bool {
	for _, r := range c.Allow {
		if r.Name != "" {
			return true
		}
	}
	return false
}

// Check validates c as a whole.
func (c *Config) Check() error {
	switch c.Mode {
	case ModeNone, ModeHost, ModeBridge, ModePod:
	default:
		return opterr.Errorf("net", "%q: want none, host or bridge", c.Mode)
	}
	if c.Mode != ModeBridge {
		switch {
		case len(c.Allow) > 0:
			return opterr.Errorf("allow", "needs --net bridge (the %s network has no egress rules)", c.Mode)
		case len(c.Publish) > 0:
			return opterr.Errorf("publish", "needs --net bridge")
		case len(c.DNS) > 0:
			return opterr.Errorf("dns", "needs --net bridge")
		case c.Bridge != "":
			return opterr.Errorf("bridge", "needs --net bridge")
		}
	}
	if c.Bridge != "" && (len(c.Bridge) > 15 || strings.ContainsAny(c.Bridge, "/ \t\n:") || strings.HasPrefix(c.Bridge, vethPrefix)) {
		return opterr.Errorf("bridge", "%q: want an interface name of at most 15 characters, not starting with %q", c.Bridge, vethPrefix)
	}
	for _, d := range c.DNS {
		if net.ParseIP(d) == nil {
			return opterr.Errorf("dns", "%q: want an IP address", d)
		}
	}
	return nil
}

// ParseAllow reads CIDR[:PORT[/tcp|udp]] or NAME[:PORT[/tcp|udp]] (an
// IPv6 prefix with a port is written [PREFIX]:PORT).
func ParseAllow(s string) (Rule, error) {
	r := Rule{Text: s}
	bad := func(why string) (Rule, error) {
		return Rule{}, opterr.Errorf("allow", "%q: %s (want CIDR[:PORT[/tcp|udp]] or NAME[:PORT])", s, why)
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return bad("unclosed [")
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if port == s[end+1:] && port != "" {
			return bad("want : after ]")
		}
	} else if strings.Count(s, ":") == 1 {
		host, port, _ = strings.Cut(s, ":")
		if port == "" {
			return bad("no port after :")
		}
	}
	if port != "" {
		p, proto, hasProto := strings.Cut(port, "/")
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return bad("port " + strconv.Quote(p) + " is not 1-65535")
		}
		r.Port = uint16(n)
		if hasProto {
			if proto != "tcp" && proto != "udp" {
				return bad("protocol " + strconv.Quote(proto) + " is not tcp or udp")
			}
			r.Proto = proto
		}
	}
	if host == "" {
		return bad("no address or name")
	}
	if strings.Contains(host, "/") || net.ParseIP(host) != nil {
		cidr := host
		if !strings.Contains(cidr, "/") {
			if net.ParseIP(host).To4() != nil {
				cidr += "/32"
			} else {
				cidr += "/128"
			}
		}
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return bad("not a CIDR")
		}
		r.Net = n
		return r, nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if !validName(name) {
		return bad("not a CIDR or a DNS name")
	}
	r.Name = name
	return r, nil
}

func validName(n string) bool {
	if len(n) == 0 || len(n) > 253 {
		return false
	}
	labels := strings.Split(n, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ParsePublish reads [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp] (an IPv6
// HOSTIP in brackets).
func ParsePublish(s string) (Port, error) {
	bad := func(why string) (Port, error) {
		return Port{}, opterr.Errorf("publish", "%q: %s (want [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp])", s, why)
	}
	p := Port{Proto: "tcp"}
	rest, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return bad("protocol " + strconv.Quote(proto) + " is not tcp or udp")
		}
		p.Proto = proto
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return bad("want [IPv6]:HOSTPORT")
		}
		p.HostIP = net.ParseIP(rest[1:end])
		if p.HostIP == nil || p.HostIP.To4() != nil {
			return bad("not an IPv6 address in []")
		}
		rest = rest[end+2:]
	}
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 3 && p.HostIP == nil:
		p.HostIP = net.ParseIP(parts[0])
		if p.HostIP == nil || p.HostIP.To4() == nil {
			return bad("host address " + strconv.Quote(parts[0]) + " is not an IPv4 address")
		}
		parts = parts[1:]
	case len(parts) != 2:
		return bad("want two ports")
	}
	for i, dst := range []*uint16{&p.HostPort, &p.ContainerPort} {
		n, err := strconv.ParseUint(parts[i], 10, 16)
		if err != nil || n == 0 {
			return bad("port " + strconv.Quote(parts[i]) + " is not 1-65535")
		}
		*dst = uint16(n)
	}
	return p, nil
}

func (p Port) String() string {
	s := fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Proto)
	if p.HostIP != nil {
		if p.HostIP.To4() == nil {
			return "[" + p.HostIP.String() + "]:" + s
		}
		return p.HostIP.String() + ":" + s
	}
	return s
}
