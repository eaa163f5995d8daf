/* fuzz_http.c — libFuzzer harness for the HTTP/1.1 response parser. The first byte
 * picks the limits and the read size; the rest is fed in pieces. Checks: no crash or
 * leak, the body never exceeds max_body, consumed bytes never exceed the input, the
 * same input fed whole gives the same outcome and body, and the header lookups work
 * on whatever head was kept. */
#define RCLUSTER_NO_MAIN
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "../../rcluster.c"

/* Report which invariant broke, then abort (libFuzzer saves the input). */
#define FAILX() (fprintf(stderr, "fuzz_http: invariant failed at line %d\n", __LINE__), abort())

struct outcome { int ret; int done; int status; sds body; size_t consumed; };

static struct outcome run(const char *in, size_t len, size_t step, uint64_t max_body, int head, int eof) {
    struct http_parser p;
    http_parser_init(&p, max_body, head);
    struct outcome o = { 0, 0, 0, sdsempty(), 0 };
    size_t pos = 0;
    while (pos < len && !http_parser_done(&p)) {
        size_t n = len - pos < step ? len - pos : step;
        char *piece = malloc(n);
        if (!piece) break;
        memcpy(piece, in + pos, n);
        ssize_t c = http_parser_feed(&p, piece, n, http_sink_sds, &o.body);
        free(piece);
        if (c < 0) { o.ret = -1; if (!p.error) FAILX(); break; }
        if ((size_t)c > n) FAILX();
        o.consumed += (size_t)c;
        pos += (size_t)c;
        if ((size_t)c < n && !http_parser_done(&p)) FAILX();   /* stops early only at the end */
    }
    if (o.ret == 0 && eof && !http_parser_done(&p) && http_parser_eof(&p) < 0) o.ret = -2;
    if (sdslen(o.body) > max_body || p.body_len != sdslen(o.body)) FAILX();
    size_t vl;
    const char *v = http_header(&p, "content-type", &vl);
    if (v && (v < p.head || v + vl > p.head + sdslen(p.head))) FAILX();
    v = http_header(&p, "connection", &vl);
    if (v) (void)http_value_has_token(v, vl, "close");
    sds reason = http_reason(&p);
    sdsfree(reason);
    o.done = http_parser_done(&p);
    o.status = p.status;
    http_parser_free(&p);
    return o;
}

static int count_line(void *ud, const char *line, size_t len) {
    if (len == 0 || len > HTTP_MAX_LINE || memchr(line, '\n', len)) FAILX();
    *(size_t *)ud += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t ctl = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    static const uint64_t limits[4] = { 0, 16, 1 << 20, UINT64_MAX };
    uint64_t max_body = limits[ctl & 3];
    int head = (ctl >> 2) & 1, eof = (ctl >> 3) & 1;
    size_t step = (size_t)(ctl >> 4) + 1;
    struct outcome a = run(in, len, step, max_body, head, eof);
    struct outcome b = run(in, len, len ? len : 1, max_body, head, eof);
    /* Chunking the input must not change the result. */
    if (a.ret != b.ret || a.done != b.done) FAILX();
    /* On success the consumed bytes and the body agree too (on an error, the pieces
     * before the bad byte were already consumed and delivered). */
    if (a.ret == 0 && (a.consumed != b.consumed || a.status != b.status || sdslen(a.body) != sdslen(b.body) ||
                       memcmp(a.body, b.body, sdslen(a.body))))
        FAILX();
    sdsfree(a.body);
    sdsfree(b.body);
    /* The line sink on the raw input, in steps: no line over the limit, no LF inside. */
    size_t total = 0;
    struct http_lines l = { sdsempty(), count_line, &total, 0 };
    for (size_t pos = 0; pos < len; pos += step)
        if (http_sink_lines(&l, in + pos, len - pos < step ? len - pos : step) < 0) break;
    http_lines_flush(&l);
    if (total > len) FAILX();
    sdsfree(l.buf);
    return 0;
}
