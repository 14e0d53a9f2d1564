// Command poolapi runs one command from a warm pool through the Go API
// (sandbox.FromPool), as a platform would, for the integration tests:
//
//	poolapi ROOT POOL WORKSPACE KIND -- CMD [ARGS...]
//
// It prints the command's output, then its result as one JSON line, and
// exits with its status (125 when the API refused).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/nucleus-run/nucleus/sandbox"
)

func main() {
	// Also a container's init, a pool's detached release and refill.
	sandbox.Init()
	if len(os.Args) < 7 || os.Args[5] != "--" {
		fmt.Fprintln(os.Stderr, "usage: poolapi ROOT POOL WORKSPACE KIND -- CMD [ARGS...]")
		os.Exit(2)
	}
	var ws *sandbox.Workspace
	if os.Args[3] != "" {
		ws = &sandbox.Workspace{Host: os.Args[3], Kind: os.Args[4]}
	}
	res, err := sandbox.FromPool(context.Background(), os.Args[1], os.Args[2],
		sandbox.Cmd{Args: os.Args[6:], Stdout: os.Stdout, Stderr: os.Stderr}, ws)
	if err != nil {
		fmt.Fprintln(os.Stderr, "poolapi:", err)
		os.Exit(125)
	}
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	os.Exit(res.Status)
}
