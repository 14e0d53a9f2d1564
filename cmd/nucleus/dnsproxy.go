package main

import (
	"errors"
	"net"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/network/dns"
)

func init() { register(dnsProxyCommand) }

// resolverSets is where the resolver's answers go.
var resolverSets dns.Sets = dns.SetsFunc(func(string, net.IP, string, uint16, time.Duration) error {
	return errors.New("this build has no firewall")
})

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
		return dns.Run(c.String("root"), resolverSets)
	},
}
