/* fuzz_addr.c — libFuzzer harness for address and CLUSTER NODES parsing:
 * addr_split on the input as a C string, cview_parse on the whole input, and the
 * per-line helpers. Checks invariants on everything that parsed. */
#define RCLUSTER_NO_MAIN
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "../../rcluster.c"

/* Report which invariant broke, then abort (libFuzzer saves the input). */
#define FAILX() (fprintf(stderr, "fuzz_addr: invariant failed at line %d\n", __LINE__), abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* addr_split: the first line as a C string */
    size_t l = 0;
    while (l < size && data[l] != '\n' && data[l] != 0) l++;
    char *s = malloc(l + 1);
    if (!s) return 0;
    memcpy(s, data, l);
    s[l] = 0;
    struct addr a;
    if (addr_split(s, &a) == 0) {
        if (a.port < 1 || a.port > 65535 || a.bus < 0 || a.bus > 65535) FAILX();
        size_t hl = strnlen(a.host, sizeof a.host);
        if (hl == 0 || hl >= sizeof a.host) FAILX();
        if (addr_bus(&a) < 1 || addr_bus(&a) > 65535 + 10000) FAILX();
    }
    /* slot of the line as a key */
    if (cluster_key_slot(s, l) >= CLUSTER_SLOTS) FAILX();
    free(s);

    /* cview_parse on an exact-size copy */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    struct cview v;
    int r = cview_parse(buf, size, &v);
    if (r == 0) {
        for (int i = 0; i < v.n; i++) {
            struct nodeinfo *ni = &v.nodes[i];
            /* The id is 40 bytes, NUL-terminated. (Its bytes are not validated as hex:
             * an id with a NUL inside is accepted; see the unit test cview.bad.id-not-hex.) */
            if (ni->id[40] != 0 || ni->master[40] != 0 || strlen(ni->ip) >= sizeof ni->ip) FAILX();
            if (ni->port < 0 || ni->port > 65535 || ni->bus < 0 || ni->bus > 65535 + 10000) FAILX();
            int count = nodeinfo_slot_count(ni);
            if (count < 0 || count > CLUSTER_SLOTS * 4096) FAILX();
            for (int k = 0; k < ni->nranges; k++)
                if (ni->ranges[k][0] < 0 || ni->ranges[k][1] >= CLUSTER_SLOTS || ni->ranges[k][0] > ni->ranges[k][1]) FAILX();
            sds ss = nodeinfo_slots_str(ni);
            sdsfree(ss);
            if (cview_find(&v, ni->id) == NULL) FAILX();   /* finds this node or one with an equal id */
        }
        (void)cview_myself(&v);
        cview_free(&v);
    } else if (v.n != 0 || v.nodes != NULL) {
        FAILX();
    }
    /* info_field on the text as INFO output */
    char *z = malloc(size + 1);
    if (z) {
        memcpy(z, data, size);
        z[size] = 0;
        char out[32];
        if (info_field(z, "role", out, sizeof out) == 0 && strlen(out) >= sizeof out) FAILX();
        info_field(z, "cluster_state", out, sizeof out);
        free(z);
    }
    free(buf);
    return 0;
}
