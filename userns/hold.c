// `nucleus userns-hold UID`: the unprivileged creator of a sandbox's user
// namespace, run from an ELF constructor before the Go runtime starts (a
// multi-threaded process can't unshare a user namespace).
//
// The kernel charges per-user counts (inotify instances and watches,
// queued signals, user namespaces...) at each level of the user-namespace
// chain to the uid that created the namespace below. Created by host root,
// a sandbox's namespace would spend host root's quotas; created here, as
// the host uid the sandbox's root maps to, it spends that uid's.
//
// Protocol with the parent (host root): drop to UID:UID without groups,
// unshare the user namespace, write 'R' on stdout, then wait for EOF on
// stdin while the parent writes the maps and pins the namespace. Any
// failure: a one-line message on stderr, exit 1, nothing written.
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void hold_fail(const char *what)
{
	fprintf(stderr, "nucleus: userns-hold: %s: %s\n", what, strerror(errno));
	fflush(stderr);
	_exit(1);
}

__attribute__((constructor)) static void nucleus_userns_hold(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc < 2 || strcmp(argv[1], "userns-hold") != 0)
		return;
	if (argc != 3 || !*argv[2]) {
		errno = EINVAL;
		hold_fail("want one argument, the owner's uid");
	}
	unsigned long id = 0;
	for (const char *s = argv[2]; *s; s++) {
		if (*s < '0' || *s > '9' || id > 0xfffffffeUL / 10) {
			errno = EINVAL;
			hold_fail("bad uid");
		}
		id = id * 10 + (unsigned long)(*s - '0');
	}
	if (id == 0 || id >= 0xffffffffUL) {
		errno = EINVAL;
		hold_fail("the owner must be an unprivileged uid");
	}
	// The parent going away (its end of stdin closing) ends this too;
	// a SIGKILL'ed parent thread as well.
	prctl(PR_SET_PDEATHSIG, 9);
	if (setgroups(0, NULL) != 0)
		hold_fail("setgroups");
	if (setresgid((gid_t)id, (gid_t)id, (gid_t)id) != 0)
		hold_fail("setresgid");
	if (setresuid((uid_t)id, (uid_t)id, (uid_t)id) != 0)
		hold_fail("setresuid");
	if (unshare(CLONE_NEWUSER) != 0)
		hold_fail("unshare(CLONE_NEWUSER)");
	if (write(1, "R", 1) != 1)
		hold_fail("ready");
	char c;
	ssize_t n;
	while ((n = read(0, &c, 1)) > 0 || (n < 0 && errno == EINTR))
		;
	_exit(0);
}
