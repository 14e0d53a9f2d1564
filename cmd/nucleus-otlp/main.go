// Command nucleus-otlp exports one span that nucleus recorded (JSON on
// stdin) to an OTLP/HTTP endpoint (its argument). nucleus runs it at the
// end of a command when --otlp-endpoint is set; it is a program of its own
// so that nucleus does not link OpenTelemetry (package telemetry). It
// gives up after telemetry.ExportTimeout and exits 1 on any failure, which
// nucleus ignores.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/nucleus-run/nucleus/telemetry"
	"github.com/nucleus-run/nucleus/telemetry/otlp"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: nucleus-otlp ENDPOINT < span.json")
		os.Exit(2)
	}
	var span telemetry.Span
	if err := json.NewDecoder(os.Stdin).Decode(&span); err != nil {
		fmt.Fprintln(os.Stderr, "nucleus-otlp: span:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), telemetry.ExportTimeout)
	defer cancel()
	if err := otlp.Export(ctx, os.Args[1], span); err != nil {
		fmt.Fprintln(os.Stderr, "nucleus-otlp:", err)
		os.Exit(1)
	}
}
