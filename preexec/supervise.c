// The supervisor: a held sandbox's pid 1 (preexec.c's hold, given a
// listening socket), still in C and still without a Go runtime. It reaps
// every orphan, ends the sandbox on SIGTERM, SIGINT or SIGHUP or at its
// TTL, and serves `nucleus exec` on a SOCK_SEQPACKET socket that the host
// bound in the sandbox's state dir (root-only, outside the container) and
// passed in as a descriptor: each request (supervise.h) names a command,
// its environment, working directory and ids and carries its three stdio
// descriptors; the supervisor forks, and the child, which inherits pid 1's
// whole confinement (namespaces, cgroup, Landlock domain, seccomp filter,
// rlimits, no_new_privs, empty capability sets), execs it; in a warm
// pool's member (PX_FLAG_DEFER_LANDLOCK) pid 1 has no Landlock domain and
// the child makes its own from the record just before the exec, so that a
// workspace bound over /workspace since the start is the one the rules
// name (Landlock ignores a rule on a mount point a later mount hides).
// The client hears "started", then the exit status or the signal; a
// signal message on the same connection is forwarded to the command.
//
// What pid 1 holds must never reach the commands: every descriptor of its
// own is close-on-exec, and it is not dumpable, so a command running as
// the same user in the same user namespace can neither ptrace it, nor
// pidfd_getfd its socket, nor open /proc/1/fd, /proc/1/mem or
// /proc/1/environ (ptrace access to a non-dumpable process needs
// CAP_SYS_PTRACE, which nothing in the sandbox has). A connection from a
// process inside the sandbox's pid namespace (it can't reach the socket's
// path, but could be handed a connected descriptor) is refused: requests
// come only from outside, where SO_PEERCRED's pid reads 0.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

// From nucleus_supervise: run in each command's child before its exec
// (NULL: the init's own Landlock domain is the commands').
static int (*child_confine)(char *err, size_t errlen);

int sv_parse(unsigned char *buf, size_t len, struct sv_req *req, char *err, size_t errlen)
{
	struct sv_hdr h;
	memset(req, 0, sizeof(*req));
	if (len < sizeof(h)) {
		snprintf(err, errlen, "request of %zu bytes is shorter than its header", len);
		return -1;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != SV_REQ_MAGIC) {
		snprintf(err, errlen, "not a request (magic %08x)", h.magic);
		return -1;
	}
	if (h.len != len || len > SV_MAX_REQ) {
		snprintf(err, errlen, "request says %u bytes, has %zu (at most %u)", h.len, len, SV_MAX_REQ);
		return -1;
	}
	if (h.flags != 0) {
		snprintf(err, errlen, "unknown flags %x", h.flags);
		return -1;
	}
	if (h.argc < 1 || h.argc > SV_MAX_STRINGS || h.envc > SV_MAX_STRINGS) {
		snprintf(err, errlen, "%u arguments and %u variables: want 1 to %u of each", h.argc, h.envc, SV_MAX_STRINGS);
		return -1;
	}
	size_t want = 1 + (size_t)h.argc + h.envc, n = 0;
	char **v = calloc(h.argc + 1 + h.envc + 1, sizeof(char *));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *cwd = NULL;
	size_t off = sizeof(h);
	while (off < len) {
		unsigned char *end = memchr(buf + off, 0, len - off);
		if (!end || n == want) {
			snprintf(err, errlen, end ? "more strings than announced" : "string %zu is not terminated", n);
			free(v);
			return -1;
		}
		char *s = (char *)buf + off;
		if (n == 0)
			cwd = s;
		else if (n <= h.argc)
			v[n - 1] = s;
		else
			v[n] = s; // env: after argv's NULL at index argc
		n++;
		off = (size_t)(end - buf) + 1;
	}
	if (n != want) {
		snprintf(err, errlen, "%zu strings, want %zu", n, want);
		free(v);
		return -1;
	}
	if (cwd[0] != '/') {
		snprintf(err, errlen, "working directory %.64s is not absolute", cwd);
		free(v);
		return -1;
	}
	if (!v[0][0]) {
		snprintf(err, errlen, "empty command");
		free(v);
		return -1;
	}
	for (uint32_t i = 0; i < h.envc; i++) {
		const char *e = v[h.argc + 1 + i];
		if (e[0] == '=' || !strchr(e, '=')) {
			snprintf(err, errlen, "environment entry %u is not KEY=VALUE", i);
			free(v);
			return -1;
		}
	}
	req->uid = h.uid, req->gid = h.gid, req->cwd = cwd;
	req->argv = v;
	req->envp = v + h.argc + 1;
	return 0;
}

void sv_free(struct sv_req *req)
{
	free(req->argv);
	req->argv = req->envp = NULL;
}

#define SV_MAX_CONNS 128

struct conn {
	int fd;
	pid_t child; // 0: waiting for its request
};

static struct conn conns[SV_MAX_CONNS];
static int nconns;
static volatile sig_atomic_t got_chld, got_end;

static void on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_chld = 1;
	else
		got_end = 1;
}

static void reply(int fd, int32_t kind, int32_t value)
{
	int32_t m[3] = {(int32_t)SV_REP_MAGIC, kind, value};
	// Never blocks nor raises SIGPIPE: a client that went away must not
	// stall or end the sandbox.
	(void)!send(fd, m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void drop(int i)
{
	close(conns[i].fd);
	conns[i] = conns[--nconns];
}

// child_exec runs in the forked child: the request's stdio, signals back
// to their defaults, its directory and environment, then exec. A failure
// is told on the command's own stderr, with the pre-exec step's codes.
static void child_exec(const struct sv_req *req, const int *fds)
{
	sigset_t none;
	sigemptyset(&none);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int i = 0; i < SV_NFDS; i++)
		if (dup2(fds[i], i) < 0)
			_exit(126);
	char err[512];
	if (child_confine && child_confine(err, sizeof(err)) < 0) {
		dprintf(2, "nucleus: exec: landlock: %s (refusing to run unconfined)\n", err);
		_exit(126);
	}
	if (chdir(req->cwd) < 0) {
		dprintf(2, "nucleus: exec: working directory %s: %s\n", req->cwd, strerror(errno));
		_exit(126);
	}
	extern char **environ;
	environ = req->envp;
	execvp(req->argv[0], req->argv);
	int e = errno;
	if (e == ENOENT) {
		dprintf(2, "nucleus: exec %s: not found in the container\n", req->argv[0]);
		_exit(127);
	}
	if (e == EACCES)
		dprintf(2, "nucleus: exec %s: permission denied (Landlock or the mount allows no execution there)\n", req->argv[0]);
	else
		dprintf(2, "nucleus: exec %s: %s\n", req->argv[0], strerror(e));
	_exit(126);
}

// take_request reads one request from connection i and starts it; on
// anything wrong the client hears why (an errno) and is dropped.
static void take_request(int i)
{
	int fd = conns[i].fd;
	unsigned char *buf = malloc(SV_MAX_REQ + 1);
	if (!buf) {
		reply(fd, SV_ERROR, ENOMEM);
		drop(i);
		return;
	}
	union {
		char b[CMSG_SPACE(sizeof(int) * (SV_NFDS + 1))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = buf, .iov_len = SV_MAX_REQ + 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof(cbuf.b)};
	ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		free(buf);
		return;
	}
	int fds[SV_NFDS + 1], nfds = 0, bad = 0;
	for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t j = 0; j < k; j++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
			if (nfds < SV_NFDS + 1)
				fds[nfds++] = f;
			else
				close(f);
		}
	}
	struct sv_req req;
	char err[160];
	int code = 0;
	if (n <= 0)
		code = -1; // the client hung up
	else if (bad || nfds != SV_NFDS || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		code = EBADMSG;
	else if (sv_parse(buf, (size_t)n, &req, err, sizeof(err)) < 0)
		code = EINVAL;
	else if (req.uid != (uint32_t)getuid() || req.gid != (uint32_t)getgid()) {
		// No capability to switch ids: the runtime's exec does that.
		sv_free(&req);
		code = EPERM;
	}
	if (code == 0) {
		pid_t pid = fork();
		if (pid == 0)
			child_exec(&req, fds);
		sv_free(&req);
		if (pid < 0)
			code = errno;
		else {
			conns[i].child = pid;
			reply(fd, SV_STARTED, pid);
		}
	}
	for (int j = 0; j < nfds; j++)
		close(fds[j]);
	free(buf);
	if (code > 0)
		reply(fd, SV_ERROR, code);
	if (code != 0)
		drop(i);
}

// take_signal reads what a client sends while its command runs: a signal
// to forward, or end of file (the client went away; the command runs on,
// as one runc-style exec'd does).
static void take_signal(int i)
{
	int32_t m[2];
	ssize_t n = recv(conns[i].fd, m, sizeof(m), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == (ssize_t)sizeof(m) && (uint32_t)m[0] == SV_SIG_MAGIC) {
		if (m[1] > 0 && m[1] < NSIG)
			kill(conns[i].child, m[1]);
		return;
	}
	drop(i);
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (int i = 0; i < nconns; i++) {
			if (conns[i].child != pid)
				continue;
			if (WIFSIGNALED(status))
				reply(conns[i].fd, SV_SIGNALED, WTERMSIG(status));
			else
				reply(conns[i].fd, SV_EXITED, WEXITSTATUS(status));
			drop(i);
			break;
		}
}

static void accept_one(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	// pid 0: the peer is outside this pid namespace (the host's nucleus).
	if (nconns == SV_MAX_CONNS || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.pid != 0) {
		close(fd);
		return;
	}
	conns[nconns++] = (struct conn){.fd = fd};
}

// shed_text drops this process's mappings of the binary's text: start-up
// (the pre-exec step, libc's init) faulted in far more of the 11 MB binary
// than the loop needs, and an idle pooled sandbox should cost little. The
// pages stay in the page cache; the few the loop runs fault back in.
static void shed_text(void)
{
	extern char __executable_start[], etext[];
	long pg = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)__executable_start & ~(uintptr_t)(pg - 1);
	uintptr_t b = ((uintptr_t)etext + pg - 1) & ~(uintptr_t)(pg - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

void nucleus_supervise(int lfd, long ttl, int (*confine)(char *err, size_t errlen))
{
	child_confine = confine;
	// First: a command runs as this user, in this user namespace and
	// Landlock domain, so only this keeps it from ptrace, pidfd_getfd and
	// /proc/1/{fd,mem,environ}. The children's execs make them dumpable
	// again; nothing of this process's survives an exec.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		_exit(126);
	shed_text();
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigset_t set, none;
	sigemptyset(&set);
	sigemptyset(&none);
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigaddset(&set, sigs[i]);
		sigaction(sigs[i], &sa, NULL);
	}
	// Blocked but while waiting in ppoll, so no wake-up is lost. A pid
	// namespace's init gets a signal from inside only if it handles it:
	// SIGTERM from a command ends the sandbox (as from the host), while
	// SIGKILL and SIGSTOP from inside stay ignored.
	sigprocmask(SIG_BLOCK, &set, NULL);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		for (int fd = 0; fd < 3; fd++)
			dup2(devnull, fd);
		close(devnull);
	}
	if (lfd >= 0)
		fcntl(lfd, F_SETFD, FD_CLOEXEC);
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ttl;
	struct pollfd pfd[SV_MAX_CONNS + 1];
	for (;;) {
		got_chld = 0;
		reap();
		if (got_end)
			_exit(0);
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
		int n = 0;
		if (lfd >= 0)
			pfd[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
		for (int i = 0; i < nconns; i++)
			pfd[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
		if (ppoll(pfd, n, timeout, &none) <= 0)
			continue;
		// Connections first, from the last (drop moves the last one into
		// the slot it frees), then new ones.
		int base = lfd >= 0;
		for (int i = nconns - 1; i >= 0; i--) {
			if (!(pfd[base + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (conns[i].child == 0)
				take_request(i);
			else
				take_signal(i);
		}
		if (lfd >= 0 && (pfd[0].revents & POLLIN))
			accept_one(lfd);
	}
}
