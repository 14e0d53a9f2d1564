package main

import "github.com/nucleus-run/nucleus/runtime"

func init() { register(pauseCommand) }

var pauseCommand = idCommand("pause", "freeze every process of a container", (*runtime.Runtime).Pause)
