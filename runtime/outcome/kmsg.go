package outcome

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Audit record types the kernel prints to its log when no audit daemon
// takes them (include/uapi/linux/audit.h).
const (
	auditSeccomp        = 1326 // AUDIT_SECCOMP
	auditLandlockAccess = 1423 // AUDIT_LANDLOCK_ACCESS
	auditLandlockDomain = 1424 // AUDIT_LANDLOCK_DOMAIN
)

// kmsgPath is the kernel log, one record per read.
const kmsgPath = "/dev/kmsg"

// AuditRecord is one audit record as the kernel prints it:
// "audit: type=1326 audit(1796013640.144:262): auid=... pid=18626 ...".
type AuditRecord struct {
	Type int
	// Time is when the kernel made the record (its coarse wall clock).
	Time   time.Time
	Serial uint64
	// Fields are the record's key=value pairs, quotes removed; the
	// strings the kernel hex-encodes (a comm or path with a space or a
	// quote in it) are decoded.
	Fields map[string]string
}

// Int is field k as a number (-1 if absent or not a number).
func (r AuditRecord) Int(k string) int64 {
	n, err := strconv.ParseInt(r.Fields[k], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// ParseKmsg splits one /dev/kmsg record ("PRI,SEQ,USEC,FLAGS;MESSAGE\n"
// and continuation lines) into its sequence number and message.
func ParseKmsg(rec string) (seq uint64, msg string, ok bool) {
	head, rest, found := strings.Cut(rec, ";")
	if !found {
		return 0, "", false
	}
	f := strings.Split(head, ",")
	if len(f) < 3 {
		return 0, "", false
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, "", false
	}
	msg, _, _ = strings.Cut(rest, "\n") // drop the " KEY=value" dictionary lines
	return seq, msg, true
}

// untrusted are the fields the kernel logs with audit_log_untrustedstring:
// quoted, or hex without quotes when they hold a space, quote or control
// character.
var untrusted = map[string]bool{"comm": true, "exe": true, "path": true, "ocomm": true, "name": true, "cwd": true}

// ParseAudit parses a kernel log message holding an audit record.
func ParseAudit(msg string) (AuditRecord, bool) {
	var r AuditRecord
	_, rest, ok := strings.Cut(msg, "audit: type=")
	if !ok {
		return r, false
	}
	typ, rest, ok := strings.Cut(rest, " audit(")
	if !ok {
		return r, false
	}
	n, err := strconv.Atoi(typ)
	if err != nil {
		return r, false
	}
	r.Type = n
	stamp, rest, ok := strings.Cut(rest, "): ")
	if !ok {
		return r, false
	}
	when, serial, ok := strings.Cut(stamp, ":")
	if !ok {
		return r, false
	}
	if r.Serial, err = strconv.ParseUint(serial, 10, 64); err != nil {
		return r, false
	}
	sec, msecs, ok := strings.Cut(when, ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	ms, err2 := strconv.ParseInt(msecs, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return r, false
	}
	r.Time = time.Unix(s, ms*int64(time.Millisecond))
	r.Fields = map[string]string{}
	for _, kv := range strings.Fields(rest) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch {
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = v[1 : len(v)-1]
		case untrusted[k]:
			if b, err := hex.DecodeString(v); err == nil {
				v = string(b)
			}
		}
		r.Fields[k] = v
	}
	return r, true
}

// systemLog is the host's kernel log and audit status.
type systemLog struct{}

// errNoLog says the kernel log could not be read (no CAP_SYSLOG, or
// dmesg_restrict for a rootless caller).
var errNoLog = errors.New("the kernel log is not readable")

func (systemLog) audit(types []int, wait time.Duration, visit func(AuditRecord) bool, enough func() bool) error {
	fd, err := unix.Open(kmsgPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errNoLog, kmsgPath, err)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(wait)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EINTR || err == unix.EPIPE:
			// EPIPE: the record we were at was overwritten; the
			// next read goes on from the oldest one left.
			continue
		case err == unix.EAGAIN:
			left := time.Until(deadline)
			if left <= 0 || enough() {
				return nil
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			_, _ = unix.Poll(fds, int(left.Milliseconds())+1)
			continue
		case err != nil:
			return fmt.Errorf("%w: %s: %w", errNoLog, kmsgPath, err)
		}
		_, msg, ok := ParseKmsg(string(buf[:n]))
		if !ok || !strings.HasPrefix(msg, "audit: type=") {
			continue
		}
		rec, ok := ParseAudit(msg)
		if !ok || !containsInt(types, rec.Type) {
			continue
		}
		if visit(rec) {
			return nil
		}
	}
}

// auditOn asks the kernel (AUDIT_GET on the audit netlink socket) whether
// audit is enabled. If it can't tell, it says yes: reading the log for
// nothing costs a few milliseconds.
func (systemLog) auditOn() bool {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	req := make([]byte, unix.NLMSG_HDRLEN)
	*(*unix.NlMsghdr)(unsafe.Pointer(&req[0])) = unix.NlMsghdr{Len: unix.NLMSG_HDRLEN, Type: unix.AUDIT_GET, Flags: unix.NLM_F_REQUEST, Seq: 1}
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return true
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil || n < unix.NLMSG_HDRLEN {
			return true
		}
		h := (*unix.NlMsghdr)(unsafe.Pointer(&buf[0]))
		switch h.Type {
		case unix.AUDIT_GET:
			// struct audit_status: mask, enabled, ...
			if n < unix.NLMSG_HDRLEN+8 {
				return true
			}
			return binary.NativeEndian.Uint32(buf[unix.NLMSG_HDRLEN+4:]) != 0
		case unix.NLMSG_ERROR:
			return true
		}
	}
}

func containsInt(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}
