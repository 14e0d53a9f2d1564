package workspace

// The *at primitives below are the write-back's own, exported for the
// other copier that must not trust its trees (containerfs, behind
// `nucleus cp`): one implementation of each, reviewed once.

// TempName is a fresh name for a file being written beside its final
// name, renamed over it when complete.
func TempName() string { return tempName() }

// OpenDir opens name beneath dirfd as a directory; with noFollow a final
// symlink fails instead of being followed.
func OpenDir(dirfd int, name string, noFollow bool) (int, error) {
	return openDir(dirfd, name, noFollow)
}

// ReadlinkAt reads the target of the symlink name beneath dirfd, of any
// length.
func ReadlinkAt(dirfd int, name string) (string, error) { return readlinkAt(dirfd, name) }

// RemoveAt removes name beneath dirfd and, for a directory, all it holds,
// never following a link.
func RemoveAt(dirfd int, name string) error { return removeAt(dirfd, name) }
