package main

import "github.com/nucleus-run/nucleus/runtime"

func init() { register(startCommand) }

var startCommand = idCommand("start", "start the process of a created container", (*runtime.Runtime).Start)
