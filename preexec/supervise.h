// The supervisor's wire format (see supervise.c and package supervise,
// which encodes it): a request is one SOCK_SEQPACKET message carrying a
// header, the strings, and the three stdio descriptors (SCM_RIGHTS).
#ifndef NUCLEUS_SV_H
#define NUCLEUS_SV_H

#include <stddef.h>
#include <stdint.h>

#define SV_REQ_MAGIC 0x3153584eu  // "NXS1", little-endian
#define SV_SIG_MAGIC 0x4753584eu  // "NXSG": forward a signal
#define SV_REP_MAGIC 0x5253584eu  // "NXSR": a reply
#define SV_MAX_REQ (128 << 10)
#define SV_MAX_STRINGS 8192
#define SV_NFDS 3

// Replies: kind, then value.
#define SV_STARTED 1  // value: the child's pid in the sandbox
#define SV_EXITED 2   // value: exit status
#define SV_SIGNALED 3 // value: signal number
#define SV_ERROR 4    // value: errno (EPERM: ask runc-style exec instead)

// uid and gid: the ids the command must run as; the supervisor runs it
// only when they are its own (it has no capability to change them).
struct sv_hdr {
	uint32_t magic, len, argc, envc, uid, gid, flags;
};

struct sv_req {
	uint32_t uid, gid;
	const char *cwd;
	// NULL-terminated; point into the buffer given to sv_parse.
	char **argv, **envp;
};

// sv_parse checks and decodes one request of len bytes (a copy of which
// it does not take: req points into buf). It returns 0, or -1 with err
// set; req->argv is malloc'd (free it with sv_free) only on success.
int sv_parse(unsigned char *buf, size_t len, struct sv_req *req, char *err, size_t errlen);
void sv_free(struct sv_req *req);

#endif
