package userns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const owner = 1 << 30

var mapping = []specs.LinuxIDMapping{{ContainerID: 0, HostID: owner, Size: 65536}}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
}

// The pinned namespace is owned by the unprivileged uid, carries the
// maps, and Remove leaves neither file nor mount.
func TestCreateOwnedAndRemoved(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "userns")
	if err := Create(path, owner, mapping, mapping); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		Remove(path)
		t.Fatal(err)
	}
	uid, err := unix.IoctlGetUint32(fd, unix.NS_GET_OWNER_UID)
	unix.Close(fd)
	if err != nil || uid != owner {
		t.Errorf("owner of the pinned namespace: %d %v, want %d", uid, err, owner)
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("%s still there after Remove: %v", path, err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), path) {
		t.Errorf("%s still mounted after Remove", path)
	}
	if err := Remove(path); err != nil {
		t.Errorf("Remove of a removed namespace: %v", err)
	}
}

// A refused create names the reason and leaves nothing at the path.
func TestCreateRefused(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	for name, c := range map[string]struct {
		owner uint32
		m     []specs.LinuxIDMapping
		want  string
	}{
		"root":       {0, mapping, "unprivileged"},
		"no mapping": {owner, nil, "no mapping"},
		"bad map":    {owner, []specs.LinuxIDMapping{{ContainerID: 0, HostID: owner, Size: 0}}, "uid_map"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		err := Create(path, c.owner, c.m, mapping)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s: %s left behind", name, path)
		}
	}
}

// Open returns the namespace itself, unpinned: owned by the unprivileged
// uid, with the maps written, and its creator gone.
func TestOpenUnpinned(t *testing.T) {
	requireRoot(t)
	uids := []specs.LinuxIDMapping{{ContainerID: 1000, HostID: owner + 5, Size: 1}}
	gids := []specs.LinuxIDMapping{{ContainerID: 1001, HostID: owner + 6, Size: 1}}
	before, _ := os.ReadFile("/proc/self/mountinfo")
	ns, err := Open(owner, uids, gids)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	uid, err := unix.IoctlGetUint32(int(ns.Fd()), unix.NS_GET_OWNER_UID)
	if err != nil || uid != owner {
		t.Errorf("owner: %d %v, want %d", uid, err, owner)
	}
	if after, _ := os.ReadFile("/proc/self/mountinfo"); string(after) != string(before) {
		t.Errorf("Open changed the mount table")
	}
	if _, err := Open(0, uids, gids); err == nil {
		t.Errorf("Open with owner 0 succeeded")
	}
}
