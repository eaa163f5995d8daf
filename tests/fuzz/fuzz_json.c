/* fuzz_json.c — libFuzzer harness for vendor/json.h: parse, walk the whole tree,
 * and round-trip every string through json_escape + json_parse. Also checks that
 * rc_json_str output is valid JSON that reads back the same. */
#define RCLUSTER_NO_MAIN
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "../../rcluster.c"
#include <math.h>

/* Report which invariant broke, then abort (libFuzzer saves the input). */
#define FAILX() (fprintf(stderr, "fuzz_json: invariant failed at line %d\n", __LINE__), abort())

static void roundtrip_string(const char *s, size_t len) {
    size_t n = json_escape(s, len, NULL);
    char *out = malloc(n + 1);
    if (!out) return;
    size_t n2 = json_escape(s, len, out);
    if (n2 != n) FAILX();
    json_error_s err;
    json_value_s *v = json_parse(out, n, &err);
    /* Strings from the parser are valid UTF-8: escaping must give a literal that
     * decodes to exactly the same bytes. */
    if (!v || json_type(v) != JSON_STRING || json_length(v) != len || memcmp(json_string(v), s, len)) FAILX();
    json_free(v);
    free(out);
}

/* Valid UTF-8 (the only input json_escape can turn into valid JSON)? */
static int is_utf8(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        if (*p < 0x80) { p++; continue; }
        size_t k = json__utf8len(p, end);
        if (!k) return 0;
        p += k;
    }
    return 1;
}

static size_t walk(const json_value_s *v, int depth, size_t *budget) {
    if (!v || !*budget) return 0;
    (*budget)--;
    size_t count = 1;
    switch (json_type(v)) {
    case JSON_ARRAY:
        for (size_t i = 0; i < json_length(v); i++) count += walk(json_at(v, i), depth + 1, budget);
        if (json_at(v, json_length(v)) != NULL) FAILX();
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < json_length(v); i++) {
            const char *k = json_member_key(v, i);
            if (!k) FAILX();
            /* lookups by key must find a member with that key (first wins) */
            if (!json_get(v, k)) FAILX();
            roundtrip_string(k, strlen(k));
            count += walk(json_member_value(v, i), depth + 1, budget);
        }
        break;
    case JSON_STRING: {
        const char *s = json_string(v);
        if (!s) FAILX();
        roundtrip_string(s, json_length(v));
        break;
    }
    case JSON_NUMBER: {
        if (!json_number_text(v)) FAILX();
        /* json.h converts without strtod: within 4 units in the last place of it (normal numbers) */
        double got = json_number(v, 0), want = strtod(json_number_text(v), NULL);
        if (isnormal(want) && !(fabs(got - want) <= fabs(want) * 9e-16)) FAILX();
        break;
    }
    default:
        break;
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    json_error_s err;
    json_value_s *v = json_parse(buf, size, &err);
    if (v) {
        size_t budget = 100000;
        walk(v, 0, &budget);
        json_free(v);
    } else if (err.offset > size) {
        FAILX();
    }
    /* The input as one string value: rc_json_str must produce valid JSON that reads
     * back as the same C string (json_escape passes bytes >= 0x80 through, so only
     * valid UTF-8 can round-trip). */
    char *z = malloc(size + 1);
    if (z) {
        memcpy(z, data, size);
        z[size] = 0;
        sds s = rc_json_str(sdsempty(), z);
        if (s && is_utf8(z, strlen(z))) {
            json_value_s *w = json_parse(s, sdslen(s), NULL);
            if (!w || json_type(w) != JSON_STRING || strcmp(json_string(w), z)) FAILX();
            json_free(w);
        }
        sdsfree(s);
        free(z);
    }
    free(buf);
    return 0;
}
