package main

import (
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/network"
	"github.com/nucleus-run/nucleus/network/dns"
	"github.com/nucleus-run/nucleus/network/firewall"
)

func init() {
	register(dnsProxyCommand)
	// A bridged container with names in its allowlist starts the
	// resolver of its state root: this binary again, as dns-proxy.
	network.StartResolver = dns.Start
}

// dnsProxyCommand is the resolver process that network/dns.Start runs for
// a state root; nobody types it.
var dnsProxyCommand = &cli.Command{
	Name:   "dns-proxy",
	Usage:  "serve the bridge containers' DNS for a state root (started on demand)",
	Hidden: true,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "root", Required: true, Usage: "the state root whose containers to serve"},
	},
	Action: func(c *cli.Context) error {
		if err := checkArgs(c, 0, exactArgs); err != nil {
			return err
		}
		return dns.Run(c.String("root"), dns.SetsFunc(firewall.AddResolved))
	},
}

// serveDNSHere makes this process, which runs a one-shot sandbox and
// lives as long as it, the resolver of its state root when the sandbox
// needs one and none runs: no dns-proxy process is started for it. The
// returned func stops it (after the sandbox's network is gone), handing
// over to a dns-proxy if containers of other processes still need one.
func serveDNSHere() (stop func()) {
	var mu sync.Mutex
	var here *dns.Here
	network.StartResolver = func(root string) error {
		mu.Lock()
		defer mu.Unlock()
		if here != nil {
			return nil
		}
		h, err := dns.ServeHere(root, dns.SetsFunc(firewall.AddResolved))
		if err != nil {
			return err
		}
		here = h
		return nil
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		here.Stop()
		network.StartResolver = dns.Start
	}
}
