package preexec

// preexec.c carries out the pre-exec step from an ELF constructor, before
// the Go runtime starts; importing "C" links it (with record.c and
// sha256.c) into every binary that imports this package, including this
// package's test binary, which runs the real decoder.

// #cgo CFLAGS: -O2 -Wall
import "C"
