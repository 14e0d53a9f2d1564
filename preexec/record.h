// The decoder of the pre-exec record (see record.go for the format). It
// refuses anything but exactly one well-formed record of this version.
#ifndef NUCLEUS_PX_RECORD_H
#define NUCLEUS_PX_RECORD_H

#include <stddef.h>
#include <stdint.h>

// Limits, as in record.go.
#define PX_MAGIC "NUCLPXR"  // and a NUL: 8 bytes
#define PX_VERSION 4
#define PX_MAX_PATHS 256
#define PX_MAX_PATH_LEN 4095
#define PX_MAX_FRAGMENT (1 << 20)
#define PX_MAX_RECORD (4 << 20)
#define PX_MAX_FD (1 << 20)

#define PX_FLAG_STRICT 1u
#define PX_FLAG_SCOPE_SIGNALS 2u
#define PX_FLAG_HOLD 4u
#define PX_FLAG_DEFER_LANDLOCK 8u
#define PX_FLAGS (PX_FLAG_STRICT | PX_FLAG_SCOPE_SIGNALS | PX_FLAG_HOLD | PX_FLAG_DEFER_LANDLOCK)

enum { PX_FRAG_ID, PX_FRAG_POSTURE, PX_FRAG_DEGRADED, PX_FRAG_RULES, PX_NFRAGS };
enum { PX_READ, PX_WRITE, PX_DEVICES, PX_EXEC, PX_NOEXEC_ROOT, PX_NLISTS };

struct px_list {
	const char **p;
	uint32_t n;
};

struct px_record {
	uint32_t version, flags, min_abi;
	int self_fd, audit_fd, seccomp_fd, status_fd;
	unsigned char seccomp_sha256[32];
	// NUL-terminated; fragments are JSON without newlines.
	const char *frag[PX_NFRAGS];
	struct px_list list[PX_NLISTS];
	// Owns the strings above.
	char *arena;
	const char **ptrs;
};

// px_decode fills rec from buf; on error it returns -1 with err set.
int px_decode(const unsigned char *buf, size_t len, struct px_record *rec, char *err, size_t errlen);

extern const char *const px_list_names[PX_NLISTS];

#endif
