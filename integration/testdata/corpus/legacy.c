/* legacy: a static glibc program that makes the x86_64 system calls older
 * and static binaries still make, directly (syscall(2), so no libc wrapper
 * substitutes the *at form), plus the descriptor-based calls event loops
 * use. Each step prints one line; a step the seccomp filter kills ends the
 * program with SIGSYS and no more lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
	printf("%s FAILED %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

int main(int argc, char **argv) {
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	char path[256], link[256], buf[64];
	setvbuf(stdout, NULL, _IONBF, 0);

	snprintf(path, sizeof path, "%s/legacy-file", dir);
	int fd = syscall(SYS_creat, path, 0644);
	if (fd < 0) die("creat");
	if (write(fd, "legacy-data", 11) != 11) die("write");
	close(fd);
	fd = syscall(SYS_open, path, O_RDONLY);
	if (fd < 0) die("open");
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n < 0) die("read");
	buf[n] = 0;
	close(fd);
	printf("open %s\n", buf);

	struct stat st;
	if (syscall(SYS_stat, path, &st) < 0) die("stat");
	printf("stat size=%ld\n", (long)st.st_size);
	snprintf(link, sizeof link, "%s/legacy-link", dir);
	if (symlink("legacy-file", link) < 0) die("symlink");
	if (syscall(SYS_lstat, link, &st) < 0) die("lstat");
	printf("lstat symlink=%d\n", S_ISLNK(st.st_mode));

	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0) die("opendir");
	char dents[4096];
	long dn = syscall(SYS_getdents, dfd, dents, sizeof dents);
	if (dn < 0) die("getdents");
	close(dfd);
	printf("getdents %s\n", dn > 0 ? "entries" : "empty");

	int p[2];
	if (syscall(SYS_pipe, p) < 0) die("pipe");
	if (write(p[1], "pipe-data", 9) != 9) die("pipe write");
	n = read(p[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	printf("pipe %s\n", buf);

	pid_t pid = syscall(SYS_fork);
	if (pid < 0) die("fork");
	if (pid == 0) {
		write(p[1], "child", 5);
		_exit(7);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0) die("wait");
	n = read(p[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	printf("fork %s exit=%d\n", buf, WEXITSTATUS(status));

	/* pselect6: glibc's select and pselect both become it */
	fd_set rfds;
	FD_ZERO(&rfds);
	FD_SET(p[0], &rfds);
	write(p[1], "x", 1);
	struct timespec ts = {5, 0};
	if (pselect(p[0] + 1, &rfds, NULL, NULL, &ts, NULL) != 1) die("pselect6");
	read(p[0], buf, 1);
	printf("pselect6 ready=%d\n", FD_ISSET(p[0], &rfds));

	int ep = syscall(SYS_epoll_create, 1);
	if (ep < 0) die("epoll_create");
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]}, out;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) < 0) die("epoll_ctl");
	write(p[1], "y", 1);
	if (syscall(SYS_epoll_wait, ep, &out, 1, 5000) != 1) die("epoll_wait");
	read(p[0], buf, 1);
	printf("epoll_wait fd-match=%d\n", out.data.fd == p[0]);

	int efd = syscall(SYS_eventfd, 0);
	if (efd < 0) die("eventfd");
	uint64_t v = 3;
	write(efd, &v, sizeof v);
	v = 0;
	read(efd, &v, sizeof v);
	printf("eventfd %llu\n", (unsigned long long)v);

	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0) die("inotify_init1");
	int wd = inotify_add_watch(in, dir, IN_CREATE);
	if (wd < 0) die("inotify_add_watch");
	snprintf(path, sizeof path, "%s/legacy-new", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	char ibuf[4096] __attribute__((aligned(8)));
	if (read(in, ibuf, sizeof ibuf) <= 0) die("inotify read");
	if (inotify_rm_watch(in, wd) < 0) die("inotify_rm_watch");
	int in0 = syscall(SYS_inotify_init);
	if (in0 < 0) die("inotify_init");
	close(in0);
	printf("inotify %s\n", ((struct inotify_event *)ibuf)->name);

	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (tfd < 0) die("timerfd_create");
	struct itimerspec its = {.it_value = {0, 10 * 1000 * 1000}};
	if (timerfd_settime(tfd, 0, &its, NULL) < 0) die("timerfd_settime");
	struct itimerspec cur;
	if (timerfd_gettime(tfd, &cur) < 0) die("timerfd_gettime");
	uint64_t exp = 0;
	if (read(tfd, &exp, sizeof exp) != sizeof exp) die("timerfd read");
	printf("timerfd expirations=%llu\n", (unsigned long long)exp);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) die("signalfd4");
	kill(getpid(), SIGUSR1);
	struct signalfd_siginfo si;
	if (read(sfd, &si, sizeof si) != sizeof si) die("signalfd read");
	/* the old signalfd: no flags argument */
	int sfd0 = syscall(SYS_signalfd, -1, &mask, sizeof(uint64_t));
	if (sfd0 < 0) die("signalfd");
	kill(getpid(), SIGUSR1);
	if (read(sfd0, &si, sizeof si) != sizeof si) die("signalfd read");
	printf("signalfd signo=%s\n", si.ssi_signo == SIGUSR1 ? "SIGUSR1" : "other");

	int ls = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/legacy.sock", dir);
	if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
	if (listen(ls, 1) < 0) die("listen");
	int cs = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(cs, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
	int as = syscall(SYS_accept, ls, NULL, NULL);
	if (as < 0) die("accept");
	write(cs, "sock", 4);
	n = read(as, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	printf("accept %s\n", buf);

	long t = syscall(SYS_time, NULL);
	printf("time %s\n", t > 1600000000 ? "sane" : "wrong");
	printf("LEGACY OK\n");
	return 0;
}
