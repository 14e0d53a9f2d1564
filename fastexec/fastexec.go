// Package fastexec is `nucleus exec`'s fast path into a supervised
// sandbox, in C: an ELF constructor (fastexec.c) that runs before the Go
// runtime starts, which on this path is most of the cost (a Go binary of
// nucleus's size takes ~15 ms to reach main; the whole supervised exec
// takes ~10 ms more).
//
// It handles only the plain form, `nucleus [--root DIR] exec [-e K=V]...
// [--cwd DIR] ID CMD [ARG...]`, into a sandbox whose state dir holds the
// exec defaults the runtime wrote for it (supervise.ExecDefaultsName),
// and speaks the supervisor's protocol (package supervise) as the Go path
// does: the same request, pipes owned by the sandbox's user, signals
// forwarded, the status returned as the exit code. Anything else, and any
// failure before the command has started, returns to Go, which runs the
// exec as if the fast path did not exist; NUCLEUS_EXEC_FAST=0 sends every
// exec there.
//
// Only the nucleus command imports it: the constructor must not act in
// another binary that happens to be called with `exec`.
package fastexec

// #cgo CFLAGS: -O2 -Wall
import "C"
