package policy

// preexec.c carries out the Landlock step from an ELF constructor, before
// the Go runtime starts; importing "C" links it into every binary that
// uses this package.

// #cgo CFLAGS: -O2 -Wall
import "C"
