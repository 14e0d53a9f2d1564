// The Landlock pre-exec step, in C so that it runs from an ELF constructor
// before the Go runtime starts: the step sits on every sandbox's start path
// and booting a Go runtime only to make a few syscalls and exec costs ~2 ms.
//
// Invoked by the runtime as
//   /proc/self/fd/N landlock-exec [--min-abi=K] [--strict] --self-fd=N
//       --audit-fd=M [--seccomp-fd=S] --id=ID --posture=P [--read=PATH]...
//       [--write=PATH]... [--dev=PATH]... [--exec=PATH]... [--no-exec-root=PATH]...
//       -- ARGV...
// it restricts itself, writes a landlock_applied audit line to fd M, loads
// the seccomp BPF program in fd S (when given), and execs ARGV in place,
// so the container's init pid stays the workload's.
// Every top-level entry of / except the --no-exec-root ones gets read and
// execute; --read gets read, --write read and write, --dev also device
// ioctls, --exec read and execute. A failure is fatal with --strict and a
// warning otherwise. It never returns to Go.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
#define LL_TRUNCATE (1ULL << 14)
#define LL_IOCTL_DEV (1ULL << 15)

#define LL_READ (LL_READ_FILE | LL_READ_DIR)
#define LL_WRITE (LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_DIR | LL_MAKE_REG | \
		  LL_MAKE_SYM | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_TRUNCATE)
#define LL_FILE_RIGHTS (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
};

struct ll_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

#define MAX_PATHS 64

struct paths {
	const char *p[MAX_PATHS];
	int n;
};

static void add_path(struct paths *ps, const char *p)
{
	if (ps->n < MAX_PATHS)
		ps->p[ps->n++] = p;
}

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

// Rights Nucleus handles (and so denies unless granted), by ABI: all of
// ABI 1 but Refer (cross-directory renames stay as without Landlock),
// Truncate from ABI 3, device ioctls from ABI 5.
static uint64_t handled_rights(int abi)
{
	uint64_t h = LL_EXECUTE | LL_READ | LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_CHAR |
		     LL_MAKE_DIR | LL_MAKE_REG | LL_MAKE_SOCK | LL_MAKE_FIFO | LL_MAKE_BLOCK | LL_MAKE_SYM;
	if (abi >= 3)
		h |= LL_TRUNCATE;
	if (abi >= 5)
		h |= LL_IOCTL_DEV;
	return h;
}

// add_rule grants rights beneath path; a missing path is skipped.
static int add_rule(int ruleset, const char *path, uint64_t rights, uint64_t handled, char *err, size_t errlen)
{
	struct ll_path_beneath_attr attr;
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	attr.allowed_access = rights & handled;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		attr.allowed_access &= LL_FILE_RIGHTS;
	attr.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ruleset, 1 /* LANDLOCK_RULE_PATH_BENEATH */, &attr, 0) < 0) {
		snprintf(err, errlen, "landlock_add_rule %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int listed(const struct paths *ps, const char *p)
{
	for (int i = 0; i < ps->n; i++)
		if (strcmp(ps->p[i], p) == 0)
			return 1;
	return 0;
}

static int restrict_self(int abi, const struct paths *rd, const struct paths *wr, const struct paths *dev,
			 const struct paths *ex, const struct paths *noexec, char *err, size_t errlen)
{
	uint64_t handled = handled_rights(abi);
	struct ll_ruleset_attr attr = {.handled_access_fs = handled};
	int rs = syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0) {
		snprintf(err, errlen, "landlock_create_ruleset: %s", strerror(errno));
		return -1;
	}
	int ret = -1;
	for (int i = 0; i < rd->n; i++)
		if (add_rule(rs, rd->p[i], LL_READ, handled, err, errlen) < 0)
			goto out;
	DIR *d = opendir("/");
	if (!d) {
		snprintf(err, errlen, "list /: %s", strerror(errno));
		goto out;
	}
	struct dirent *e;
	char path[512];
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "/%s", e->d_name);
		if (listed(noexec, path))
			continue;
		if (add_rule(rs, path, LL_READ | LL_EXECUTE, handled, err, errlen) < 0) {
			closedir(d);
			goto out;
		}
	}
	closedir(d);
	for (int i = 0; i < ex->n; i++)
		if (add_rule(rs, ex->p[i], LL_READ | LL_EXECUTE, handled, err, errlen) < 0)
			goto out;
	for (int i = 0; i < wr->n; i++)
		if (add_rule(rs, wr->p[i], LL_READ | LL_WRITE, handled, err, errlen) < 0)
			goto out;
	for (int i = 0; i < dev->n; i++)
		if (add_rule(rs, dev->p[i], LL_READ | LL_WRITE | LL_IOCTL_DEV, handled, err, errlen) < 0)
			goto out;
	// libcontainer sets no_new_privs already in every mode that plans
	// Landlock; setting it again costs nothing and keeps this step sound.
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		goto out;
	}
	if (syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
		snprintf(err, errlen, "landlock_restrict_self: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(rs);
	return ret;
}

// json_paths writes a JSON array of paths (escaping quotes, backslashes
// and control characters).
static void json_paths(FILE *f, const struct paths *ps)
{
	fputc('[', f);
	for (int i = 0; i < ps->n; i++) {
		fputs(i ? ",\"" : "\"", f);
		for (const unsigned char *c = (const unsigned char *)ps->p[i]; *c; c++) {
			if (*c == '"' || *c == '\\')
				fprintf(f, "\\%c", *c);
			else if (*c < 0x20)
				fprintf(f, "\\u%04x", *c);
			else
				fputc(*c, f);
		}
		fputc('"', f);
	}
	fputc(']', f);
}

static void audit(int fd, const char *id, const char *posture, int abi, const char *err, const struct paths *rd,
		  const struct paths *wr, const struct paths *ex, const struct paths *noexec)
{
	char buf[8192], ts[64];
	struct timespec now;
	struct tm tm;
	FILE *f = fmemopen(buf, sizeof(buf), "w");
	if (!f)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "{\"time\":\"%s.%09ldZ\",\"event\":\"landlock_applied\",\"id\":\"%s\",\"posture\":\"%s\",\"abi\":%d,\"applied\":%s",
		ts, now.tv_nsec, id, posture, abi, err ? "false" : "true");
	fputs(",\"rules\":{\"read\":", f);
	json_paths(f, rd);
	fputs(",\"write\":", f);
	json_paths(f, wr);
	fputs(",\"exec\":", f);
	json_paths(f, ex);
	fputs(",\"exec_root_except\":", f);
	json_paths(f, noexec);
	fputc('}', f);
	if (err)
		fprintf(f, ",\"error\":\"%s\"", err);
	fputs("}\n", f);
	fflush(f);
	long n = ftell(f);
	fclose(f);
	if (n > 0 && n < (long)sizeof(buf))
		(void)!write(fd, buf, n);
}

// load_seccomp installs the classic-BPF program read from fd (compiled
// and cached by the runtime). Failing here is always fatal: the runtime
// moved the filter out of libcontainer's hands on the promise that this
// step applies it.
static void load_seccomp(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0 ||
	    st.st_size > 4096 * (off_t)sizeof(struct sock_filter))
		fail(126, "seccomp: fd %d holds no BPF program", fd);
	struct sock_filter *insns = malloc(st.st_size);
	if (!insns)
		fail(126, "seccomp: out of memory");
	ssize_t got = 0;
	while (got < st.st_size) {
		ssize_t n = pread(fd, (char *)insns + got, st.st_size - got, got);
		if (n <= 0)
			fail(126, "seccomp: read program: %s", n < 0 ? strerror(errno) : "short read");
		got += n;
	}
	close(fd);
	struct sock_fprog prog = {.len = (unsigned short)(st.st_size / sizeof(struct sock_filter)), .filter = insns};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(126, "seccomp: no_new_privs: %s", strerror(errno));
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		fail(126, "seccomp: load filter: %s", strerror(errno));
	free(insns);
}

static const char *flag(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return strncmp(arg, name, n) == 0 ? arg + n : NULL;
}

__attribute__((constructor)) static void nucleus_landlock_exec(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc < 2 || strcmp(argv[1], "landlock-exec") != 0)
		return;
	struct paths rd = {0}, wr = {0}, dev = {0}, ex = {0}, noexec = {0};
	int min_abi = 1, strict = 0, self_fd = -1, audit_fd = -1, seccomp_fd = -1, i;
	const char *id = "", *posture = "", *v;
	for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *a = argv[i];
		if ((v = flag(a, "--read=")))
			add_path(&rd, v);
		else if ((v = flag(a, "--write=")))
			add_path(&wr, v);
		else if ((v = flag(a, "--dev=")))
			add_path(&dev, v);
		else if ((v = flag(a, "--exec=")))
			add_path(&ex, v);
		else if ((v = flag(a, "--no-exec-root=")))
			add_path(&noexec, v);
		else if ((v = flag(a, "--min-abi=")))
			min_abi = atoi(v);
		else if ((v = flag(a, "--self-fd=")))
			self_fd = atoi(v);
		else if ((v = flag(a, "--audit-fd=")))
			audit_fd = atoi(v);
		else if ((v = flag(a, "--seccomp-fd=")))
			seccomp_fd = atoi(v);
		else if ((v = flag(a, "--id=")))
			id = v;
		else if ((v = flag(a, "--posture=")))
			posture = v;
		else if (strcmp(a, "--strict") == 0)
			strict = 1;
		else
			fail(125, "landlock-exec: unknown argument %s", a);
	}
	if (i + 1 >= argc)
		fail(125, "landlock-exec: no command after --");
	char **cmd = &argv[i + 1];

	char errbuf[512];
	const char *err = NULL;
	int abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */);
	if (abi < 0)
		abi = 0; // ENOSYS from a kernel or a seccomp filter: no Landlock
	if (abi < 1 || abi < min_abi) {
		snprintf(errbuf, sizeof(errbuf), "kernel Landlock ABI %d, need at least %d", abi, min_abi < 1 ? 1 : min_abi);
		err = errbuf;
	} else if (restrict_self(abi, &rd, &wr, &dev, &ex, &noexec, errbuf, sizeof(errbuf)) < 0) {
		err = errbuf;
	}
	if (audit_fd > 2) {
		audit(audit_fd, id, posture, abi, err, &rd, &wr, &ex, &noexec);
		close(audit_fd);
	}
	if (err) {
		if (strict)
			fail(126, "landlock: %s (strict mode: refusing to run unconfined)", err);
		fprintf(stderr, "nucleus: warning: landlock not applied: %s\n", err);
	}
	if (self_fd > 2)
		fcntl(self_fd, F_SETFD, FD_CLOEXEC);
	// Last, so that nothing above runs under the workload's filter.
	if (seccomp_fd > 2)
		load_seccomp(seccomp_fd);
	execvp(cmd[0], cmd);
	int e = errno;
	if (e == ENOENT)
		fail(127, "exec %s: not found in the container", cmd[0]);
	if (e == EACCES)
		fail(126, "exec %s: permission denied (Landlock or the mount allows no execution there)", cmd[0]);
	fail(126, "exec %s: %s", cmd[0], strerror(e));
}
