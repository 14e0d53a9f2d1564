package main

import (
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
