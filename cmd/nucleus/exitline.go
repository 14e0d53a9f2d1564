package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/nucleus-run/nucleus/runtime"
)

// reportExit prints the one line saying who ended the run (seccomp, the
// OOM killer, Landlock, --timeout), if anyone, on stderr after the
// workload's own output. The line names its source ("killed by
// seccomp: ..."), so it has no "nucleus: " prefix; with --log or JSON
// logging it goes to the log as fatal's errors do.
func reportExit(ex runtime.Exit) {
	line := ex.Line()
	if line == "" {
		return
	}
	_, isJSON := logrus.StandardLogger().Formatter.(*logrus.JSONFormatter)
	if !logToStderr || isJSON {
		logrus.Warn(line)
	}
	if !logToStderr || !isJSON {
		fmt.Fprintln(os.Stderr, line)
	}
}
