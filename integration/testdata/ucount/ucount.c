// ucount: what a sandboxed workload does to exhaust the per-user counts the
// kernel charges up the user-namespace chain (kernel/ucount.c), and what
// the host side does to see whether host root was charged.
//
//   ucount inotify   open inotify instances until the kernel refuses, print
//                    "held N errno E", then hold them until stdin closes
//   ucount sigqueue  block SIGRTMIN and kill(getpid(), SIGRTMIN) past the
//                    RLIMIT_SIGPENDING, print "held Q" (this process's
//                    SigQ line), then hold them until stdin closes
//   ucount sigq1     (host) block SIGRTMIN and sigqueue one to itself:
//                    print "ok" or "fail E"
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <unistd.h>

static void hold(void)
{
	char c;
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
}

static void block_rtmin(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

static void sigq_line(char *out, size_t n)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	snprintf(out, n, "?");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "SigQ:", 5) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, n, "%s", line + 5 + strspn(line + 5, " \t"));
		}
	fclose(f);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	if (strcmp(argv[1], "inotify") == 0) {
		int n = 0;
		while (inotify_init1(IN_CLOEXEC) >= 0 && n < 100000)
			n++;
		printf("held %d errno %s\n", n, strerrorname_np(errno));
		hold();
		return 0;
	}
	if (strcmp(argv[1], "sigqueue") == 0) {
		struct rlimit rl;
		char q[64];
		block_rtmin();
		getrlimit(RLIMIT_SIGPENDING, &rl);
		rlim_t max = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : rl.rlim_cur + 16;
		for (rlim_t i = 0; i < max; i++)
			kill(getpid(), SIGRTMIN);
		sigq_line(q, sizeof q);
		printf("held %s\n", q);
		hold();
		return 0;
	}
	if (strcmp(argv[1], "sigq1") == 0) {
		union sigval v = {0};
		block_rtmin();
		if (sigqueue(getpid(), SIGRTMIN, v) != 0) {
			printf("fail %s\n", strerrorname_np(errno));
			return 1;
		}
		printf("ok\n");
		return 0;
	}
	return 2;
}
