/* unit_sds.c — unit tests for vendor/sds.{h,c}. One line per check: "PASS name" or "FAIL name: detail". */
#include "../vendor/sds.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int npass, nfail;

static void check(const char *name, int ok, const char *detail, int line) {
    if (ok) {
        npass++;
        printf("PASS %s\n", name);
    } else {
        nfail++;
        printf("FAIL %s: %s (line %d)\n", name, detail, line);
    }
}
#define CHECK(name, cond) check((name), !!(cond), #cond, __LINE__)

/* Equal content: exactly len bytes, matching, NUL-terminated. */
static int eq(const sds s, const char *want, size_t len) {
    return s && sdslen(s) == len && memcmp(s, want, len) == 0 && s[len] == '\0';
}
#define EQS(s, lit) eq((s), (lit), sizeof(lit) - 1)

/* Inverse of sdscatrepr, for the round-trip test; returns bytes written or -1. */
static long unrepr(const char *r, size_t n, char *out) {
    if (n < 2 || r[0] != '"' || r[n - 1] != '"') return -1;
    long o = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        char c = r[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i + 1 >= n) return -1;
        switch (r[i]) {
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case '\\': out[o++] = '\\'; break;
        case '"': out[o++] = '"'; break;
        case 'x': {
            if (i + 3 >= n) return -1;
            char h[3] = {r[i + 1], r[i + 2], 0};
            out[o++] = (char)strtol(h, NULL, 16);
            i += 2;
            break;
        }
        default: return -1;
        }
    }
    return o;
}

static void test_create(void) {
    sds s = sdsnew("hello");
    CHECK("sdsnew content", EQS(s, "hello"));
    CHECK("sdslen", sdslen(s) == 5);
    sdsfree(s);
    s = sdsnew(NULL);
    CHECK("sdsnew NULL is empty", EQS(s, ""));
    sdsfree(s);
    s = sdsempty();
    CHECK("sdsempty", EQS(s, "") && sdsavail(s) == 0);
    sdsfree(s);
    s = sdsnewlen("a\0b\0c", 5);
    CHECK("sdsnewlen binary", eq(s, "a\0b\0c", 5));
    sds d = sdsdup(s);
    CHECK("sdsdup binary", eq(d, "a\0b\0c", 5) && d != s);
    sdsfree(s);
    sdsfree(d);
    s = sdsnewlen(NULL, 4);
    CHECK("sdsnewlen NULL zero-filled", eq(s, "\0\0\0\0", 4));
    sdsfree(s);
    sdsfree(NULL);
    CHECK("sdsfree NULL: did not crash", 1);
}

static void test_cat(void) {
    sds s = sdsempty();
    s = sdscat(s, "foo");
    s = sdscatlen(s, "\0bar", 4);
    CHECK("sdscat + sdscatlen binary", eq(s, "foo\0bar", 7));
    sds t = sdsnewlen("\0x\0", 3);
    s = sdscatsds(s, t);
    CHECK("sdscatsds binary", eq(s, "foo\0bar\0x\0", 10));
    sdsfree(t);
    s = sdscatsds(s, s);
    CHECK("sdscatsds self", eq(s, "foo\0bar\0x\0foo\0bar\0x\0", 20));
    sdsclear(s);
    CHECK("sdsclear", EQS(s, "") && sdsavail(s) >= 20);
    s = sdscat(s, "abcdef");
    s = sdscatlen(s, s + 2, 3);
    CHECK("sdscatlen from own buffer", EQS(s, "abcdefcde"));
    sds big = sdsempty();
    for (int i = 0; i < 10000; i++) big = sdscatlen(big, "xy", 2);
    CHECK("sdscat many appends", big && sdslen(big) == 20000 && big[19999] == 'y' && big[20000] == 0);
    sdsfree(big);
    s = sdscpy(s, "short");
    CHECK("sdscpy shrink", EQS(s, "short"));
    s = sdscpy(s, "a much longer string than anything before it, to force growth");
    CHECK("sdscpy grow", EQS(s, "a much longer string than anything before it, to force growth"));
    s = sdscpylen(s, "z\0z", 3);
    CHECK("sdscpylen binary", eq(s, "z\0z", 3));
    s = sdscpylen(s, "", 0);
    CHECK("sdscpylen empty", EQS(s, ""));
    sdsfree(s);
}

static void test_printf(void) {
    sds s = sdscatprintf(sdsempty(), "%d-%s-%c", 42, "x", 'y');
    CHECK("sdscatprintf basic", EQS(s, "42-x-y"));
    s = sdscatprintf(s, "%s", "");
    CHECK("sdscatprintf empty", EQS(s, "42-x-y"));
    char big[3000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    s = sdscatprintf(s, "[%s]%lld", big, -5LL);
    int ok = s && sdslen(s) == 6 + 1 + 2999 + 1 + 2 && s[6] == '[' && s[7 + 2999] == ']' &&
             memcmp(s + sdslen(s) - 2, "-5", 2) == 0;
    CHECK("sdscatprintf > 1KB", ok);
    sds t = sdscatprintf(sdsempty(), "%5000d|", 7);
    CHECK("sdscatprintf width 5000", t && sdslen(t) == 5001 && t[4999] == '7' && t[5000] == '|');
    sdsfree(t);
    sdsfree(s);
}

static void test_repr(void) {
    sds s = sdscatrepr(sdsempty(), "a\n\r\t\a\b\\\"\x01\x7f\xff z", 13);
    CHECK("sdscatrepr escapes", EQS(s, "\"a\\n\\r\\t\\a\\b\\\\\\\"\\x01\\x7f\\xff z\""));
    sdsfree(s);
    char all[256], back[256];
    for (int i = 0; i < 256; i++) all[i] = (char)i;
    s = sdscatrepr(sdsnew("p:"), all, 256);
    int printable = 1;
    for (size_t i = 0; s && i < sdslen(s); i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) printable = 0;
    CHECK("sdscatrepr 256 bytes printable", s && printable && memcmp(s, "p:", 2) == 0);
    long n = s ? unrepr(s + 2, sdslen(s) - 2, back) : -1;
    CHECK("sdscatrepr 256 bytes round-trip", n == 256 && memcmp(all, back, 256) == 0);
    sdsfree(s);
    s = sdscatrepr(sdsempty(), "", 0);
    CHECK("sdscatrepr empty", EQS(s, "\"\""));
    sdsfree(s);
}

static void test_trim_range(void) {
    sds s = sdsnew("xxciaoyy");
    s = sdstrim(s, "xy");
    CHECK("sdstrim both ends", EQS(s, "ciao"));
    s = sdstrim(s, "ciao");
    CHECK("sdstrim everything", EQS(s, ""));
    sdsfree(s);
    s = sdsnew("  \t\n  ");
    CHECK("sdstrim whitespace only", EQS(sdstrim(s, " \t\n"), ""));
    sdsfree(s);
    s = sdsnewlen(" a\0b ", 5);
    CHECK("sdstrim keeps NUL bytes", eq(sdstrim(s, " "), "a\0b", 3));
    sdsfree(s);

    struct { ssize_t a, b; const char *want; } cases[] = {
        {0, -1, "hello"}, {1, -1, "ello"}, {-2, -1, "lo"}, {1, 1, "e"}, {1, 3, "ell"},
        {3, 1, ""},       {0, 100, "hello"}, {5, 10, ""}, {100, 200, ""}, {-100, 1, "he"},
        {-100, -100, "h"}, {-1, -2, ""},   {2, -100, ""}, {0, 0, "h"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "sdsrange(%zd,%zd)", cases[i].a, cases[i].b);
        s = sdsnew("hello");
        sdsrange(s, cases[i].a, cases[i].b);
        CHECK(name, eq(s, cases[i].want, strlen(cases[i].want)));
        sdsfree(s);
    }
    s = sdsempty();
    sdsrange(s, 0, -1);
    CHECK("sdsrange empty string", EQS(s, ""));
    sdsfree(s);
    s = sdsnewlen("a\0b\0c", 5);
    sdsrange(s, 1, 3);
    CHECK("sdsrange binary", eq(s, "\0b\0", 3));
    sdsfree(s);
}

static void test_case_cmp(void) {
    sds s = sdsnewlen("AbC\0z9", 6);
    sdstolower(s);
    CHECK("sdstolower", eq(s, "abc\0z9", 6));
    sdstoupper(s);
    CHECK("sdstoupper", eq(s, "ABC\0Z9", 6));
    sdsfree(s);
    sds a = sdsnew("foo"), b = sdsnew("foa"), c = sdsnew("foo"), d = sdsnew("fo");
    sds e = sdsnewlen("fo\0", 3), f = sdsnewlen("fo\0\0", 4);
    CHECK("sdscmp greater", sdscmp(a, b) > 0);
    CHECK("sdscmp less", sdscmp(b, a) < 0);
    CHECK("sdscmp equal", sdscmp(a, c) == 0);
    CHECK("sdscmp prefix shorter first", sdscmp(d, a) < 0 && sdscmp(a, d) > 0);
    CHECK("sdscmp binary", sdscmp(e, d) > 0 && sdscmp(e, f) < 0);
    sdsfree(a), sdsfree(b), sdsfree(c), sdsfree(d), sdsfree(e), sdsfree(f);
}

static int split_is(const char *in, size_t inlen, const char *sep, const char **want, int nwant) {
    int n = -1;
    sds *t = sdssplitlen(in, (ssize_t)inlen, sep, (int)strlen(sep), &n);
    int ok = t != NULL && n == nwant;
    for (int i = 0; ok && i < n; i++) ok = eq(t[i], want[i], strlen(want[i]));
    sdsfreesplitres(t, n);
    return ok;
}

static void test_split_join(void) {
    const char *w1[] = {"a", "b", "c"};
    CHECK("split simple", split_is("a,b,c", 5, ",", w1, 3));
    const char *w2[] = {"", "a", "b", ""};
    CHECK("split separator at ends", split_is(",a,b,", 5, ",", w2, 4));
    const char *w3[] = {"a", "b", "", "c"};
    CHECK("split multi-char separator", split_is("a--b----c", 9, "--", w3, 4));
    const char *w4[] = {"abc"};
    CHECK("split no separator", split_is("abc", 3, ",", w4, 1));
    CHECK("split empty string", split_is("", 0, ",", NULL, 0));
    const char *w5[] = {"", ""};
    CHECK("split only separator", split_is("::", 2, "::", w5, 2));
    const char *w6[] = {"a", "b"};
    CHECK("split separator longer than input tail", split_is("a<>b", 4, "<>", w6, 2));
    CHECK("split input shorter than separator", split_is("a", 1, "<>", (const char *[]){"a"}, 1));
    const char *w7[200];
    char in[400];
    for (int i = 0; i < 200; i++) w7[i] = "x", in[2 * i] = 'x', in[2 * i + 1] = ' ';
    CHECK("split many tokens", split_is(in, 399, " ", w7, 200));
    int n = 5;
    CHECK("split seplen 0 is NULL", sdssplitlen("abc", 3, "", 0, &n) == NULL && n == 0);
    CHECK("split negative len is NULL", sdssplitlen("abc", -1, ",", 1, &n) == NULL);
    sds *t = sdssplitlen("k\0v\0", 4, "\0", 1, &n);
    CHECK("split binary separator NUL", t && n == 3 && EQS(t[0], "k") && EQS(t[1], "v") && EQS(t[2], ""));
    sdsfreesplitres(t, n);
    sdsfreesplitres(NULL, 0);

    char *argv[] = {"a", "bc", "", "d"};
    sds j = sdsjoin(argv, 4, ", ");
    CHECK("sdsjoin", EQS(j, "a, bc, , d"));
    sdsfree(j);
    j = sdsjoin(argv, 1, "-");
    CHECK("sdsjoin single", EQS(j, "a"));
    sdsfree(j);
    j = sdsjoin(argv, 0, "-");
    CHECK("sdsjoin none", EQS(j, ""));
    sdsfree(j);
}

static void test_numbers(void) {
    struct { long long v; const char *s; } c[] = {
        {0, "0"}, {7, "7"}, {-7, "-7"}, {1234567890123LL, "1234567890123"},
        {9223372036854775807LL, "9223372036854775807"}, {-9223372036854775807LL - 1, "-9223372036854775808"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "sdsfromlonglong %s", c[i].s);
        sds s = sdsfromlonglong(c[i].v);
        CHECK(name, eq(s, c[i].s, strlen(c[i].s)));
        sdsfree(s);
    }
}

static void test_room(void) {
    sds s = sdsempty();
    sds t = sdsMakeRoomFor(s, 10);
    CHECK("sdsMakeRoomFor doubles below 1MB", t && sdsavail(t) == 20 && sdslen(t) == 0);
    s = t;
    t = sdsMakeRoomFor(s, 5);
    CHECK("sdsMakeRoomFor no-op when room", t == s);
    memcpy(s, "abcdefgh", 8);
    sdsIncrLen(s, 8);
    CHECK("sdsIncrLen grow", EQS(s, "abcdefgh") && sdsavail(s) == 12);
    sdsIncrLen(s, -3);
    CHECK("sdsIncrLen shrink sets NUL", EQS(s, "abcde"));
    s[2] = '\0';
    sdsupdatelen(s);
    CHECK("sdsupdatelen", EQS(s, "ab"));
    t = sdsMakeRoomFor(s, SIZE_MAX);
    CHECK("sdsMakeRoomFor overflow -> NULL, original intact", t == NULL && EQS(s, "ab"));
    t = sdsMakeRoomFor(s, SIZE_MAX - 1);
    CHECK("sdsMakeRoomFor near-overflow -> NULL", t == NULL && EQS(s, "ab"));
    t = sdscatrepr(s, "x", SIZE_MAX / 2);
    CHECK("sdscatrepr size overflow -> NULL, original intact", t == NULL && EQS(s, "ab"));
    sdsfree(s);
    s = sdsempty();
    t = sdsMakeRoomFor(s, 2u << 20);
    CHECK("sdsMakeRoomFor +1MB above 1MB", t && sdsavail(t) == (3u << 20));
    sdsfree(t);
}

int main(void) {
    test_create();
    test_cat();
    test_printf();
    test_repr();
    test_trim_range();
    test_case_cmp();
    test_split_join();
    test_numbers();
    test_room();
    printf("unit_sds: %d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
