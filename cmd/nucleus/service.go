package main

import (
	"github.com/urfave/cli/v2"

	"github.com/nucleus-run/nucleus/runtime"
)

// serviceFlags are create's and run's flags for running a service: its
// log driver and its secrets.
func serviceFlags() []cli.Flag {
	return append(logFlags(), secretFlags()...)
}

// serviceDone runs once create or run is over: the secrets' buffers are
// zeroed (again) and the journal relay gets to finish.
var serviceDone = func() {}

// serviceOptions applies the service flags to o, once every other option
// was checked.
func serviceOptions(c *cli.Context, o *runtime.CreateOptions) error {
	o.Detach = o.Detach || c.Bool("detach") || c.Command.Name == "create"
	if session != nil {
		o.Audit = o.Audit.WithSink(o.ID, session.AuditSink)
	}
	set, err := secretOptions(c, o)
	if err != nil {
		return err
	}
	done, err := logOptions(c, o)
	if err != nil {
		set.Zero()
		return err
	}
	serviceDone = func() {
		set.Zero()
		done()
	}
	return nil
}

// finish runs before nucleus exits with status (the process's, or its
// own error's): the span ends and is flushed (bounded), then the journal
// relay gets what is left.
func finish(err error, status int) {
	session.SetAttribute("nucleus.exit_status", status)
	session.End(err)
	serviceDone()
}
