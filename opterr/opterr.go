// Package opterr is the error of an invalid option, named the way the
// library names it ("workspace"), so that a library caller reads the
// option's name and the CLI can show its flag ("--workspace") instead:
// library errors never name CLI flags themselves.
package opterr

import (
	"errors"
	"fmt"
)

// Error is an invalid option.
type Error struct {
	Option string
	Msg    string
	// Err is the error's class or cause, if any, for errors.Is and As.
	Err error
}

func (e *Error) Error() string { return e.Option + ": " + e.Msg }

func (e *Error) Unwrap() error { return e.Err }

// Errorf formats an invalid option's error; a %w in format is kept for
// errors.Is.
func Errorf(option, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Option: option, Msg: err.Error(), Err: errors.Unwrap(err)}
}
