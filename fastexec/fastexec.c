// The C fast path of `nucleus exec` into a supervised sandbox; see
// fastexec.go. Every failure before the command has started undoes what
// was done and returns, and the Go path runs the exec (reporting any
// error itself); after the start, the outcome is the command's.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

// The protocol of supervise/supervise.go (and preexec/supervise.h).
#define REQ_MAGIC 0x3153584eu
#define SIG_MAGIC 0x4753584eu
#define REP_MAGIC 0x5253584eu
#define MAX_REQUEST (128u << 10)
#define MAX_STRINGS 8192u
#define KIND_STARTED 1
#define KIND_EXITED 2
#define KIND_SIGNAL 3

#define DEFAULT_ROOT "/run/nucleus"
#define SANDBOX_PREFIX "@sandbox-"
#define DEFAULTS_NAME "exec-defaults"
#define DEFAULTS_MAGIC "NXD1"
#define MAX_ID 255
#define MAX_DEFAULTS (256u << 10)
// DRAIN_MS is supervise.Drain: how long the outputs are copied after the
// command has ended.
#define DRAIN_MS 1000

struct defaults {
	char *buf;
	uint32_t uid, gid, host_uid, host_gid;
	const char *cwd, *freezer;
	size_t envc;
	const char **env;
};

static int valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > MAX_ID || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '+' || *p == '-' || *p == '.'))
			return 0;
	return 1;
}

static int valid_env(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq && eq != kv;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	if (!*s || *s == '-')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

// read_file reads a small file whole, NUL-terminated; NULL when it can't.
static char *read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	char *buf = malloc(max + 1);
	size_t n = 0;
	while (buf && n < max) {
		ssize_t r = read(fd, buf + n, max - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			buf = NULL;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf && n == max) { // too large to be ours
		free(buf);
		return NULL;
	}
	if (buf) {
		buf[n] = 0;
		*len = n;
	}
	return buf;
}

// load_defaults parses the file supervise.WriteExecDefaults writes.
static int load_defaults(const char *path, struct defaults *d)
{
	size_t len;
	char *buf = read_file(path, MAX_DEFAULTS, &len);
	if (!buf)
		return -1;
	const char *f[8];
	size_t off = 0, i;
	for (i = 0; i < 8; i++) {
		char *end = memchr(buf + off, 0, len - off);
		if (off >= len || !end)
			goto bad;
		f[i] = buf + off;
		off = (size_t)(end - buf) + 1;
	}
	uint32_t envc;
	if (strcmp(f[0], DEFAULTS_MAGIC) != 0 || parse_u32(f[1], &d->uid) || parse_u32(f[2], &d->gid) ||
	    parse_u32(f[3], &d->host_uid) || parse_u32(f[4], &d->host_gid) || f[5][0] != '/' ||
	    parse_u32(f[7], &envc) || envc > MAX_STRINGS)
		goto bad;
	d->cwd = f[5], d->freezer = f[6], d->envc = envc;
	d->env = calloc(envc + 1, sizeof(char *));
	if (!d->env)
		goto bad;
	for (i = 0; i < envc; i++) {
		char *end = memchr(buf + off, 0, len - off);
		if (off >= len || !end)
			goto bad;
		d->env[i] = buf + off;
		off = (size_t)(end - buf) + 1;
	}
	if (off != len)
		goto bad;
	d->buf = buf;
	return 0;
bad:
	free(d->env);
	d->env = NULL;
	free(buf);
	return -1;
}

// frozen: a frozen supervisor can't answer; the Go path reports it.
static int frozen(const char *file)
{
	if (!*file)
		return 0;
	size_t len;
	char *s = read_file(file, 64, &len);
	if (!s)
		return 1;
	while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = 0;
	const char *base = strrchr(file, '/');
	int v2 = base && strcmp(base + 1, "cgroup.freeze") == 0;
	int r = v2 ? strcmp(s, "0") != 0 : strcmp(s, "THAWED") != 0;
	free(s);
	return r;
}

// merge_env is runtime.mergeEnv: a variable already set is replaced in
// place, a new one appended.
static const char **merge_env(const char **base, size_t n, char **set, size_t nset, size_t *out_n)
{
	const char **out = calloc(n + nset + 1, sizeof(char *));
	if (!out)
		return NULL;
	memcpy(out, base, n * sizeof(char *));
	for (size_t i = 0; i < nset; i++) {
		size_t klen = (size_t)(strchr(set[i], '=') - set[i]), j;
		for (j = 0; j < n; j++)
			if (strncmp(out[j], set[i], klen) == 0 && out[j][klen] == '=')
				break;
		out[j] = set[i];
		if (j == n)
			n++;
	}
	*out_n = n;
	return out;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff, p[1] = (v >> 8) & 0xff, p[2] = (v >> 16) & 0xff, p[3] = v >> 24;
}

static uint32_t get32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// encode is supervise.Request.Encode.
static unsigned char *encode(const struct defaults *d, const char *cwd, char **argv, size_t argc, const char **env,
			     size_t envc, size_t *len)
{
	if (argc > MAX_STRINGS || envc > MAX_STRINGS)
		return NULL;
	size_t n = 28 + strlen(cwd) + 1, i;
	for (i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	for (i = 0; i < envc; i++)
		n += strlen(env[i]) + 1;
	if (n > MAX_REQUEST)
		return NULL;
	unsigned char *b = malloc(n), *p = b + 28;
	if (!b)
		return NULL;
	uint32_t hdr[7] = {REQ_MAGIC, (uint32_t)n, (uint32_t)argc, (uint32_t)envc, d->uid, d->gid, 0};
	for (i = 0; i < 7; i++)
		put32(b + 4 * i, hdr[i]);
	size_t l = strlen(cwd) + 1;
	memcpy(p, cwd, l), p += l;
	for (i = 0; i < argc; i++)
		l = strlen(argv[i]) + 1, memcpy(p, argv[i], l), p += l;
	for (i = 0; i < envc; i++)
		l = strlen(env[i]) + 1, memcpy(p, env[i], l), p += l;
	*len = n;
	return b;
}

static int is_dev_null(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

// The stdio of the command: /dev/null as it is, else a pipe owned by the
// sandbox's user (so that it can reopen /dev/stdout) that we copy.
struct stdio {
	int child[3], ours[3]; // ours: stdin's write end, the outputs' read ends
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int make_stdio(struct stdio *s, uint32_t uid, uint32_t gid, int stdin_null)
{
	for (int i = 0; i < 3; i++)
		s->child[i] = s->ours[i] = -1;
	for (int i = 0; i < 3; i++) {
		struct stat st;
		if (fstat(i, &st) != 0)
			return -1; // a closed stdio: the Go path decides
		if (is_dev_null(i) || (i == 0 && stdin_null)) {
			if ((s->child[i] = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC)) < 0)
				return -1;
			continue;
		}
		int p[2];
		if (pipe2(p, O_CLOEXEC) != 0)
			return -1;
		if (fchown(p[0], uid, gid) != 0 || fchown(p[1], uid, gid) != 0) {
			close(p[0]), close(p[1]);
			return -1;
		}
		s->child[i] = i == 0 ? p[0] : p[1];
		s->ours[i] = i == 0 ? p[1] : p[0];
	}
	return 0;
}

static void close_stdio(struct stdio *s)
{
	for (int i = 0; i < 3; i++)
		close_fd(&s->child[i]), close_fd(&s->ours[i]);
}

static int sig_pipe[2] = {-1, -1};
static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT};
#define NFORWARDED (sizeof(forwarded) / sizeof(forwarded[0]))
static struct sigaction saved[NFORWARDED], saved_pipe;

static void on_signal(int sig)
{
	int e = errno;
	unsigned char b = (unsigned char)sig;
	if (write(sig_pipe[1], &b, 1) < 0) {
		// full: the signal is dropped, as an overflowing channel would
	}
	errno = e;
}

static int catch_signals(void)
{
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NFORWARDED; i++)
		sigaction(forwarded[i], &sa, &saved[i]);
	struct sigaction ign = {0};
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &saved_pipe);
	return 0;
}

// release_signals hands the signals back as Go's runtime will expect to
// find them, and raises again what came meanwhile (the Go path would have
// been told of it).
static void release_signals(void)
{
	for (size_t i = 0; i < NFORWARDED; i++)
		sigaction(forwarded[i], &saved[i], NULL);
	sigaction(SIGPIPE, &saved_pipe, NULL);
	unsigned char sig;
	while (sig_pipe[0] >= 0 && read(sig_pipe[0], &sig, 1) == 1)
		raise(sig);
	close_fd(&sig_pipe[0]), close_fd(&sig_pipe[1]);
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w, n -= (size_t)w;
	}
	return 0;
}

static void *copy_stdin(void *arg)
{
	int out = *(int *)arg;
	char buf[32 << 10];
	for (;;) {
		ssize_t r = read(0, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || write_all(out, buf, (size_t)r) != 0)
			break;
	}
	close(out);
	return NULL;
}

static int read_reply(int conn, int32_t *kind, int32_t *val)
{
	unsigned char b[12];
	ssize_t n;
	do
		n = recv(conn, b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(b) || get32(b) != REP_MAGIC)
		return -1;
	*kind = (int32_t)get32(b + 4), *val = (int32_t)get32(b + 8);
	return 0;
}

// serve copies the outputs and forwards signals until the command has
// ended and its outputs are closed, and returns its status.
static int serve(int conn, struct stdio *s)
{
	static int stdin_fd;
	if (s->ours[0] >= 0) {
		pthread_t t;
		stdin_fd = s->ours[0];
		s->ours[0] = -1;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &a, copy_stdin, &stdin_fd) != 0)
			close(stdin_fd); // the command reads EOF
	}
	int status = -1, conn_open = 1;
	const char *lost = NULL;
	char buf[32 << 10];
	struct timespec ended = {0};
	for (;;) {
		int outs_open = (s->ours[1] >= 0) + (s->ours[2] >= 0);
		if (!conn_open && !outs_open)
			break;
		// Once the command has ended, what it left running (holding
		// its stdout) gets DRAIN_MS to finish writing: the client must
		// not wait on a process the caller did not ask to wait for.
		int timeout = -1;
		if (!conn_open) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long spent = (now.tv_sec - ended.tv_sec) * 1000 + (now.tv_nsec - ended.tv_nsec) / 1000000;
			if (spent >= DRAIN_MS)
				break;
			timeout = (int)(DRAIN_MS - spent);
		}
		struct pollfd p[4] = {{sig_pipe[0], POLLIN, 0}, {conn_open ? conn : -1, POLLIN, 0},
				      {s->ours[1], POLLIN, 0}, {s->ours[2], POLLIN, 0}};
		int n = poll(p, 4, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (p[0].revents & POLLIN) {
			unsigned char sig;
			int stop = 0;
			while (read(sig_pipe[0], &sig, 1) == 1) {
				if (!conn_open) {
					stop |= sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT;
					continue;
				}
				unsigned char m[8];
				put32(m, SIG_MAGIC), put32(m + 4, sig);
				send(conn, m, sizeof(m), MSG_NOSIGNAL);
			}
			if (stop)
				break; // the command is gone: asked to stop, the client does
		}
		if (conn_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			int32_t kind = 0, val = 0;
			if (read_reply(conn, &kind, &val) != 0)
				kind = 0;
			if (kind == KIND_EXITED)
				status = val;
			else if (kind == KIND_SIGNAL)
				status = 128 + val;
			else
				lost = "supervisor ended before the command (the sandbox was stopped)";
			close(conn);
			conn_open = 0;
			clock_gettime(CLOCK_MONOTONIC, &ended);
		}
		for (int i = 1; i <= 2; i++) {
			if (s->ours[i] < 0 || !(p[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t r = read(s->ours[i], buf, sizeof(buf));
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0 || write_all(i, buf, (size_t)r) != 0)
				close_fd(&s->ours[i]); // as io.Copy, the copy ends
		}
	}
	if (status < 0) {
		char msg[160];
		int n = snprintf(msg, sizeof(msg), "nucleus: exec failed: %s\n", lost ? lost : "lost the supervisor");
		write_all(2, msg, (size_t)n);
		return 255;
	}
	return status;
}

#define NOT_STARTED (-2)

// run_supervised runs cmd through the supervisor of the sandbox whose
// state dir is dir, and returns its status; NOT_STARTED when nothing ran
// (no exec defaults, a paused sandbox, no supervisor...), everything
// undone.
static int run_supervised(const char *dir, const char *cwd, char **cmd, size_t cmdc, char **env, size_t nenv,
			  int stdin_null)
{
	char path[4096];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if ((size_t)snprintf(path, sizeof(path), "%s/" DEFAULTS_NAME, dir) >= sizeof(path) ||
	    (size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/supervisor.sock", dir) >= sizeof(addr.sun_path))
		return NOT_STARTED;
	struct defaults d = {0};
	if (load_defaults(path, &d) != 0)
		return NOT_STARTED;
	int status = NOT_STARTED, conn = -1;
	size_t envc, reqlen;
	const char **merged = merge_env(d.env, d.envc, env, nenv, &envc);
	unsigned char *req = merged ? encode(&d, cwd ? cwd : d.cwd, cmd, cmdc, merged, envc, &reqlen) : NULL;
	struct stdio s;
	if (!req || frozen(d.freezer) || catch_signals() != 0)
		goto undo;
	if (make_stdio(&s, d.host_uid, d.host_gid, stdin_null) != 0)
		goto undo_stdio;
	conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (conn < 0 || connect(conn, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		goto undo_stdio;
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {req, reqlen};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET, c->cmsg_type = SCM_RIGHTS, c->cmsg_len = CMSG_LEN(3 * sizeof(int));
	memcpy(CMSG_DATA(c), s.child, 3 * sizeof(int));
	ssize_t sent;
	do
		sent = sendmsg(conn, &msg, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	int32_t kind, val;
	if (sent != (ssize_t)reqlen || read_reply(conn, &kind, &val) != 0 || kind != KIND_STARTED)
		goto undo_stdio; // nothing started: the Go path tries again and reports
	for (int k = 0; k < 3; k++)
		close_fd(&s.child[k]);
	status = serve(conn, &s);
	conn = -1; // serve closed it
undo_stdio:
	if (conn >= 0)
		close(conn);
	close_stdio(&s);
	release_signals();
undo:
	free(req);
	free(merged);
	free(d.env);
	free(d.buf);
	return status;
}

// fast_exec is `nucleus exec [-e K=V]... [--cwd DIR] ID CMD...`, args
// being what follows `exec`; it returns only to leave the exec to Go.
static void fast_exec(const char *root, int argc, char **argv)
{
	char **env = calloc((size_t)argc + 1, sizeof(char *)), *cwd = NULL;
	size_t nenv = 0;
	int i;
	if (!env)
		return;
	for (i = 0; i < argc && argv[i][0] == '-'; i++) {
		char *v = NULL;
		int is_env = 0;
		if ((strcmp(argv[i], "-e") == 0 || strcmp(argv[i], "--env") == 0) && i + 1 < argc)
			v = argv[++i], is_env = 1;
		else if (strncmp(argv[i], "--env=", 6) == 0)
			v = argv[i] + 6, is_env = 1;
		else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--cwd=", 6) == 0)
			v = argv[i] + 6;
		else
			goto out; // -t, -u, -d...
		if (is_env ? !valid_env(v) : v[0] != '/')
			goto out;
		if (is_env)
			env[nenv++] = v;
		else
			cwd = v;
	}
	if (argc - i < 2 || !valid_id(argv[i]) || !argv[i + 1][0])
		goto out;
	char dir[4096];
	if ((size_t)snprintf(dir, sizeof(dir), "%s/" SANDBOX_PREFIX "%s", root, argv[i]) >= sizeof(dir))
		goto out;
	int status = run_supervised(dir, cwd, argv + i + 1, (size_t)(argc - i - 1), env, nenv, 0);
	if (status != NOT_STARTED)
		_exit(status);
out:
	free(env);
}

// valid_pool is pool.validName: 1-48 letters, digits, '_', '-' or '.',
// starting with a letter or digit.
static int valid_pool(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 48 || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
				  (name[0] >= '0' && name[0] <= '9')))
		return 0;
	return valid_id(name);
}

// spawn_release starts `nucleus nucleus-pool ROOT release POOL ID` (what
// pool.Release spawns: pool.Command, pool.Main) in a session of its own with
// no stdio, not waited for.
static void spawn_release(const char *root, const char *pool, const char *id)
{
	pid_t pid = fork();
	if (pid != 0)
		return; // a failed fork leaves the member to the next fill's sweep
	setsid();
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0), dup2(null, 1), dup2(null, 2);
		if (null > 2)
			close(null);
	}
	char *args[] = {"nucleus", "nucleus-pool", (char *)root, "release", (char *)pool, (char *)id, NULL};
	execv("/proc/self/exe", args);
	_exit(127);
}

// take is pool.Take: rename one ready member into taken/ (exactly one
// caller wins each) and leave our pid there. 0 and the id in id, or -1.
static int take(const char pooldir[static 1], const char *root, char *id, size_t idlen)
{
	char path[4096], dst[4096];
	snprintf(path, sizeof(path), "%s/ready", pooldir);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	int got = -1;
	while (got < 0 && (e = readdir(d))) {
		if (!valid_id(e->d_name) || strlen(e->d_name) >= idlen)
			continue;
		snprintf(path, sizeof(path), "%s/ready/%s", pooldir, e->d_name);
		snprintf(dst, sizeof(dst), "%s/taken/%s", pooldir, e->d_name);
		if (rename(path, dst) != 0)
			continue; // another caller took it
		int fd = open(dst, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			char pid[24];
			int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
			write_all(fd, pid, (size_t)n);
			close(fd);
		}
		struct stat st;
		snprintf(path, sizeof(path), "%s/" SANDBOX_PREFIX "%s/sandbox.json", root, e->d_name);
		if (lstat(path, &st) != 0) { // removed behind the pool's back
			unlink(dst);
			continue;
		}
		strcpy(id, e->d_name);
		got = 0;
	}
	closedir(d);
	return got;
}

// fast_pool is `nucleus sandbox --pool NAME [-e K=V]... [--cwd DIR] --
// CMD...`, args being what follows `sandbox`: a warm member runs the
// command, a detached release destroys it and refills the pool. It returns
// only to leave everything else (an empty pool, a workspace, --json...)
// to Go.
static void fast_pool(const char *root, int argc, char **argv)
{
	char **env = calloc((size_t)argc + 1, sizeof(char *)), *cwd = NULL, *pool = NULL;
	size_t nenv = 0;
	int i;
	if (!env)
		return;
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		char *v = NULL;
		int kind = 0; // 1 env, 2 cwd, 3 pool
		if ((strcmp(argv[i], "-e") == 0 || strcmp(argv[i], "--env") == 0) && i + 1 < argc)
			v = argv[++i], kind = 1;
		else if (strncmp(argv[i], "--env=", 6) == 0)
			v = argv[i] + 6, kind = 1;
		else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc)
			v = argv[++i], kind = 2;
		else if (strncmp(argv[i], "--cwd=", 6) == 0)
			v = argv[i] + 6, kind = 2;
		else if (strcmp(argv[i], "--pool") == 0 && i + 1 < argc && !pool)
			v = argv[++i], kind = 3;
		else if (strncmp(argv[i], "--pool=", 7) == 0 && !pool)
			v = argv[i] + 7, kind = 3;
		else
			goto out; // --workspace, --json, -i...
		if ((kind == 1 && !valid_env(v)) || (kind == 2 && v[0] != '/') || (kind == 3 && !valid_pool(v)))
			goto out;
		if (kind == 1)
			env[nenv++] = v;
		else if (kind == 2)
			cwd = v;
		else
			pool = v;
	}
	if (!pool || i + 1 >= argc || !argv[i + 1][0])
		goto out;
	char **cmd = argv + i + 1;
	size_t cmdc = (size_t)(argc - i - 1);
	char pooldir[3072], dir[4096], id[MAX_ID + 1];
	struct stat st;
	if ((size_t)snprintf(pooldir, sizeof(pooldir), "%s/@pool-%s", root, pool) >= sizeof(pooldir))
		goto out;
	snprintf(dir, sizeof(dir), "%s/pool.json", pooldir);
	if (stat(dir, &st) != 0)
		goto out;
	// A member whose supervisor is gone never ran the command: released,
	// and another taken, as the Go path does.
	for (int tries = 0; tries < 4 && take(pooldir, root, id, sizeof(id)) == 0; tries++) {
		snprintf(dir, sizeof(dir), "%s/" SANDBOX_PREFIX "%s", root, id);
		int status = run_supervised(dir, cwd, cmd, cmdc, env, nenv, 1);
		spawn_release(root, pool, id);
		if (status != NOT_STARTED)
			_exit(status);
	}
out:
	free(env);
}

// rlimit_exec is `nucleus rlimit-exec --as=SOFT:HARD -- CMD...`
// (native.RlimitExecCommand): a container's process, started by the init
// through this sealed binary so that its RLIMIT_AS is set only once the Go
// init (which holds ~1.5 GB of address space) is gone. It never returns.
static void rlimit_exec(int argc, char **argv)
{
	unsigned long long soft, hard;
	char end;
	if (argc < 4 || sscanf(argv[2], "--as=%llu:%llu%c", &soft, &hard, &end) != 2 || strcmp(argv[3], "--") != 0) {
		fprintf(stderr, "nucleus: rlimit-exec: want --as=SOFT:HARD -- CMD...\n");
		_exit(125);
	}
	struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
	if (setrlimit(RLIMIT_AS, &rl) != 0) {
		fprintf(stderr, "nucleus: process.rlimits: RLIMIT_AS %llu:%llu: %s\n", soft, hard, strerror(errno));
		_exit(125);
	}
	execvp(argv[4], argv + 4);
	int e = errno;
	fprintf(stderr, "nucleus: exec %s: %s\n", argv[4], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

__attribute__((constructor)) static void nucleus_fast_exec(int argc, char **argv, char **envp)
{
	if (argc > 1 && strcmp(argv[1], "rlimit-exec") == 0)
		rlimit_exec(argc, argv);
	(void)envp;
	const char *fast = getenv("NUCLEUS_EXEC_FAST"), *otel = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	if ((fast && strcmp(fast, "0") == 0) || (otel && *otel))
		return;
	const char *root = DEFAULT_ROOT;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			root = argv[++i];
		else if (strncmp(argv[i], "--root=", 7) == 0)
			root = argv[i] + 7;
		else
			return; // --log, --debug...: the Go path
	}
	if (i < argc && strcmp(argv[i], "exec") == 0)
		fast_exec(root, argc - i - 1, argv + i + 1);
	else if (i < argc && strcmp(argv[i], "sandbox") == 0)
		fast_pool(root, argc - i - 1, argv + i + 1);
}
