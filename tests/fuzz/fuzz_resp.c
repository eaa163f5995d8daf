/* fuzz_resp.c — libFuzzer harness for the RESP reply parser (resp_scan/resp_parse).
 * Checks: no crash/leak; resp_scan and resp_parse agree; a parsed reply consumed
 * `used` bytes; every prefix of a complete reply is incomplete (0); the buffer
 * parses as a sequence of replies one by one; resp_append_command round-trips. */
#define RCLUSTER_NO_MAIN
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "../../rcluster.c"

/* Report which invariant broke, then abort (libFuzzer saves the input). */
#define FAILX() (fprintf(stderr, "fuzz_resp: invariant failed at line %d\n", __LINE__), abort())

static int same_tree(const struct resp *a, const struct resp *b) {
    if (a->type != b->type || a->n != b->n || a->integer != b->integer) return 0;
    if ((a->str == NULL) != (b->str == NULL)) return 0;
    if (a->str && (sdslen(a->str) != sdslen(b->str) || memcmp(a->str, b->str, sdslen(a->str)))) return 0;
    for (size_t i = 0; i < a->n; i++) if (!same_tree(a->elem[i], b->elem[i])) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exact-size copy so reads past the end are caught */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    size_t pos = 0;
    int replies = 0;
    while (pos < size && replies < 64) {
        size_t used = 0, end = 0;
        struct resp *r = NULL;
        const char *why = NULL, *why2 = NULL;
        int ret = resp_parse(buf + pos, size - pos, &used, &r, &why);
        int sret = resp_scan(buf + pos, size - pos, &end, &why2);
        if (ret != sret) FAILX();
        if (ret < 0 && !why) FAILX();
        if (ret <= 0) break;
        if (!r || used == 0 || used > size - pos || used != end) FAILX();
        /* a prefix of a complete reply is incomplete; check a few cut points */
        for (size_t k = 0; k < used; k += (used / 8) + 1) {
            size_t e2;
            const char *w;
            if (resp_scan(buf + pos, k, &e2, &w) != 0) FAILX();
        }
        /* Re-encode bulk arrays as a command and parse again: same tree. */
        if (r->type == RESP_ARRAY && r->n > 0 && r->n <= 64) {
            const char *argv[64];
            size_t lens[64];
            int all_bulk = 1;
            for (size_t i = 0; i < r->n; i++) {
                if (r->elem[i]->type != RESP_BULK) { all_bulk = 0; break; }
                argv[i] = r->elem[i]->str;
                lens[i] = sdslen(r->elem[i]->str);
            }
            if (all_bulk) {
                sds enc = resp_append_command(sdsempty(), (int)r->n, argv, lens);
                struct resp *r2 = NULL;
                size_t u2 = 0;
                const char *w2 = NULL;
                if (!enc || resp_parse(enc, sdslen(enc), &u2, &r2, &w2) != 1 || u2 != sdslen(enc) || !same_tree(r, r2))
                    FAILX();
                resp_free(r2);
                sdsfree(enc);
            }
        }
        resp_free(r);
        pos += used;
        replies++;
    }
    free(buf);
    return 0;
}
