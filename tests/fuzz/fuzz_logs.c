/* fuzz_logs.c — libFuzzer harness for docker_demux (multiplexed container logs).
 * The input is split at a point taken from its first byte; the unconsumed rest of
 * the first part is carried over, as a streaming reader would. Fed whole or in two
 * parts, the output and the verdict must be the same. */
#define RCLUSTER_NO_MAIN
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "../../rcluster.c"

/* Report which invariant broke, then abort (libFuzzer saves the input). */
#define FAILX() (fprintf(stderr, "fuzz_logs: invariant failed at line %d\n", __LINE__), abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t len = size - 1;
    const char *in = (const char *)data + 1;
    size_t cut = len ? data[0] % (len + 1) : 0;

    char *whole = malloc(len ? len : 1);
    if (!whole) return 0;
    memcpy(whole, in, len);
    sds out1 = sdsempty();
    ssize_t n1 = docker_demux(whole, len, &out1);
    if (n1 < -1 || n1 > (ssize_t)len) FAILX();
    if (n1 >= 0 && sdslen(out1) > (size_t)n1) FAILX();

    sds out2 = sdsempty();
    sds pend = sdsnewlen(in, cut);
    ssize_t a = docker_demux(pend, sdslen(pend), &out2);
    ssize_t n2;
    if (a < 0) {
        n2 = a;
    } else {
        sdsrange(pend, a, -1);
        pend = sdscatlen(pend, in + cut, len - cut);
        ssize_t b = docker_demux(pend, sdslen(pend), &out2);
        n2 = b < 0 ? b : a + b;
    }
    /* A bad header in the first part is also bad whole; when both succeed they agree. */
    if (n1 >= 0 && n2 >= 0 && (n1 != n2 || sdslen(out1) != sdslen(out2) || memcmp(out1, out2, sdslen(out1)))) FAILX();
    if ((n1 < 0) != (n2 < 0)) FAILX();
    sdsfree(pend);
    sdsfree(out1);
    sdsfree(out2);
    free(whole);
    return 0;
}
