/* fuzz_rdb.c — libFuzzer harness for the RDB reader (rdb_walk and what it calls).
 * Checks: no crash, leak or over-read on any input; a walk ends at the end of the input
 * or with a message; every key handed to the visitor lies inside the input; a walk
 * that succeeded also succeeds on its own RESTORE payloads' value bytes (each value is
 * stepped over to exactly its length again); re-encoding for other servers never
 * crashes, and what it makes steps over to exactly its length. */
#define RCLUSTER_NO_MAIN
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "../../rcluster.c"

#define FAILX() (fprintf(stderr, "fuzz_rdb: invariant failed at line %d\n", __LINE__), abort())

struct fz { const unsigned char *buf; size_t len; int keys; const struct rdb_rd *walk; };

static int fz_on_key(void *ctx, const struct rdb_key *k) {
    struct fz *f = ctx;
    if (k->val < f->buf || k->val + k->vlen > f->buf + f->len) FAILX();
    /* the value alone steps over to exactly its length */
    struct rdb_rd r;
    memset(&r, 0, sizeof r);
    r.p = k->val;
    r.len = k->vlen;
    r.valkey = f->walk->valkey;   /* the numbering of the file's family */
    if (rdb_skip_value(&r, k->type) != 0 || r.pos != k->vlen) FAILX();
    /* re-encoding for older servers, Valkey 9 and Redis 8: never crashes; what comes out
     * steps over to exactly its length as the type it says, in its family */
    static const int targets[][2] = { { 10, 0 }, { 11, 0 }, { 11, 1 }, { 14, 0 } };
    struct rdb_head h = { "", f->walk->valkey, f->walk->valkey ? 80 : 14 };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        if (rs_payload_version(&h, targets[i][0], targets[i][1], k->type) >= 0) continue;
        unsigned t = k->type;
        int ver = -1, corrupt = 0;
        const char *why = NULL;
        sds d = rdb_reencode(&h, &t, &ver, k->val, k->vlen, targets[i][0], targets[i][1], &why, &corrupt);
        if (d) {
            struct rdb_rd r2;
            memset(&r2, 0, sizeof r2);
            r2.p = (const unsigned char *)d;
            r2.len = sdslen(d);
            r2.valkey = ver == 80;   /* Valkey's HASH_2 goes as 80; the rest in either numbering */
            if (ver < 0 || rdb_skip_value(&r2, t) != 0 || r2.pos != sdslen(d)) FAILX();
        }
        if (!d && corrupt && !why) FAILX();
        sdsfree(d);
    }
    sds p = rdb_dump_payload(k->type, k->val, k->vlen, 10);
    if (!p || sdslen(p) != k->vlen + 11) FAILX();
    sdsfree(p);
    f->keys++;
    return 0;
}

static int fz_on_fn(void *ctx, const unsigned char *enc, size_t len) {
    struct fz *f = ctx;
    if (enc < f->buf || enc + len > f->buf + f->len) FAILX();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    for (int verify = 0; verify < 2; verify++) {
        struct rdb_rd r;
        struct rdb_head h;
        struct fz f = { buf, size, 0, &r };
        memset(&r, 0, sizeof r);
        r.p = buf;
        r.len = size;
        struct rdb_visitor v = { fz_on_key, fz_on_fn, &f, verify };
        int w = rdb_walk(&r, &h, &v);
        if (w == 0 && r.pos != size) FAILX();
        if (w == RDB_WALK_BAD && (!r.failed || !r.msg[0] || r.at > size)) FAILX();
        if (w == RDB_WALK_STOPPED) FAILX();
    }
    free(buf);
    return 0;
}
