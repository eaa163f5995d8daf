/* fuzz_elf.c — libFuzzer harness for the ELF reader used by `rcluster image`
 * (elf_parse: PT_INTERP, DT_NEEDED, DT_RUNPATH/DT_RPATH). Any byte sequence must
 * give 0 or -1 with a reason and nothing leaked; what it returns must be sane and
 * usable by image_search_path. */
#define RCLUSTER_NO_MAIN
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "../../rcluster.c"

/* Report which invariant broke, then abort (libFuzzer saves the input). */
#define FAILX() (fprintf(stderr, "fuzz_elf: invariant failed at line %d\n", __LINE__), abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    struct elf_info e;
    const char *why = (const char *)1;
    int r = elf_parse(buf, size, &e, &why);
    if (r == 0) {
        if (why || (e.cls != 1 && e.cls != 2) || e.nneeded < 0 || e.nneeded > 64) FAILX();
        for (int i = 0; i < e.nneeded; i++)
            if (!e.needed[i] || !sdslen(e.needed[i]) || strchr(e.needed[i], '/')) FAILX();
        if (e.interp && strlen(e.interp) > 4096) FAILX();
        sds sp = image_search_path("/usr/bin/redis-server", e.runpath, "/etc/ld:");
        if (sp && !strstr(sp, "/usr/lib")) FAILX();
        sdsfree(sp);
        elf_info_free(&e);
    } else {
        if (r != -1 || !why || e.interp || e.runpath || e.nneeded) FAILX();
    }
    free(buf);
    return 0;
}
