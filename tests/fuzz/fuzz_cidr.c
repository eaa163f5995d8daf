/* fuzz_cidr.c — libFuzzer harness for the IPv4/CIDR helpers, name and --config
 * directive validation, and DOCKER_HOST parsing. Checks the parsers against their
 * printers (parse(format(x)) == x) and the set relations for overlap/private. */
#define RCLUSTER_NO_MAIN
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "../../rcluster.c"

/* Report which invariant broke, then abort (libFuzzer saves the input). */
#define FAILX() (fprintf(stderr, "fuzz_cidr: invariant failed at line %d\n", __LINE__), abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;

    uint32_t ip;
    if (conf_parse_ipv4(s, &ip) == 0) {
        char back[16];
        conf_format_ipv4(ip, back);
        if (strcmp(back, s)) FAILX();   /* strict: the canonical text only */
    }
    uint32_t net;
    int prefix;
    if (conf_parse_cidr(s, &net, &prefix) == 0) {
        if (prefix < 0 || prefix > 32 || (net & ~conf_mask(prefix))) FAILX();
        char back[32], ipt[16];
        conf_format_ipv4(net, ipt);
        snprintf(back, sizeof back, "%s/%d", ipt, prefix);
        uint32_t n2;
        int p2;
        if (conf_parse_cidr(back, &n2, &p2) || n2 != net || p2 != prefix) FAILX();
        if (!conf_cidr_overlap(net, prefix, net, prefix)) FAILX();
        /* A network overlaps every network it contains and everything containing it. */
        for (int q = 0; q <= 32; q++) {
            uint32_t sup = net & conf_mask(q);
            if (!conf_cidr_overlap(net, prefix, sup, q) || !conf_cidr_overlap(sup, q, net, prefix)) FAILX();
        }
        /* Private means inside one of the RFC 1918 blocks: check against host addresses. */
        if (conf_cidr_is_private(net, prefix)) {
            uint32_t last = net | ~conf_mask(prefix);
            if (!conf_cidr_is_private(net, 32) || !conf_cidr_is_private(last, 32)) FAILX();
        }
        char host[16];
        if (conf_cidr_host(net, prefix, 10, host) == 0) {
            uint32_t h;
            if (conf_parse_ipv4(host, &h) || (h & conf_mask(prefix)) != net || h == net || h == (net | ~conf_mask(prefix))) FAILX();
        }
    }
    /* Two CIDRs from the two halves: overlap must be symmetric and agree with a
     * containment test on the network addresses. */
    if (size >= 10) {
        uint32_t a = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
        uint32_t b = (uint32_t)data[4] << 24 | (uint32_t)data[5] << 16 | (uint32_t)data[6] << 8 | data[7];
        int ap = data[8] % 33, bp = data[9] % 33;
        a &= conf_mask(ap);
        b &= conf_mask(bp);
        int o = conf_cidr_overlap(a, ap, b, bp);
        if (o != conf_cidr_overlap(b, bp, a, ap)) FAILX();
        int expect = ap <= bp ? (b & conf_mask(ap)) == a : (a & conf_mask(bp)) == b;
        if (o != expect) FAILX();
    }
    (void)conf_valid_name(s);
    const char *why = conf_check_directive(s);
    if (!why) {
        /* accepted directives are one line and not owned */
        if (strpbrk(s, "\r\n")) FAILX();
    }
    /* DOCKER_HOST parsing */
    struct rc rc;
    memset(&rc, 0, sizeof rc);
    struct docker d;
    memset(&d, 0, sizeof d);
    d.rc = &rc;
    http_conn_init(&d.conn, "docker");
    if (docker_parse_host(&rc, &d, s) == 0) {
        if (!d.target || !d.host_header) FAILX();
        if (d.tcp && (d.port < 1 || d.port > 65535 || sdslen(d.target) == 0)) FAILX();
    }
    docker_free(&d);
    sdsfree(rc.err);
    /* Image reference split */
    sds repo, tag;
    if (docker_split_ref(s, &repo, &tag) == 0) { sdsfree(repo); sdsfree(tag); }
    sds u = docker_urlencode(sdsempty(), s);
    if (u) for (size_t i = 0; i < sdslen(u); i++) if (!isalnum((unsigned char)u[i]) && !strchr("-._~%", u[i])) FAILX();
    sdsfree(u);
    free(s);
    return 0;
}
