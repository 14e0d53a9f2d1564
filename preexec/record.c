#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const px_list_names[PX_NLISTS] = {"read", "write", "devices", "exec", "exec_root_except"};

struct reader {
	const unsigned char *p;
	size_t left;
};

static int u32(struct reader *r, uint32_t *v)
{
	if (r->left < 4)
		return -1;
	*v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
	r->p += 4;
	r->left -= 4;
	return 0;
}

// str copies the next length-prefixed string into the arena.
static int str(struct reader *r, uint32_t max, char **arena, const char **out)
{
	uint32_t n;
	if (u32(r, &n) < 0 || n > max || n > r->left)
		return -1;
	if (memchr(r->p, 0, n))
		return -1;
	memcpy(*arena, r->p, n);
	(*arena)[n] = 0;
	*out = *arena;
	*arena += n + 1;
	r->p += n;
	r->left -= n;
	return 0;
}

int px_decode(const unsigned char *buf, size_t len, struct px_record *rec, char *err, size_t errlen)
{
	memset(rec, 0, sizeof(*rec));
#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); goto bad; } while (0)
	if (len < 16 || len > PX_MAX_RECORD)
		BAD("record of %zu bytes", len);
	if (memcmp(buf, PX_MAGIC, 8) != 0)
		BAD("not a pre-exec record (bad magic)");
	struct reader r = {buf + 8, len - 8};
	uint32_t body;
	u32(&r, &rec->version);
	u32(&r, &body);
	if (rec->version != PX_VERSION)
		BAD("record version %u, this binary reads %u", rec->version, PX_VERSION);
	if (body != r.left)
		BAD("record body of %u bytes, %zu given", body, r.left);
	// Every string is shorter than the record, each gets one NUL: the
	// arena never needs more than the record's size plus the count.
	rec->arena = malloc(len + 4 + PX_MAX_PATHS);
	rec->ptrs = calloc(PX_MAX_PATHS, sizeof(char *));
	if (!rec->arena || !rec->ptrs)
		BAD("out of memory");
	char *arena = rec->arena;
	uint32_t fds[4];
	if (u32(&r, &rec->flags) < 0 || u32(&r, &rec->min_abi) < 0)
		BAD("record truncated");
	if (rec->flags & ~PX_FLAGS)
		BAD("unknown record flags %#x", rec->flags);
	for (int i = 0; i < 4; i++) {
		if (u32(&r, &fds[i]) < 0)
			BAD("record truncated");
		int fd = (int)(int32_t)fds[i];
		if (fd < -1 || fd > PX_MAX_FD)
			BAD("descriptor %d out of range", fd);
	}
	rec->self_fd = (int32_t)fds[0], rec->audit_fd = (int32_t)fds[1];
	rec->seccomp_fd = (int32_t)fds[2], rec->status_fd = (int32_t)fds[3];
	if (r.left < 32)
		BAD("record truncated");
	memcpy(rec->seccomp_sha256, r.p, 32);
	r.p += 32, r.left -= 32;
	for (int i = 0; i < PX_NFRAGS; i++) {
		if (str(&r, PX_MAX_FRAGMENT, &arena, &rec->frag[i]) < 0)
			BAD("audit fragment %d: bad length or NUL byte", i);
		if (strchr(rec->frag[i], '\n') || strchr(rec->frag[i], '\r'))
			BAD("audit fragment %d: contains a newline", i);
	}
	uint32_t total = 0;
	for (int l = 0; l < PX_NLISTS; l++) {
		uint32_t n;
		if (u32(&r, &n) < 0)
			BAD("record truncated");
		if (n > PX_MAX_PATHS - total)
			BAD("too many paths (more than %d)", PX_MAX_PATHS);
		rec->list[l].p = rec->ptrs + total;
		rec->list[l].n = n;
		for (uint32_t i = 0; i < n; i++) {
			if (str(&r, PX_MAX_PATH_LEN, &arena, &rec->ptrs[total + i]) < 0)
				BAD("%s path %u: bad length or NUL byte", px_list_names[l], i);
			if (rec->ptrs[total + i][0] != '/')
				BAD("%s path %u: not absolute", px_list_names[l], i);
		}
		total += n;
	}
	if (r.left != 0)
		BAD("%zu bytes after the record", r.left);
	return 0;
bad:
	free(rec->arena);
	free(rec->ptrs);
	rec->arena = NULL;
	rec->ptrs = NULL;
	return -1;
#undef BAD
}
