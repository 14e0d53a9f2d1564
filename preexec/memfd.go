package preexec

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// File encodes r into a sealed memfd for the step to read: nothing can
// change the record once it is handed over, and it lives in no
// filesystem the container could reach.
func (r *Record) File() (*os.File, error) {
	data, err := r.Encode()
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("nucleus-preexec-record", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("pre-exec record: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "nucleus-preexec-record")
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("pre-exec record: write: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		f.Close()
		return nil, fmt.Errorf("pre-exec record: seal: %w", err)
	}
	return f, nil
}
