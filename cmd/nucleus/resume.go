package main

import "github.com/nucleus-run/nucleus/runtime"

func init() { register(resumeCommand) }

var resumeCommand = idCommand("resume", "thaw a paused container", (*runtime.Runtime).Resume)
