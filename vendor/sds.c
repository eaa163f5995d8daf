/* sds.c — binary-safe dynamic strings for rcluster (see sds.h for contracts). */
#include "sds.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SDS_HDRSZ (sizeof(struct sdshdr))
#define SDS_MAX_PREALLOC ((size_t)1024 * 1024)
/* Largest capacity whose allocation (header + capacity + NUL) fits in size_t. */
#define SDS_MAX_ALLOC (SIZE_MAX - SDS_HDRSZ - 1)

static sds sds_alloc(size_t cap) {
    if (cap > SDS_MAX_ALLOC) return NULL;
    struct sdshdr *h = malloc(SDS_HDRSZ + cap + 1);
    if (!h) return NULL;
    h->len = 0;
    h->alloc = cap;
    h->buf[0] = '\0';
    /* The header lives just before buf; sdsfree() steps back to it. */
    // cppcheck-suppress memleak
    return h->buf;
}

sds sdsnewlen(const void *init, size_t len) {
    sds s = sds_alloc(len);
    if (!s) return NULL;
    if (init) memcpy(s, init, len);
    else memset(s, 0, len);
    s[len] = '\0';
    SDS_HDR(s)->len = len;
    return s;
}

sds sdsnew(const char *init) { return sdsnewlen(init ? init : "", init ? strlen(init) : 0); }

sds sdsempty(void) { return sdsnewlen("", 0); }

sds sdsdup(const sds s) { return sdsnewlen(s, sdslen(s)); }

void sdsfree(sds s) {
    if (s) free(SDS_HDR(s));
}

sds sdsMakeRoomFor(sds s, size_t addlen) {
    struct sdshdr *h = SDS_HDR(s);
    if (h->alloc - h->len >= addlen) return s;
    if (addlen > SDS_MAX_ALLOC - h->len) return NULL;
    size_t need = h->len + addlen, cap;
    if (need < SDS_MAX_PREALLOC) cap = need * 2;
    else cap = (need > SDS_MAX_ALLOC - SDS_MAX_PREALLOC) ? SDS_MAX_ALLOC : need + SDS_MAX_PREALLOC;
    struct sdshdr *nh = realloc(h, SDS_HDRSZ + cap + 1);
    if (!nh && cap > need) { /* retry without the preallocation slack */
        cap = need;
        nh = realloc(h, SDS_HDRSZ + cap + 1);
    }
    if (!nh) return NULL;
    nh->alloc = cap;
    // cppcheck-suppress memleak
    return nh->buf;
}

void sdsIncrLen(sds s, ssize_t incr) {
    struct sdshdr *h = SDS_HDR(s);
    if (incr >= 0) assert((size_t)incr <= h->alloc - h->len);
    else assert((size_t)-(incr + 1) < h->len);
    h->len = (size_t)((ssize_t)h->len + incr);
    s[h->len] = '\0';
}

void sdsupdatelen(sds s) { SDS_HDR(s)->len = strlen(s); }

void sdsclear(sds s) {
    SDS_HDR(s)->len = 0;
    s[0] = '\0';
}

sds sdscatlen(sds s, const void *t, size_t len) {
    size_t cur = sdslen(s);
    /* t may point into s's own buffer, which sdsMakeRoomFor may move. */
    uintptr_t ut = (uintptr_t)t, us = (uintptr_t)s;
    int inside = len > 0 && ut >= us && ut <= us + cur;
    size_t off = inside ? (size_t)(ut - us) : 0;
    sds n = sdsMakeRoomFor(s, len);
    if (!n) return NULL;
    if (len) memmove(n + cur, inside ? n + off : (const char *)t, len);
    SDS_HDR(n)->len = cur + len;
    n[cur + len] = '\0';
    return n;
}

sds sdscat(sds s, const char *t) { return sdscatlen(s, t, strlen(t)); }

sds sdscatsds(sds s, const sds t) { return sdscatlen(s, t, sdslen(t)); }

sds sdscpylen(sds s, const char *t, size_t len) {
    if (SDS_HDR(s)->alloc < len) {
        uintptr_t ut = (uintptr_t)t, us = (uintptr_t)s;
        int inside = ut >= us && ut <= us + sdslen(s);
        size_t off = inside ? (size_t)(ut - us) : 0;
        sds n = sdsMakeRoomFor(s, len - sdslen(s));
        if (!n) return NULL;
        s = n;
        if (inside) t = n + off;
    }
    if (len) memmove(s, t, len);
    s[len] = '\0';
    SDS_HDR(s)->len = len;
    return s;
}

sds sdscpy(sds s, const char *t) { return sdscpylen(s, t, strlen(t)); }

sds sdscatvprintf(sds s, const char *fmt, va_list ap) {
    char stackbuf[1024];
    va_list cp;
    va_copy(cp, ap);
    /* cp is initialized by va_copy. clang-tidy 14 reports it only when another file was
     * analyzed first in the same run (the valist checker keeps state across files). */
    int n = vsnprintf(stackbuf, sizeof stackbuf, fmt, cp);   // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(cp);
    if (n < 0) return NULL;
    if ((size_t)n < sizeof stackbuf) return sdscatlen(s, stackbuf, (size_t)n);
    char *buf = malloc((size_t)n + 1);
    if (!buf) return NULL;
    va_copy(cp, ap);
    int m = vsnprintf(buf, (size_t)n + 1, fmt, cp);
    va_end(cp);
    sds r = (m == n) ? sdscatlen(s, buf, (size_t)n) : NULL;
    free(buf);
    return r;
}

sds sdscatprintf(sds s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds r = sdscatvprintf(s, fmt, ap);
    va_end(ap);
    return r;
}

sds sdscatrepr(sds s, const char *p, size_t len) {
    /* Worst case is 4 output bytes per input byte plus the two quotes; size it up front
     * so that a failure leaves s untouched. */
    if (len > (SIZE_MAX - 2) / 4) return NULL;
    sds n = sdsMakeRoomFor(s, len * 4 + 2);
    if (!n) return NULL;
    static const char hex[] = "0123456789abcdef";
    char *o = n + sdslen(n);
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        char e = 0;
        switch (c) {
        case '\\': e = '\\'; break;
        case '"': e = '"'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        case '\t': e = 't'; break;
        case '\a': e = 'a'; break;
        case '\b': e = 'b'; break;
        default: break;
        }
        if (e) {
            *o++ = '\\';
            *o++ = e;
        } else if (c >= 0x20 && c < 0x7f) {
            *o++ = (char)c;
        } else {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    *o = '\0';
    SDS_HDR(n)->len = (size_t)(o - n);
    return n;
}

static int sds_incset(unsigned char c, const char *cset) { return c != 0 && strchr(cset, c) != NULL; }

sds sdstrim(sds s, const char *cset) {
    size_t len = sdslen(s), a = 0, b = len;
    while (a < b && sds_incset((unsigned char)s[a], cset)) a++;
    while (b > a && sds_incset((unsigned char)s[b - 1], cset)) b--;
    if (a) memmove(s, s + a, b - a);
    s[b - a] = '\0';
    SDS_HDR(s)->len = b - a;
    return s;
}

void sdsrange(sds s, ssize_t start, ssize_t end) {
    size_t len = sdslen(s);
    if (len == 0) return;
    if (len > (size_t)SSIZE_MAX) len = (size_t)SSIZE_MAX; /* not reachable in practice */
    ssize_t slen = (ssize_t)len;
    if (start < 0) start = start < -slen ? 0 : slen + start;
    if (end < 0) end = end < -slen ? 0 : slen + end;
    size_t newlen = 0;
    if (start <= end && start < slen) {
        if (end >= slen) end = slen - 1;
        newlen = (size_t)(end - start) + 1;
        if (start) memmove(s, s + start, newlen);
    }
    s[newlen] = '\0';
    SDS_HDR(s)->len = newlen;
}

void sdstolower(sds s) {
    for (size_t i = 0, n = sdslen(s); i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
}

void sdstoupper(sds s) {
    for (size_t i = 0, n = sdslen(s); i < n; i++)
        if (s[i] >= 'a' && s[i] <= 'z') s[i] = (char)(s[i] - 'a' + 'A');
}

int sdscmp(const sds s1, const sds s2) {
    size_t l1 = sdslen(s1), l2 = sdslen(s2);
    int c = memcmp(s1, s2, l1 < l2 ? l1 : l2);
    if (c) return c;
    return l1 < l2 ? -1 : l1 > l2 ? 1 : 0;
}

void sdsfreesplitres(sds *tokens, int count) {
    if (!tokens) return;
    for (int i = 0; i < count; i++) sdsfree(tokens[i]);
    free(tokens);
}

sds *sdssplitlen(const char *s, ssize_t len, const char *sep, int seplen, int *count) {
    *count = 0;
    if (len < 0 || seplen < 1 || !sep || (len > 0 && !s)) return NULL;
    size_t n = (size_t)len, sl = (size_t)seplen, cap = 8;
    int used = 0;
    sds *tok = malloc(cap * sizeof *tok);
    if (!tok) return NULL;
    if (n == 0) return tok;
    size_t from = 0;
    for (size_t i = 0; i + sl <= n;) {
        if (memcmp(s + i, sep, sl) == 0) {
            if ((size_t)used + 2 > cap) {
                if (cap > (size_t)INT32_MAX / 2) goto oom;
                sds *nt = realloc(tok, cap * 2 * sizeof *tok);
                if (!nt) goto oom;
                tok = nt;
                cap *= 2;
            }
            if (!(tok[used] = sdsnewlen(s + from, i - from))) goto oom;
            used++;
            i += sl;
            from = i;
        } else {
            i++;
        }
    }
    /* The last token (after the final separator; possibly empty). cap >= used + 1 here. */
    if ((size_t)used + 1 > cap) goto oom;
    if (!(tok[used] = sdsnewlen(s + from, n - from))) goto oom;
    *count = used + 1;
    return tok;
oom:
    sdsfreesplitres(tok, used);
    return NULL;
}

sds sdsjoin(char **argv, int argc, char *sep) {
    sds r = sdsempty();
    for (int i = 0; r && i < argc; i++) {
        sds t = sdscat(r, argv[i]);
        if (t && i + 1 < argc) {
            sds u = sdscat(t, sep);
            if (!u) sdsfree(t);
            t = u;
        } else if (!t) {
            sdsfree(r);
        }
        r = t;
    }
    return r;
}

sds sdsfromlonglong(long long value) {
    char buf[24], *p = buf + sizeof buf;
    unsigned long long v = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (value < 0) *--p = '-';
    return sdsnewlen(p, (size_t)(buf + sizeof buf - p));
}
