package userns

// hold.c is the namespace's creator, run from an ELF constructor before
// the Go runtime starts; importing "C" links it into every binary that
// imports this package.

// #cgo CFLAGS: -O2 -Wall
import "C"
