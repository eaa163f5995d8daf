/* sds.h — binary-safe dynamic strings for rcluster.
 *
 * An `sds` is a `char *` to a NUL-terminated buffer that is preceded in memory
 * by a `struct sdshdr` holding the length and the capacity.  It can be passed
 * to any function expecting a C string (the content may also hold NUL bytes;
 * sdslen() is authoritative).
 *
 * Ownership rules, common to every function below:
 *   - A returned sds is owned by the caller and must be released with sdsfree().
 *   - A function that may grow its sds argument returns the (possibly moved)
 *     string; after a non-NULL return the old pointer must not be used again.
 *   - On allocation failure such functions return NULL and the sds argument is
 *     left valid, unchanged and still owned by the caller:
 *         sds t = sdscat(s, x); if (!t) { sdsfree(s); return -1; } s = t;
 */
#ifndef RCLUSTER_SDS_H
#define RCLUSTER_SDS_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

typedef char *sds;

struct sdshdr {
    size_t len;   /* bytes in use, excluding the terminating NUL */
    size_t alloc; /* usable bytes in buf, excluding the terminating NUL */
    char buf[];
};

#define SDS_HDR(s) ((struct sdshdr *)(void *)((s) - sizeof(struct sdshdr)))

/* Returns the length of s in bytes (binary-safe, not strlen). */
static inline size_t sdslen(const sds s) { return SDS_HDR(s)->len; }
/* Returns how many bytes can be appended to s without reallocating. */
static inline size_t sdsavail(const sds s) { return SDS_HDR(s)->alloc - SDS_HDR(s)->len; }

/* New string with a copy of len bytes of init (zero-filled if init is NULL); caller owns; NULL on OOM. */
sds sdsnewlen(const void *init, size_t len);
/* New string copied from C string init (empty if NULL); caller owns; NULL on OOM. */
sds sdsnew(const char *init);
/* New empty string; caller owns; NULL on OOM. */
sds sdsempty(void);
/* New copy of s (binary-safe); caller owns; s untouched; NULL on OOM. */
sds sdsdup(const sds s);
/* Frees s; s is invalid afterwards; NULL is a no-op. */
void sdsfree(sds s);

/* Ensures room for addlen more bytes; returns the new pointer (old one invalid) or NULL on OOM/overflow (s intact). */
sds sdsMakeRoomFor(sds s, size_t addlen);
/* Adjusts the length by incr (after writing into the free space or to truncate) and sets the NUL; never reallocates. */
void sdsIncrLen(sds s, ssize_t incr);
/* Sets the length to strlen(s) (after editing the buffer as a C string); never reallocates. */
void sdsupdatelen(sds s);
/* Makes s empty without freeing its buffer; never reallocates. */
void sdsclear(sds s);

/* Appends len bytes of t (may point into s); returns the new pointer (old invalid) or NULL on OOM (s intact). */
sds sdscatlen(sds s, const void *t, size_t len);
/* Appends C string t; returns the new pointer (old invalid) or NULL on OOM (s intact). */
sds sdscat(sds s, const char *t);
/* Appends sds t (binary-safe, t may be s); returns the new pointer (old invalid) or NULL on OOM (s intact). */
sds sdscatsds(sds s, const sds t);
/* Replaces the content with len bytes of t; returns the new pointer (old invalid) or NULL on OOM (s intact). */
sds sdscpylen(sds s, const char *t, size_t len);
/* Replaces the content with C string t; returns the new pointer (old invalid) or NULL on OOM (s intact). */
sds sdscpy(sds s, const char *t);
/* Appends vprintf-style output; returns the new pointer (old invalid) or NULL on OOM/format error (s intact). */
sds sdscatvprintf(sds s, const char *fmt, va_list ap);
/* Appends printf-style output; returns the new pointer (old invalid) or NULL on OOM/format error (s intact). */
sds sdscatprintf(sds s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends p[0..len) as a double-quoted, escaped literal; returns the new pointer (old invalid) or NULL on OOM (s intact). */
sds sdscatrepr(sds s, const char *p, size_t len);

/* Removes from both ends every byte found in C string cset, in place; returns s (never reallocates). */
sds sdstrim(sds s, const char *cset);
/* Keeps only bytes start..end inclusive (negative = from the end, clamped), in place; never reallocates. */
void sdsrange(sds s, ssize_t start, ssize_t end);
/* Lowercases ASCII letters in place; never reallocates. */
void sdstolower(sds s);
/* Uppercases ASCII letters in place; never reallocates. */
void sdstoupper(sds s);
/* Returns <0, 0, >0 like memcmp over the common prefix, then the shorter string sorts first. */
int sdscmp(const sds s1, const sds s2);

/* Splits s[0..len) on the seplen-byte separator sep; returns a caller-owned array of *count new strings
 * (free with sdsfreesplitres), an empty array with *count = 0 for len == 0, or NULL on OOM/bad args. */
sds *sdssplitlen(const char *s, ssize_t len, const char *sep, int seplen, int *count);
/* Frees an array returned by sdssplitlen and its count strings; NULL is a no-op. */
void sdsfreesplitres(sds *tokens, int count);
/* New string joining the argc C strings of argv with sep between them; caller owns; NULL on OOM. */
sds sdsjoin(char **argv, int argc, char *sep);
/* New string holding the decimal representation of value; caller owns; NULL on OOM. */
sds sdsfromlonglong(long long value);

#endif /* RCLUSTER_SDS_H */
