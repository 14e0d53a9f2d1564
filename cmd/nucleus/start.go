package main

import (
	"github.com/nucleus-run/nucleus/runtime"
	"github.com/nucleus-run/nucleus/service"
)

func init() { register(startCommand) }

// start tells systemd (NOTIFY_SOCKET) the container runs, as run does.
var startCommand = idCommand("start", "start the process of a created container", func(r *runtime.Runtime, id string) error {
	if err := r.Start(id); err != nil {
		return err
	}
	return service.Started(r, id)
})
