// The pre-exec step, in C so that it runs from an ELF constructor before
// the Go runtime starts: the step sits on every sandbox's start path and
// booting a Go runtime only to make a few syscalls and exec costs ~2 ms.
//
// Invoked by the runtime as
//   /proc/self/fd/N landlock-exec --record-fd=R -- ARGV...
// where R is a sealed memfd holding one record (record.go, record.c): the
// Landlock rules, the descriptors of the sealed nucleus binary, the audit
// log, the compiled seccomp program (with its SHA-256) and a status pipe,
// and pre-rendered JSON fragments for the audit events. The step checks
// the seccomp program against its digest, restricts itself with Landlock,
// writes its audit events, reports to the status pipe, loads the seccomp
// program and execs ARGV in place, so the container's init pid stays the
// workload's.
//
// Every top-level entry of / except the exec_root_except ones gets read and
// execute, unless it is a symlink (its target has its own entry, so nothing
// is lost, and a link such as devlink -> /dev gains nothing; the event
// lists such links as symlinks_not_granted); read gets
// read, write read and write, devices also device ioctls, exec read and
// execute. Rule paths are opened without following any symlink; one that
// can't be opened is skipped (with an audit event unless it is missing):
// a skipped grant only narrows what the workload can do. Losing Landlock
// as a whole is fatal in strict modes; otherwise the step warns, and its
// events and the status byte say the posture is degraded. A seccomp
// program that doesn't match its digest is fatal in every mode. It never
// returns to Go.
//
// When the record asks for it (the container's init, never an exec'd
// process) the ruleset also scopes signals (Landlock ABI 6): the workload
// and its descendants can then signal only their own domain, never the
// processes `nucleus exec` starts later in domains of their own. On an
// older ABI the scope is skipped, not lost: Landlock still applies and the
// landlock_applied event says "signal_scope": false, with the reason.
//
// A held init (PX_FLAG_HOLD) given --supervisor-fd=N, a listening socket
// the host bound in the sandbox's state dir, becomes the sandbox's
// supervisor (supervise.c) once confined: it serves `nucleus exec`.
//
// Given --reap=MODE (a container started detached under a mode: under a
// containerd shim or `create`/`start`, where no nucleus process waits for
// the workload), the step stays as the container's init, a tiny parent
// (reap below), and execs the workload as its child: when seccomp kills
// the workload, it says so on the container's stderr, which is the log a
// CRI user reads (`crictl logs`), in the one line nucleus prints for an
// attached run.
//
// --dump-record (instead of "-- ARGV") prints the decoded record and
// exits: the round-trip test of the encoder runs the real decoder so.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "record.h"
#include "sha256.h"

#define LL_EXECUTE (1ULL << 0)
#define LL_WRITE_FILE (1ULL << 1)
#define LL_READ_FILE (1ULL << 2)
#define LL_READ_DIR (1ULL << 3)
#define LL_REMOVE_DIR (1ULL << 4)
#define LL_REMOVE_FILE (1ULL << 5)
#define LL_MAKE_CHAR (1ULL << 6)
#define LL_MAKE_DIR (1ULL << 7)
#define LL_MAKE_REG (1ULL << 8)
#define LL_MAKE_SOCK (1ULL << 9)
#define LL_MAKE_FIFO (1ULL << 10)
#define LL_MAKE_BLOCK (1ULL << 11)
#define LL_MAKE_SYM (1ULL << 12)
#define LL_REFER (1ULL << 13)
#define LL_TRUNCATE (1ULL << 14)
#define LL_IOCTL_DEV (1ULL << 15)

#define LL_READ (LL_READ_FILE | LL_READ_DIR)
#define LL_WRITE (LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_DIR | LL_MAKE_REG | \
		  LL_MAKE_SYM | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_TRUNCATE)
#define LL_FILE_RIGHTS (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)

#define MAX_PROG_INSNS 4096

// LANDLOCK_SCOPE_SIGNAL, from ABI 6.
#define LL_SCOPE_SIGNAL (1ULL << 1)
#define LL_SCOPE_ABI 6

// LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON, from ABI 7: audit the denials of
// the programs exec'd after restricting (the workload), not only of the
// step itself, so that nucleus can name the denial that failed a run
// (package runtime/outcome). The kernel logs only while audit is enabled.
#define LL_LOG_NEW_EXEC_ON (1U << 1)
#define LL_LOG_ABI 7

// struct landlock_ruleset_attr as of ABI 6: the kernel is passed the size
// up to the last field set, so older kernels accept the fs-only prefix.
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; // ABI 4; never set here
	uint64_t scoped;             // ABI 6
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

static void fail(int code, const char *fmt, ...)
{
	va_list ap;
	fputs("nucleus: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(code);
}

// A growable output buffer for one audit line.
struct buf {
	char *p;
	size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->n + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			fail(126, "out of memory");
		b->p = p, b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(struct buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

// put_json_str writes s as a JSON string of printable ASCII: quote and
// backslash escaped, every other byte outside 0x20-0x7e as \u00XX (a name
// that isn't ASCII shows as its bytes, but can never end the string, the
// object or the line).
static void put_json_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			char e[2] = {'\\', (char)*c};
			put(b, e, 2);
		} else if (*c < 0x20 || *c > 0x7e) {
			char e[6] = {'\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15]};
			put(b, e, 6);
		} else {
			put(b, (const char *)c, 1);
		}
	}
	put(b, "\"", 1);
}

// Top-level symlinks named in the landlock_applied event, at most.
#define MAX_LINKS_LISTED 64

struct step {
	const struct px_record *rec;
	int degraded;
	// Whether signals were scoped.
	int signal_scope;
	// The top-level symlinks given no rule, as JSON strings joined by
	// commas, and how many there were.
	struct buf links;
	int nlinks;
};

// event starts an audit line: time, event name, id and posture.
static void event(struct buf *b, const struct step *st, const char *name)
{
	char ts[64];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	b->n = 0;
	putf(b, "{\"time\":\"%s.%09ldZ\",\"event\":\"%s\",", ts, now.tv_nsec, name);
	puts_(b, st->rec->frag[PX_FRAG_ID]);
	puts_(b, ",");
	puts_(b, st->rec->frag[st->degraded ? PX_FRAG_DEGRADED : PX_FRAG_POSTURE]);
}

// emit ends the line and writes it with one write(2), so that lines from
// the step and the runtime never interleave in the O_APPEND log.
static void emit(struct buf *b, const struct step *st)
{
	puts_(b, "}\n");
	if (st->rec->audit_fd > 2)
		(void)!write(st->rec->audit_fd, b->p, b->n);
}

static void audit_skip(const struct step *st, const char *path, const char *reason)
{
	struct buf b = {0};
	event(&b, st, "landlock_rule_skipped");
	puts_(&b, ",\"path\":");
	put_json_str(&b, path);
	puts_(&b, ",\"reason\":");
	put_json_str(&b, reason);
	emit(&b, st);
	free(b.p);
}

// Rights Nucleus handles (and so denies unless granted), by ABI: all of
// ABI 1, Refer from ABI 2, Truncate from ABI 3, device ioctls from ABI 5.
// Refer must be handled and granted where writes are: a ruleset that does
// not handle it refuses every cross-directory rename and link (EXDEV), so
// `mv a/x b/` would fail. Landlock still refuses a move that would give a
// file rights it did not have (from /tmp into an exec workspace).
static uint64_t handled_rights(int abi)
{
	uint64_t h = LL_EXECUTE | LL_READ | LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_CHAR |
		     LL_MAKE_DIR | LL_MAKE_REG | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_MAKE_BLOCK | LL_MAKE_SYM;
	if (abi >= 2)
		h |= LL_REFER;
	if (abi >= 3)
		h |= LL_TRUNCATE;
	if (abi >= 5)
		h |= LL_IOCTL_DEV;
	return h;
}

// open_nofollow opens path as O_PATH without following any symlink, in
// any component: each is opened O_NOFOLLOW from the one before, and one
// that turns out to be a symlink ends the walk with ELOOP.
static int open_nofollow(const char *path)
{
	int cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -1;
	const char *p = path;
	char comp[256];
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			return cur;
		size_t n = strcspn(p, "/");
		if (n >= sizeof(comp)) {
			close(cur);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = 0;
		p += n;
		int next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(cur);
		if (next < 0) {
			errno = e;
			return -1;
		}
		struct stat st;
		if (fstat(next, &st) < 0 || S_ISLNK(st.st_mode)) {
			close(next);
			errno = ELOOP;
			return -1;
		}
		cur = next;
	}
}

// add_rule grants rights beneath the file open at fd (file rights only,
// when it isn't a directory) and closes fd.
static int add_rule(int ruleset, int fd, const char *path, uint64_t rights, uint64_t handled, char *err, size_t errlen)
{
	struct ll_path_beneath_attr attr = {.allowed_access = rights & handled, .parent_fd = fd};
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		attr.allowed_access &= LL_FILE_RIGHTS;
	int r = syscall(SYS_landlock_add_rule, ruleset, 1 /* LANDLOCK_RULE_PATH_BENEATH */, &attr, 0);
	int e = errno;
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "landlock_add_rule %s: %s", path, strerror(e));
		return -1;
	}
	return 0;
}

// add_list grants rights beneath each path of a list; a missing path is
// skipped quietly, one that can't be opened otherwise with an event.
static int add_list(const struct step *st, int ruleset, const struct px_list *l, uint64_t rights, uint64_t handled,
		    char *err, size_t errlen)
{
	for (uint32_t i = 0; i < l->n; i++) {
		int fd = open_nofollow(l->p[i]);
		if (fd < 0) {
			if (errno != ENOENT)
				audit_skip(st, l->p[i], errno == ELOOP ? "symbolic link in the path" : strerror(errno));
			continue;
		}
		if (add_rule(ruleset, fd, l->p[i], rights, handled, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int listed(const struct px_list *l, const char *p)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (strcmp(l->p[i], p) == 0)
			return 1;
	return 0;
}

static int restrict_self(struct step *st, int abi, char *err, size_t errlen)
{
	const struct px_record *rec = st->rec;
	uint64_t handled = handled_rights(abi);
	struct ll_ruleset_attr attr = {.handled_access_fs = handled};
	size_t attr_size = offsetof(struct ll_ruleset_attr, handled_access_net);
	int scope = (rec->flags & PX_FLAG_SCOPE_SIGNALS) && abi >= LL_SCOPE_ABI;
	if (scope) {
		attr.scoped = LL_SCOPE_SIGNAL;
		attr_size = sizeof(attr);
	}
	int rs = syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
	if (rs < 0) {
		snprintf(err, errlen, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	int ret = -1;
	if (add_list(st, rs, &rec->list[PX_READ], LL_READ, handled, err, errlen) < 0)
		goto out;
	DIR *d = opendir("/");
	if (!d) {
		snprintf(err, errlen, "list /: %s", strerror(errno));
		goto out;
	}
	struct dirent *e;
	char path[2 + sizeof(e->d_name)];
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "/%s", e->d_name);
		if (listed(&rec->list[PX_NOEXEC_ROOT], path))
			continue;
		int fd = openat(dirfd(d), e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			audit_skip(st, path, strerror(errno));
			continue;
		}
		struct stat sb;
		if (fstat(fd, &sb) < 0 || S_ISLNK(sb.st_mode)) {
			// No exec through a link: its target has its own rule (or
			// is kept out of exec on purpose, like /dev).
			close(fd);
			if (st->nlinks++ < MAX_LINKS_LISTED) {
				if (st->links.n)
					puts_(&st->links, ",");
				put_json_str(&st->links, path);
			}
			continue;
		}
		if (add_rule(rs, fd, path, LL_READ | LL_EXECUTE, handled, err, errlen) < 0) {
			closedir(d);
			goto out;
		}
	}
	closedir(d);
	if (add_list(st, rs, &rec->list[PX_EXEC], LL_READ | LL_EXECUTE, handled, err, errlen) < 0 ||
	    add_list(st, rs, &rec->list[PX_WRITE], LL_READ | LL_WRITE | LL_REFER, handled, err, errlen) < 0 ||
	    add_list(st, rs, &rec->list[PX_DEVICES], LL_READ | LL_WRITE | LL_IOCTL_DEV, handled, err, errlen) < 0)
		goto out;
	// libcontainer sets no_new_privs already in every mode that plans
	// Landlock; setting it again costs nothing and keeps this step sound.
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		goto out;
	}
	if (syscall(SYS_landlock_restrict_self, rs, abi >= LL_LOG_ABI ? LL_LOG_NEW_EXEC_ON : 0) < 0) {
		snprintf(err, errlen, "landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	st->signal_scope = scope;
	ret = 0;
out:
	close(rs);
	return ret;
}

// read_all reads a whole file of at most max bytes (from offset 0).
static unsigned char *read_all(int fd, size_t max, size_t *len, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail(125, "%s: fd %d: %s", what, fd, strerror(errno));
	if (st.st_size < 0 || (size_t)st.st_size > max)
		fail(125, "%s: fd %d holds %lld bytes (at most %zu)", what, fd, (long long)st.st_size, max);
	unsigned char *p = malloc(st.st_size ? st.st_size : 1);
	if (!p)
		fail(126, "%s: out of memory", what);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, p + got, st.st_size - got, got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail(126, "%s: read: %s", what, n < 0 ? strerror(errno) : "short read");
		got += n;
	}
	*len = got;
	return p;
}

static void hex(FILE *f, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

static void dump(const struct px_record *rec)
{
	static const char *frags[PX_NFRAGS] = {"frag_id", "frag_posture", "frag_degraded", "frag_rules"};
	printf("version %u\nflags %u\nmin_abi %u\n", rec->version, rec->flags, rec->min_abi);
	printf("self_fd %d\naudit_fd %d\nseccomp_fd %d\nstatus_fd %d\nseccomp_sha256 ", rec->self_fd, rec->audit_fd,
	       rec->seccomp_fd, rec->status_fd);
	hex(stdout, rec->seccomp_sha256, 32);
	putchar('\n');
	for (int i = 0; i < PX_NFRAGS; i++) {
		printf("%s ", frags[i]);
		hex(stdout, (const unsigned char *)rec->frag[i], strlen(rec->frag[i]));
		putchar('\n');
	}
	for (int l = 0; l < PX_NLISTS; l++)
		for (uint32_t i = 0; i < rec->list[l].n; i++) {
			printf("%s ", px_list_names[l]);
			hex(stdout, (const unsigned char *)rec->list[l].p[i], strlen(rec->list[l].p[i]));
			putchar('\n');
		}
	if (rec->seccomp_fd >= 0) {
		size_t n;
		unsigned char *prog = read_all(rec->seccomp_fd, PX_MAX_RECORD, &n, "seccomp"), sum[32];
		px_sha256(prog, n, sum);
		printf("seccomp_sum ");
		hex(stdout, sum, 32);
		putchar('\n');
	}
	fflush(stdout);
}

// read_seccomp reads the compiled program and checks it against the
// record's digest: a cache file swapped or edited since it was compiled
// is refused in every mode, never loaded.
static struct sock_fprog read_seccomp(const struct step *st)
{
	size_t n;
	unsigned char *prog = read_all(st->rec->seccomp_fd, MAX_PROG_INSNS * sizeof(struct sock_filter), &n, "seccomp");
	close(st->rec->seccomp_fd);
	const char *why = NULL;
	unsigned char sum[32];
	px_sha256(prog, n, sum);
	if (n == 0 || n % sizeof(struct sock_filter) != 0)
		why = "the compiled filter is not a BPF program";
	else if (memcmp(sum, st->rec->seccomp_sha256, 32) != 0)
		why = "the compiled filter does not match its SHA-256 (the seccomp cache was modified; remove it)";
	if (why) {
		struct buf b = {0};
		event(&b, st, "seccomp_applied");
		puts_(&b, ",\"applied\":false,\"error\":");
		put_json_str(&b, why);
		emit(&b, st);
		fail(126, "seccomp: %s", why);
	}
	return (struct sock_fprog){.len = (unsigned short)(n / sizeof(struct sock_filter)), .filter = (struct sock_filter *)prog};
}

// report writes the status byte and closes the pipe, so the runtime learns
// whether the step went on degraded. A reader that is gone must not kill
// the step: SIGPIPE is ignored for the write only (an ignored signal is
// discarded, so nothing is left pending for the workload).
// Given --supervisor-fd, a held sandbox's init becomes the supervisor
// (supervise.c), which also serves `nucleus exec` on that socket; without
// it (a sandbox whose seccomp profile is the user's, which may not allow
// the supervisor's syscalls), hold below. confine, if not NULL, runs in
// each command's child before its exec (PX_FLAG_DEFER_LANDLOCK): 0, or -1
// with err set.
void nucleus_supervise(int lfd, long ttl, int (*confine)(char *err, size_t errlen));

// The record and ABI a deferred Landlock domain is made from, in each
// command's child (the held init never returns, so the record lives on).
static struct px_record child_rec;
static int child_abi;

// confine_child applies the sandbox's Landlock rules to a command about to
// be exec'd by the supervisor: the paths are opened now, so a workspace
// mounted since the start is the one the rules name. No audit descriptor
// (the init closed it) and no signal scope (as for an exec'd process).
static int confine_child(char *err, size_t errlen)
{
	struct step st = {.rec = &child_rec};
	int r = restrict_self(&st, child_abi, err, errlen);
	free(st.links.p);
	return r;
}

// hold is a held sandbox's init (PX_FLAG_HOLD): it stays pid 1, reaps the
// orphans of exec'd processes, and exits 0 on SIGTERM, SIGINT or SIGHUP or
// once ttl seconds (0: none) have passed, which ends the sandbox even when
// no nucleus command runs at its deadline.
static void hold(long ttl)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	// Blocked, so they queue for sigtimedwait even for a pid namespace's
	// init, which the kernel spares signals it has no handler for.
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		fail(126, "hold: sigprocmask: %s", strerror(errno));
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		for (int fd = 0; fd < 3; fd++)
			dup2(devnull, fd);
		close(devnull);
	}
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ttl;
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		struct timespec left, *timeout = NULL;
		if (ttl > 0) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			left.tv_sec = end.tv_sec - now.tv_sec;
			left.tv_nsec = end.tv_nsec - now.tv_nsec;
			if (left.tv_nsec < 0) {
				left.tv_sec--;
				left.tv_nsec += 1000000000L;
			}
			if (left.tv_sec < 0)
				_exit(0);
			timeout = &left;
		}
		int sig = sigtimedwait(&set, NULL, timeout);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
			_exit(0);
	}
}


static void exec_workload(char **cmd)
{
	execvp(cmd[0], cmd);
	int e = errno;
	if (e == ENOENT)
		fail(127, "exec %s: not found in the container", cmd[0]);
	if (e == EACCES)
		fail(126, "exec %s: permission denied (Landlock or the mount allows no execution there)", cmd[0]);
	fail(126, "exec %s: %s", cmd[0], strerror(e));
}

static void load_seccomp(struct sock_fprog *prog)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(126, "seccomp: no_new_privs: %s", strerror(errno));
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
		fail(126, "seccomp: load filter: %s", strerror(errno));
}

// reap runs the workload as its child and stays as its parent: it
// forwards every signal sent to it (the shim's SIGTERM from `crictl
// stop`, `crictl exec ID kill -HUP 1`) to the workload, reaps orphans (as
// a pid namespace's init), and exits with the workload's status, 128+N
// when signal N killed it (the status containerd reports for a signal
// anyway). When SIGSYS killed the workload it first writes one line
// naming seccomp on stderr.
//
// Both run under the same Landlock domain and seccomp filter: nothing of
// the container runs with less. The runtime asks for it only under a
// mode's built-in allowlist, which has the parent's few syscalls
// (rt_sigtimedwait, kill, wait4, write, exit_group). The parent is not dumpable, so the
// workload (same uid, no capability) can't ptrace it or read its memory;
// as the pid namespace's init it can't be killed from inside, and the
// signals it handles are forwarded back to the workload. What the workload
// can do is write the same words itself, or kill itself with SIGSYS:
// neither widens anything, the line is a diagnosis, never a permission.
static void reap(char **cmd, const char *mode, struct sock_fprog *prog, int self_fd)
{
	sigset_t all, old;
	sigfillset(&all);
	// Blocked before the fork, so that none is lost before the parent
	// waits for them; queued even for a pid namespace's init.
	if (sigprocmask(SIG_BLOCK, &all, &old) < 0)
		fail(126, "reap: sigprocmask: %s", strerror(errno));
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0)
		fail(126, "reap: fork: %s", strerror(errno));
	if (child == 0) {
		// The workload must not outlive its parent when the parent
		// is not the pid namespace's init (a pod's shared pid
		// namespace).
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(137);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (prog->filter)
			load_seccomp(prog);
		exec_workload(cmd);
	}
	if (self_fd > 2)
		close(self_fd);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		// stdin and stdout are the workload's; stderr stays for the
		// line below.
		dup2(devnull, 0);
		dup2(devnull, 1);
		close(devnull);
	}
	if (prog->filter)
		load_seccomp(prog);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			// What the kernel sends a terminal's foreground process
			// group (^C, a resize, a hangup) reached the workload
			// too, which shares the group: only a kill is passed on.
			if (si.si_code != SI_KERNEL)
				kill(child, sig);
			continue;
		}
		int status;
		pid_t p;
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != child)
				continue;
			if (WIFEXITED(status))
				_exit(WEXITSTATUS(status));
			int s = WTERMSIG(status);
			if (s == SIGSYS)
				dprintf(2, "nucleus: killed by seccomp (SIGSYS): a syscall not in the %s allowlist "
					   "(the host's kernel log names it: audit type=1326; see nucleus policy show)\n", mode);
			_exit(128 + s);
		}
	}
}

// reap_mode checks --reap's MODE: a mode's name, as the line shows it.
static const char *reap_mode(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-'))
			return NULL;
	return s;
}

static void report(int fd, char status)
{
	if (fd < 0)
		return;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	sigaction(SIGPIPE, &ign, &old);
	(void)!write(fd, &status, 1);
	sigaction(SIGPIPE, &old, NULL);
	close(fd);
}

static int parse_fd(const char *s)
{
	if (!*s)
		return -1;
	long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > PX_MAX_FD)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v > PX_MAX_FD ? -1 : (int)v;
}

// set_rlimit applies one --rlimit=RESOURCE:SOFT:HARD: in a user namespace
// host root did not create, host root can't prlimit the container's
// processes, so each sets its own here, before the workload runs. Raising
// a hard limit needs CAP_SYS_RESOURCE on the host, which this step lacks:
// that fails the start, as it should.
static void set_rlimit(const char *arg)
{
	unsigned long long v[3];
	const char *s = arg;
	for (int k = 0; k < 3; k++) {
		char *end;
		if (*s < '0' || *s > '9')
			fail(125, "landlock-exec: --rlimit=%s: want RESOURCE:SOFT:HARD", arg);
		errno = 0;
		v[k] = strtoull(s, &end, 10);
		if (errno || *end != (k < 2 ? ':' : '\0'))
			fail(125, "landlock-exec: --rlimit=%s: want RESOURCE:SOFT:HARD", arg);
		s = end + 1;
	}
	struct rlimit rl = {.rlim_cur = v[1], .rlim_max = v[2]};
	if (v[0] >= RLIM_NLIMITS)
		errno = EINVAL;
	if (v[0] >= RLIM_NLIMITS || setrlimit((int)v[0], &rl) != 0)
		fail(126, "rlimit %llu (soft %llu, hard %llu): %s", v[0], v[1], v[2], strerror(errno));
}

__attribute__((constructor)) static void nucleus_preexec(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc < 2 || strcmp(argv[1], "landlock-exec") != 0)
		return;
	int record_fd = -1, supervisor_fd = -1, dump_only = 0, i;
	const char *reaper = NULL;
	for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strncmp(argv[i], "--record-fd=", 12) == 0 && record_fd < 0 && (record_fd = parse_fd(argv[i] + 12)) >= 0)
			continue;
		if (strncmp(argv[i], "--supervisor-fd=", 16) == 0 && supervisor_fd < 0 &&
		    (supervisor_fd = parse_fd(argv[i] + 16)) >= 0) {
			// Never inherited by what the step execs.
			fcntl(supervisor_fd, F_SETFD, FD_CLOEXEC);
			continue;
		}
		if (strncmp(argv[i], "--reap=", 7) == 0 && !reaper) {
			if (!(reaper = reap_mode(argv[i] + 7)))
				fail(125, "landlock-exec: %s: want --reap=MODE", argv[i]);
			continue;
		}
		if (strncmp(argv[i], "--rlimit=", 9) == 0) {
			set_rlimit(argv[i] + 9);
			continue;
		}
		if (strcmp(argv[i], "--dump-record") == 0)
			dump_only = 1;
		else
			fail(125, "landlock-exec: unexpected argument %s", argv[i]);
	}
	if (record_fd < 0)
		fail(125, "landlock-exec: no --record-fd");
	size_t len;
	unsigned char *raw = read_all(record_fd, PX_MAX_RECORD, &len, "pre-exec record");
	close(record_fd);
	struct px_record rec;
	char err[512];
	if (px_decode(raw, len, &rec, err, sizeof(err)) < 0)
		fail(125, "landlock-exec: refusing the pre-exec record: %s", err);
	free(raw);
	if (dump_only) {
		dump(&rec);
		_exit(0);
	}
	if (i + 1 >= argc)
		fail(125, "landlock-exec: no command after --");
	char **cmd = &argv[i + 1];
	struct step st = {.rec = &rec};
	int strict = rec.flags & PX_FLAG_STRICT;

	struct sock_fprog prog = {0};
	if (rec.seccomp_fd >= 0)
		prog = read_seccomp(&st);

	const char *lerr = NULL;
	// Deferred only for a supervisor, whose children it confines.
	int defer = (rec.flags & PX_FLAG_DEFER_LANDLOCK) && (rec.flags & PX_FLAG_HOLD) && supervisor_fd >= 0;
	int abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */);
	if (abi < 0)
		abi = 0; // ENOSYS from a kernel or a seccomp filter: no Landlock
	if (abi < 1 || abi < (int)rec.min_abi) {
		snprintf(err, sizeof(err), "kernel Landlock ABI %d, need at least %u", abi, rec.min_abi < 1 ? 1 : rec.min_abi);
		lerr = err;
	} else if (defer) {
		// Applied per command (confine_child); nothing to do now.
	} else if (restrict_self(&st, abi, err, sizeof(err)) < 0) {
		lerr = err;
	}
	if (lerr && strict)
		st.degraded = 0; // the start fails below: no degraded posture to report
	else if (lerr)
		st.degraded = 1;
	struct buf b = {0};
	event(&b, &st, "landlock_applied");
	putf(&b, ",\"abi\":%d,\"applied\":%s,", abi, lerr ? "false" : "true");
	puts_(&b, rec.frag[PX_FRAG_RULES]);
	putf(&b, ",\"symlinks_not_granted_count\":%d,\"symlinks_not_granted\":[", st.nlinks);
	if (st.links.n)
		put(&b, st.links.p, st.links.n);
	puts_(&b, "]");
	putf(&b, ",\"signal_scope\":%s", st.signal_scope ? "true" : "false");
	if (defer && !lerr)
		puts_(&b, ",\"per_command\":true");
	if (!lerr && (rec.flags & PX_FLAG_SCOPE_SIGNALS) && !st.signal_scope)
		putf(&b, ",\"signal_scope_skipped\":\"kernel Landlock ABI %d, scoped signals need %d\"", abi, LL_SCOPE_ABI);
	if (lerr) {
		puts_(&b, ",\"error\":");
		put_json_str(&b, lerr);
	}
	emit(&b, &st);
	free(b.p);
	if (rec.audit_fd > 2)
		close(rec.audit_fd);
	if (lerr) {
		if (strict)
			fail(126, "landlock: %s (strict mode: refusing to run unconfined)", lerr);
		fprintf(stderr, "nucleus: warning: landlock not applied: %s\n", lerr);
	}
	report(rec.status_fd, st.degraded ? 'D' : 'A');
	if (rec.self_fd > 2)
		fcntl(rec.self_fd, F_SETFD, FD_CLOEXEC);
	if (reaper && !(rec.flags & PX_FLAG_HOLD))
		reap(cmd, reaper, &prog, rec.self_fd); // loads the filter in both processes
	// Last, so that nothing above runs under the workload's filter.
	if (rec.seccomp_fd >= 0) {
		load_seccomp(&prog);
		free(prog.filter);
	}
	if (rec.flags & PX_FLAG_HOLD) {
		if (strcmp(cmd[0], "nucleus-hold") != 0 || !cmd[1])
			fail(125, "landlock-exec: a held init takes nucleus-hold SECONDS");
		char *end;
		long ttl = strtol(cmd[1], &end, 10);
		if (*end || ttl < 0)
			fail(125, "landlock-exec: nucleus-hold %s: want seconds", cmd[1]);
		if (supervisor_fd >= 0) {
			int (*confine)(char *, size_t) = NULL;
			if (defer && !lerr) {
				child_rec = rec;
				child_rec.audit_fd = -1;
				child_rec.flags &= ~PX_FLAG_SCOPE_SIGNALS;
				child_abi = abi;
				confine = confine_child;
			}
			nucleus_supervise(supervisor_fd, ttl, confine);
		}
		hold(ttl);
	}
	exec_workload(cmd);
}
