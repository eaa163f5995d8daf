/* rcluster — one static binary: Docker Engine API + RESP -> a healthy Redis Cluster.
 *
 * Contents                              Protocol surface (everything outside this file)
 *  1. Basics: context, errors, time,     Engine API (HTTP/1.1, unix socket or tcp://):
 *     output, small parsers                GET  /_ping                      (Api-Version header)
 *  2. Sockets: unix/tcp, timeouts          GET  /vX/networks?filters=..., /networks/{id}
 *  3. HTTP/1.1 client (incremental          POST /vX/networks/create, DELETE /networks/{id}
 *     response parser, chunked)            GET  /vX/containers/json?all=1&filters=...
 *  4. Docker Engine API                    POST /vX/containers/create?name=, /{id}/start, /{id}/stop
 *  5. RESP client                          DELETE /vX/containers/{id}?force=1&v=0
 *  6. Cluster model (nodes, slots,         GET  /vX/containers/{id}/json, /{id}/logs
 *     CLUSTER NODES parsing, layout)       GET  /vX/images/{name}/json
 *  7. Cluster engine (preflight, apply,    POST /vX/images/create?fromImage= | ?fromSrc=-
 *     wait, diagnose, check)               POST /vX/images/load
 *  8. Node configs and data layout       Redis (RESP2 over TCP):
 *  9. Commands: create, check, up,         AUTH, PING, INFO, DBSIZE, CONFIG GET/SET,
 *     down, status, image                  CLUSTER INFO|NODES|SLOTS|MYID|MEET|ADDSLOTS|
 * 10. Option parsing and main              ADDSLOTSRANGE|SET-CONFIG-EPOCH|REPLICATE
 *
 * Conventions: functions return 0 / -1 (or NULL) and leave a message in rc->err that
 * says what was attempted and the peer's own words; only main() turns it into an exit
 * code. Every growing string is an sds. One context struct (struct rc) is passed down.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vendor/sds.h"
#define JSON_IMPLEMENTATION
#include "vendor/json.h"

#define RCLUSTER_VERSION "0.1.0"

/* ====================================================================== */
/* 1. Basics: the context, errors as values, time, output, small parsers   */
/* ====================================================================== */

/* Exit codes, documented in --help. */
enum { RC_EXIT_OK = 0, RC_EXIT_FAIL = 1, RC_EXIT_USAGE = 2, RC_EXIT_UNHEALTHY = 3,
       RC_EXIT_INTERRUPTED = 130 };

/* The only file-scope mutable state: a signal handler can do nothing else. Loops that
 * wait check it through rc_interrupted() and unwind normally, so cleanup still runs. */
static volatile sig_atomic_t rc_got_signal;

struct rc_password_src;

/* Everything a command needs: options, output mode and the error slot. */
struct rc {
    sds err;              /* last failure: what was attempted and why */
    int json;             /* --json: results as JSON on stdout */
    int color;            /* ANSI colours on stderr (TTY and no NO_COLOR) */
    int quiet;            /* no progress lines */
    int yes;              /* --yes: no confirmation prompt */
    int dry_run;          /* --dry-run: print requests, change nothing */
    int verbose;
    double timeout;       /* seconds for the whole wait phase (--timeout) */
    int io_timeout_ms;    /* per network operation */
    sds user;             /* --user for AUTH (ACL) or NULL */
    sds password;         /* --password / --password-file / RCLUSTER_PASSWORD, or NULL */
    sds docker_host;      /* DOCKER_HOST or the default unix socket */
    sds api_version;      /* negotiated Engine API version, e.g. "1.41" */
    int64_t t0;           /* start of the command, for progress timestamps */
    int usage_error;      /* the failure was bad usage: exit 2 instead of 1 */
};

/* Monotonic milliseconds, for deadlines and measurements. */
static int64_t rc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rc_sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR && !rc_got_signal) {}
}

static int rc_interrupted(void) { return rc_got_signal != 0; }

static void rc_on_signal(int sig) { rc_got_signal = sig; }

/* SIGINT/SIGTERM set a flag instead of killing us, so that restore paths run;
 * SIGPIPE is ignored because a peer closing a socket is an error value, not a death. */
static void rc_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rc_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Replace the error message. Always returns -1 so callers can `return rc_fail(...)`. */
static int rc_fail(struct rc *rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds msg = sdscatvprintf(sdsempty(), fmt, ap);
    va_end(ap);
    if (msg) { sdsfree(rc->err); rc->err = msg; }
    return -1;
}

/* Prefix the current error with context ("creating network redis: <old message>"). */
static int rc_wrap(struct rc *rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds msg = sdscatvprintf(sdsempty(), fmt, ap);
    va_end(ap);
    if (!msg) return -1;
    if (rc->err && sdslen(rc->err)) {
        sds joined = sdscatprintf(msg, ": %s", rc->err);
        if (!joined) { sdsfree(msg); return -1; }
        msg = joined;
    }
    sdsfree(rc->err);
    rc->err = msg;
    return -1;
}

static int rc_fail_errno(struct rc *rc, const char *what) {
    return rc_fail(rc, "%s: %s", what, strerror(errno));
}

static int rc_fail_oom(struct rc *rc) { return rc_fail(rc, "out of memory"); }

/* Progress and warnings go to stderr; results go to stdout. */
static void rc_vlog(struct rc *rc, const char *tag, const char *colour, const char *fmt, va_list ap) {
    if (rc->quiet && tag[0] == '>') return;
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    if (rc->color) fprintf(stderr, "%s%s\033[0m %s\n", colour, tag, line);
    else fprintf(stderr, "%s %s\n", tag, line);
}

static void rc_progress(struct rc *rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rc_vlog(rc, ">>>", "\033[36m", fmt, ap);
    va_end(ap);
}

static void rc_warn(struct rc *rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rc_vlog(rc, "warning:", "\033[33m", fmt, ap);
    va_end(ap);
}

/* Parse a whole decimal integer in [lo, hi]; rejects sign junk, spaces and overflow. */
static int rc_parse_int(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    if (!isdigit((unsigned char)s[0]) && s[0] != '-') return -1;
    *out = v;
    return 0;
}

/* Read a whole small file (password files, configs) with a size bound. */
static sds rc_read_file(struct rc *rc, const char *path, size_t max) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { rc_fail(rc, "reading %s: %s", path, strerror(errno)); return NULL; }
    sds s = sdsempty();
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { rc_fail(rc, "reading %s: %s", path, strerror(errno)); break; }
        if (n == 0) { close(fd); return s; }
        if (sdslen(s) + (size_t)n > max) { rc_fail(rc, "reading %s: larger than %zu bytes", path, max); break; }
        sds t = sdscatlen(s, buf, (size_t)n);
        if (!t) { rc_fail_oom(rc); break; }
        s = t;
    }
    close(fd);
    sdsfree(s);
    return NULL;
}

/* Write a file atomically (tmp + rename) with the given mode; checks every write. */
static int rc_write_file(struct rc *rc, const char *path, const char *data, size_t len, mode_t mode) {
    sds tmp = sdscatprintf(sdsempty(), "%s.tmp.%ld", path, (long)getpid());
    if (!tmp) return rc_fail_oom(rc);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) { rc_fail(rc, "writing %s: %s", path, strerror(errno)); sdsfree(tmp); return -1; }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { rc_fail(rc, "writing %s: %s", path, n < 0 ? strerror(errno) : "short write"); goto fail; }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0) { rc_fail(rc, "writing %s: %s", path, strerror(errno)); goto fail; }
    if (close(fd) < 0) { fd = -1; rc_fail(rc, "writing %s: %s", path, strerror(errno)); goto fail; }
    fd = -1;
    if (rename(tmp, path) < 0) { rc_fail(rc, "writing %s: %s", path, strerror(errno)); goto fail; }
    sdsfree(tmp);
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    sdsfree(tmp);
    return -1;
}

/* Append a JSON string literal (quoted, escaped) to s; never build JSON with raw %s. */
static sds rc_json_str(sds s, const char *v) {
    if (!s) return NULL;
    if (!v) return sdscat(s, "null");
    size_t n = json_escape(v, strlen(v), NULL);
    s = sdsMakeRoomFor(s, n + 1);
    if (!s) return NULL;
    json_escape(v, strlen(v), s + sdslen(s));
    sdsIncrLen(s, (ssize_t)n);
    return s;
}

/* A confirmation prompt on a TTY; without a TTY the caller must have --yes. */
static int rc_confirm(struct rc *rc, const char *question) {
    if (rc->yes) return 0;
    if (!isatty(STDIN_FILENO))
        return rc_fail(rc, "%s: refusing without --yes (stdin is not a terminal)", question);
    fprintf(stderr, "%s (type 'yes' to accept): ", question);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return rc_fail(rc, "%s: no answer", question);
    line[strcspn(line, "\r\n")] = 0;
    if (strcmp(line, "yes") != 0) return rc_fail(rc, "%s: not confirmed, nothing changed", question);
    return 0;
}

/* Options every command accepts. Commands list these in their getopt_long tables
 * (RC_COMMON_LONGOPTS) and hand unknown-to-them codes to rc_parse_common(). */
enum { OPT_JSON = 1000, OPT_YES, OPT_TIMEOUT, OPT_PASSWORD, OPT_PASSWORD_FILE, OPT_USER,
       OPT_QUIET, OPT_NO_COLOR, OPT_VERBOSE, OPT_FIRST_COMMAND_OPT = 1100 };
#define RC_COMMON_LONGOPTS \
    { "json", no_argument, NULL, OPT_JSON }, { "yes", no_argument, NULL, OPT_YES }, \
    { "timeout", required_argument, NULL, OPT_TIMEOUT }, \
    { "password", required_argument, NULL, OPT_PASSWORD }, \
    { "password-file", required_argument, NULL, OPT_PASSWORD_FILE }, \
    { "user", required_argument, NULL, OPT_USER }, { "quiet", no_argument, NULL, OPT_QUIET }, \
    { "no-color", no_argument, NULL, OPT_NO_COLOR }, { "verbose", no_argument, NULL, OPT_VERBOSE }

/* Returns 0 if handled, -1 with rc->err set on a bad value. */
static int rc_parse_common(struct rc *rc, int opt, const char *arg) {
    switch (opt) {
    case OPT_JSON: rc->json = 1; return 0;
    case OPT_YES: rc->yes = 1; return 0;
    case OPT_QUIET: rc->quiet = 1; return 0;
    case OPT_NO_COLOR: rc->color = 0; return 0;
    case OPT_VERBOSE: rc->verbose = 1; return 0;
    case OPT_TIMEOUT: {
        char *end;
        errno = 0;
        double t = strtod(arg, &end);
        if (errno || *end || end == arg || !(t > 0 && t <= 86400))
            return rc_fail(rc, "--timeout: expected seconds between 0 and 86400, got '%s'", arg);
        rc->timeout = t;
        return 0;
    }
    case OPT_USER:
        sdsfree(rc->user);
        rc->user = sdsnew(arg);
        return rc->user ? 0 : rc_fail_oom(rc);
    case OPT_PASSWORD:
        sdsfree(rc->password);
        rc->password = sdsnew(arg);
        return rc->password ? 0 : rc_fail_oom(rc);
    case OPT_PASSWORD_FILE: {
        sds p = rc_read_file(rc, arg, 4096);
        if (!p) return rc_wrap(rc, "--password-file");
        sdstrim(p, "\r\n");
        if (sdslen(p) == 0 || strpbrk(p, "\r\n")) { sdsfree(p); return rc_fail(rc, "--password-file %s: expected one non-empty line", arg); }
        sdsfree(rc->password);
        rc->password = p;
        return 0;
    }
    }
    return rc_fail(rc, "unknown option");
}

/* ====================================================================== */
/* 2. Sockets: unix and TCP connect with timeouts, bounded reads/writes    */
/* ====================================================================== */

static int net_set_nonblock(int fd, int on) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

/* Wait until fd is ready for `events` or the deadline (monotonic ms) passes.
 * Returns 1 ready, 0 timed out, -1 error (errno set); EINTR without a signal flag retries. */
static int net_wait(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - rc_now_ms();
        if (left <= 0) return 0;
        struct pollfd p = { fd, events, 0 };
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r < 0 && errno == EINTR) { if (rc_interrupted()) return -1; continue; }
        return r < 0 ? -1 : (r > 0 ? 1 : 0);
    }
}

/* Finish a non-blocking connect on fd within timeout_ms; `what` names the peer in errors. */
static int net_finish_connect(struct rc *rc, int fd, const struct sockaddr *sa, socklen_t salen,
                              int timeout_ms, const char *what) {
    if (connect(fd, sa, salen) == 0) return 0;
    if (errno != EINPROGRESS && errno != EAGAIN)
        return rc_fail(rc, "connecting to %s: %s", what, strerror(errno));
    int r = net_wait(fd, POLLOUT, rc_now_ms() + timeout_ms);
    if (r == 0) return rc_fail(rc, "connecting to %s: timed out after %d ms", what, timeout_ms);
    if (r < 0) return rc_fail(rc, "connecting to %s: %s", what, rc_interrupted() ? "interrupted" : strerror(errno));
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
    if (soerr) return rc_fail(rc, "connecting to %s: %s", what, strerror(soerr));
    return 0;
}

/* Connect to a unix socket; returns a non-blocking fd or -1. */
static int net_connect_unix(struct rc *rc, const char *path, int timeout_ms) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) return rc_fail(rc, "unix socket path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return rc_fail_errno(rc, "creating a unix socket");
    if (net_finish_connect(rc, fd, (struct sockaddr *)&sa, sizeof sa, timeout_ms, path) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Resolve host (name or IPv4/IPv6 literal) to a numeric address string. */
static int net_resolve(struct rc *rc, const char *host, char *out, size_t outlen) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo(host, NULL, &hints, &res);
    if (e != 0 || !res) return rc_fail(rc, "resolving %s: %s", host, e ? gai_strerror(e) : "no address");
    int ok = getnameinfo(res->ai_addr, res->ai_addrlen, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(res);
    if (ok != 0) return rc_fail(rc, "resolving %s: %s", host, gai_strerror(ok));
    return 0;
}

/* Connect over TCP to a numeric or named host; returns a non-blocking fd or -1. */
static int net_connect_tcp(struct rc *rc, const char *host, int port, int timeout_ms) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    char what[300];
    snprintf(what, sizeof what, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    int e = getaddrinfo(host, portstr, &hints, &res);
    if (e != 0 || !res) return rc_fail(rc, "resolving %s: %s", what, e ? gai_strerror(e) : "no address");
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { freeaddrinfo(res); return rc_fail_errno(rc, "creating a TCP socket"); }
    int r = net_finish_connect(rc, fd, res->ai_addr, res->ai_addrlen, timeout_ms, what);
    freeaddrinfo(res);
    if (r < 0) { close(fd); return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Write all of buf before the deadline. `what` names the peer in errors. */
static int net_write_all(struct rc *rc, int fd, const char *buf, size_t len, int64_t deadline, const char *what) {
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) { off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = net_wait(fd, POLLOUT, deadline);
            if (r == 0) return rc_fail(rc, "writing to %s: timed out", what);
            if (r < 0) return rc_fail(rc, "writing to %s: %s", what, rc_interrupted() ? "interrupted" : strerror(errno));
            continue;
        }
        return rc_fail(rc, "writing to %s: %s", what, n < 0 ? strerror(errno) : "connection closed");
    }
    return 0;
}

/* Read what is available (at least one byte) before the deadline.
 * Returns bytes read, 0 on orderly close by the peer, -1 on error or timeout. */
static ssize_t net_read_some(struct rc *rc, int fd, char *buf, size_t cap, int64_t deadline, const char *what) {
    for (;;) {
        ssize_t n = recv(fd, buf, cap, 0);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int r = net_wait(fd, POLLIN, deadline);
            if (r == 0) { rc_fail(rc, "reading from %s: timed out", what); return -1; }
            if (r < 0) { rc_fail(rc, "reading from %s: %s", what, rc_interrupted() ? "interrupted" : strerror(errno)); return -1; }
            continue;
        }
        rc_fail(rc, "reading from %s: %s", what, strerror(errno));
        return -1;
    }
}

/* ====================================================================== */
/* 5. RESP client: command encoding, a bounded reply parser, connections   */
/* ====================================================================== */

/* Limits that keep a hostile or broken peer from exhausting memory or stack. */
#define RESP_MAX_BULK   (64L * 1024 * 1024)
#define RESP_MAX_ELEMS  (1024L * 1024)
#define RESP_MAX_DEPTH  16
#define RESP_MAX_LINE   (64 * 1024)

enum { RESP_STATUS = 1, RESP_ERROR, RESP_INTEGER, RESP_BULK, RESP_ARRAY, RESP_NIL };

struct resp {
    int type;
    long long integer;      /* RESP_INTEGER */
    sds str;                /* RESP_STATUS, RESP_ERROR, RESP_BULK */
    size_t n;               /* RESP_ARRAY */
    struct resp **elem;
};

static void resp_free(struct resp *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) resp_free(r->elem[i]);
    free(r->elem);
    sdsfree(r->str);
    free(r);
}

/* Append one command as a RESP array of bulk strings (binary-safe). NULL on OOM
 * (the input is freed then, so callers need only check the result). */
static sds resp_append_command(sds out, int argc, const char **argv, const size_t *lens) {
    sds t = sdscatprintf(out, "*%d\r\n", argc);
    if (!t) { sdsfree(out); return NULL; }
    out = t;
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        t = sdscatprintf(out, "$%zu\r\n", len);
        if (t) out = t;
        if (t) t = sdscatlen(out, argv[i], len);
        if (t) out = t;
        if (t) t = sdscatlen(out, "\r\n", 2);
        if (!t) { sdsfree(out); return NULL; }
        out = t;
    }
    return out;
}

/* Find the CRLF-terminated line starting at p. Returns the offset of '\r', -1 when the
 * line is incomplete, -2 when it is longer than the limit or holds a bare CR/LF. */
static long resp_find_line(const char *p, size_t avail) {
    size_t lim = avail < RESP_MAX_LINE ? avail : RESP_MAX_LINE;
    for (size_t i = 0; i < lim; i++) {
        if (p[i] == '\n') return -2;
        if (p[i] == '\r') {
            if (i + 1 >= avail) return -1;
            return p[i + 1] == '\n' ? (long)i : -2;
        }
    }
    return avail < RESP_MAX_LINE ? -1 : -2;
}

/* Strict signed decimal within [lo, hi] from a line of length len. */
static int resp_parse_ll(const char *p, size_t len, long long lo, long long hi, long long *out) {
    size_t i = 0;
    int neg = 0;
    if (len == 0 || len > 20) return -1;
    if (p[0] == '-') { neg = 1; i = 1; if (len == 1) return -1; }
    unsigned long long v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        if (v > (ULLONG_MAX - 9) / 10) return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (neg ? v > (unsigned long long)LLONG_MAX + 1ULL : v > (unsigned long long)LLONG_MAX) return -1;
    long long s = neg ? (long long)(0 - v) : (long long)v;
    if (s < lo || s > hi) return -1;
    *out = s;
    return 0;
}

/* First pass: does buf hold one complete, well-formed reply? Allocates nothing.
 * Returns 1 with *end set, 0 when more bytes are needed, -1 on a protocol error
 * (with a static reason in *why). Arrays are walked with an explicit stack of
 * remaining counts, so depth costs no C stack. */
static int resp_scan(const char *buf, size_t len, size_t *end, const char **why) {
    long long remaining[RESP_MAX_DEPTH + 1];
    int depth = 0;
    size_t pos = 0;
    remaining[0] = 1;
    for (;;) {
        while (depth >= 0 && remaining[depth] == 0) {
            depth--;
            if (depth >= 0) remaining[depth]--;
        }
        if (depth < 0) { *end = pos; return 1; }
        if (pos >= len) return 0;
        char type = buf[pos];
        long cr = resp_find_line(buf + pos + 1, len - pos - 1);
        if (cr == -1) return 0;
        if (cr == -2) { *why = "line too long or malformed"; return -1; }
        const char *line = buf + pos + 1;
        size_t next = pos + 1 + (size_t)cr + 2;
        long long v;
        switch (type) {
        case '+': case '-':
            pos = next; remaining[depth]--; break;
        case ':':
            if (resp_parse_ll(line, (size_t)cr, LLONG_MIN, LLONG_MAX, &v) < 0) { *why = "bad integer"; return -1; }
            pos = next; remaining[depth]--; break;
        case '$':
            if (resp_parse_ll(line, (size_t)cr, -1, RESP_MAX_BULK, &v) < 0) { *why = "bad bulk length"; return -1; }
            if (v < 0) { pos = next; remaining[depth]--; break; }
            if (len - next < (size_t)v + 2) return 0;
            if (buf[next + (size_t)v] != '\r' || buf[next + (size_t)v + 1] != '\n') { *why = "bulk not terminated by CRLF"; return -1; }
            pos = next + (size_t)v + 2; remaining[depth]--; break;
        case '*':
            if (resp_parse_ll(line, (size_t)cr, -1, RESP_MAX_ELEMS, &v) < 0) { *why = "bad array length"; return -1; }
            pos = next;
            if (v <= 0) { remaining[depth]--; break; }
            if (depth == RESP_MAX_DEPTH) { *why = "arrays nested too deeply"; return -1; }
            remaining[++depth] = v;
            break;
        default:
            *why = "unknown reply type byte";
            return -1;
        }
    }
}

/* Second pass over bytes resp_scan accepted: build the tree. NULL only on OOM. */
static struct resp *resp_build(const char *buf, size_t *pos, int depth) {
    struct resp *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    char type = buf[*pos];
    const char *line = buf + *pos + 1;
    size_t cr = (size_t)resp_find_line(line, RESP_MAX_LINE + 2);
    *pos += 1 + cr + 2;
    long long v = 0;
    switch (type) {
    case '+': case '-':
        r->type = type == '+' ? RESP_STATUS : RESP_ERROR;
        if (!(r->str = sdsnewlen(line, cr))) goto oom;
        return r;
    case ':':
        r->type = RESP_INTEGER;
        resp_parse_ll(line, cr, LLONG_MIN, LLONG_MAX, &r->integer);
        return r;
    case '$':
        resp_parse_ll(line, cr, -1, RESP_MAX_BULK, &v);
        if (v < 0) { r->type = RESP_NIL; return r; }
        r->type = RESP_BULK;
        if (!(r->str = sdsnewlen(buf + *pos, (size_t)v))) goto oom;
        *pos += (size_t)v + 2;
        return r;
    default: /* '*' */
        resp_parse_ll(line, cr, -1, RESP_MAX_ELEMS, &v);
        if (v < 0) { r->type = RESP_NIL; return r; }
        r->type = RESP_ARRAY;
        if (v == 0) return r;
        if (!(r->elem = calloc((size_t)v, sizeof *r->elem))) goto oom;
        for (long long i = 0; i < v; i++) {
            if (!(r->elem[i] = resp_build(buf, pos, depth + 1))) goto oom;
            r->n++;
        }
        return r;
    }
oom:
    resp_free(r);
    return NULL;
}

/* Parse one reply from buf. Returns 1 and *out (+ *used bytes), 0 if incomplete,
 * -1 on a protocol error or OOM with the reason in *why. */
static int resp_parse(const char *buf, size_t len, size_t *used, struct resp **out, const char **why) {
    size_t end = 0;
    int r = resp_scan(buf, len, &end, why);
    if (r <= 0) return r;
    size_t pos = 0;
    *out = resp_build(buf, &pos, 0);
    if (!*out) { *why = "out of memory"; return -1; }
    *used = end;
    return 1;
}

/* A connection to one Redis node. */
struct rconn {
    int fd;
    sds name;       /* "host:port", for messages */
    sds rbuf;       /* bytes received, not yet parsed */
    sds wbuf;       /* pipelined commands, not yet sent */
};

static void rconn_close(struct rconn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    sdsfree(c->rbuf); c->rbuf = NULL;
    sdsfree(c->wbuf); c->wbuf = NULL;
}

static void rconn_free(struct rconn *c) {
    rconn_close(c);
    sdsfree(c->name);
    c->name = NULL;
}

/* Queue a command (NULL-terminated list of C strings) without sending it. */
static int rconn_queue(struct rc *rc, struct rconn *c, const char *arg0, ...) {
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < 32; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    if (!c->wbuf && !(c->wbuf = sdsempty())) return rc_fail_oom(rc);
    c->wbuf = resp_append_command(c->wbuf, argc, argv, NULL);
    return c->wbuf ? 0 : rc_fail_oom(rc);
}

/* Queue a command given as an argv array (for long ADDSLOTS lists). */
static int rconn_queue_argv(struct rc *rc, struct rconn *c, int argc, const char **argv) {
    if (!c->wbuf && !(c->wbuf = sdsempty())) return rc_fail_oom(rc);
    c->wbuf = resp_append_command(c->wbuf, argc, argv, NULL);
    return c->wbuf ? 0 : rc_fail_oom(rc);
}

static int rconn_flush(struct rc *rc, struct rconn *c, int64_t deadline) {
    if (c->fd < 0) return rc_fail(rc, "%s: not connected", c->name);
    if (!c->wbuf || sdslen(c->wbuf) == 0) return 0;
    int r = net_write_all(rc, c->fd, c->wbuf, sdslen(c->wbuf), deadline, c->name);
    sdsclear(c->wbuf);
    return r;
}

/* Read one reply (flushing queued commands first). NULL with rc->err on failure;
 * a -ERR reply is returned as RESP_ERROR, not as a failure. */
static struct resp *rconn_read(struct rc *rc, struct rconn *c, int64_t deadline) {
    if (rconn_flush(rc, c, deadline) < 0) return NULL;
    if (!c->rbuf && !(c->rbuf = sdsempty())) { rc_fail_oom(rc); return NULL; }
    for (;;) {
        struct resp *r = NULL;
        size_t used = 0;
        const char *why = NULL;
        int p = resp_parse(c->rbuf, sdslen(c->rbuf), &used, &r, &why);
        if (p == 1) { sdsrange(c->rbuf, (ssize_t)used, -1); return r; }
        if (p < 0) { rc_fail(rc, "%s: protocol error in reply: %s", c->name, why); rconn_close(c); return NULL; }
        sds t = sdsMakeRoomFor(c->rbuf, 16384);
        if (!t) { rc_fail_oom(rc); return NULL; }
        c->rbuf = t;
        ssize_t n = net_read_some(rc, c->fd, c->rbuf + sdslen(c->rbuf), 16384, deadline, c->name);
        if (n == 0) { rc_fail(rc, "%s: connection closed by the node", c->name); rconn_close(c); return NULL; }
        if (n < 0) { rconn_close(c); return NULL; }
        sdsIncrLen(c->rbuf, n);
    }
}

/* Read a reply and turn -ERR into a failure naming the node and the command. */
static struct resp *rconn_expect(struct rc *rc, struct rconn *c, const char *what, int64_t deadline) {
    struct resp *r = rconn_read(rc, c, deadline);
    if (!r) { rc_wrap(rc, "%s", what); return NULL; }
    if (r->type == RESP_ERROR) {
        rc_fail(rc, "%s: %s: %s", c->name, what, r->str);
        resp_free(r);
        return NULL;
    }
    return r;
}

/* Run one command and return its (non-error) reply. */
static struct resp *rconn_call(struct rc *rc, struct rconn *c, const char *what, const char *arg0, ...) {
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < 32; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    if (rconn_queue_argv(rc, c, argc, argv) < 0) return NULL;
    return rconn_expect(rc, c, what, rc_now_ms() + rc->io_timeout_ms);
}

/* Same, but expects a string-ish reply (status or bulk) and returns it as a new sds. */
static sds rconn_call_str(struct rc *rc, struct rconn *c, const char *what, const char *arg0, ...) {
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < 32; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    if (rconn_queue_argv(rc, c, argc, argv) < 0) return NULL;
    struct resp *r = rconn_expect(rc, c, what, rc_now_ms() + rc->io_timeout_ms);
    if (!r) return NULL;
    if (r->type != RESP_STATUS && r->type != RESP_BULK) {
        rc_fail(rc, "%s: %s: unexpected reply type %d", c->name, what, r->type);
        resp_free(r);
        return NULL;
    }
    sds s = r->str;
    r->str = NULL;
    resp_free(r);
    return s;
}

/* Connect and authenticate. `host` must be printable; the password never is. */
static int rconn_open(struct rc *rc, struct rconn *c, const char *host, int port) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->name = sdscatprintf(sdsempty(), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (!c->name) return rc_fail_oom(rc);
    c->fd = net_connect_tcp(rc, host, port, rc->io_timeout_ms);
    if (c->fd < 0) return -1;
    if (!rc->password) return 0;
    struct resp *r = rc->user
        ? rconn_call(rc, c, "AUTH", "AUTH", rc->user, rc->password, NULL)
        : rconn_call(rc, c, "AUTH", "AUTH", rc->password, NULL);
    if (r) { resp_free(r); return 0; }
    /* A node without a password refuses AUTH; that is harmless, so carry on. */
    if (rc->err && strstr(rc->err, "without any password configured")) return 0;
    rconn_close(c);
    return -1;
}

/* Value of "field:" in an INFO-style text, copied into out; -1 when missing. */
static int info_field(const char *info, const char *field, char *out, size_t outlen) {
    size_t fl = strlen(field);
    for (const char *p = info; p && *p; ) {
        if (strncmp(p, field, fl) == 0 && p[fl] == ':') {
            const char *v = p + fl + 1;
            size_t n = strcspn(v, "\r\n");
            if (n >= outlen) n = outlen - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return -1;
}

/* ====================================================================== */
/* 6. Cluster model: addresses, CLUSTER NODES parsing, slot split, layout   */
/* ====================================================================== */

#define CLUSTER_SLOTS 16384

/* A node address as the user wrote it: host:port or host:port@busport. */
struct addr {
    char host[256];     /* as written (name or literal, without brackets) */
    char ip[64];        /* numeric, after resolution */
    int port;
    int bus;            /* 0 = port + 10000 */
};

/* Split "host:port[@bus]" (IPv6 as "[::1]:port") without resolving. */
static int addr_split(const char *s, struct addr *a) {
    memset(a, 0, sizeof *a);
    const char *at = strrchr(s, '@');
    const char *hend, *pstart;
    if (s[0] == '[') {
        hend = strchr(s, ']');
        if (!hend || hend[1] != ':') return -1;
        pstart = hend + 2;
        s++;
    } else {
        hend = strrchr(s, ':');
        if (!hend || (at && hend > at)) return -1;
        if (memchr(s, ':', (size_t)(hend - s))) return -1; /* bare IPv6 needs brackets */
        pstart = hend + 1;
    }
    size_t hl = (size_t)(hend - s);
    if (hl == 0 || hl >= sizeof a->host) return -1;
    for (size_t i = 0; i < hl; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(".-_:", s[i])) return -1;
    memcpy(a->host, s, hl);
    char portbuf[16];
    size_t pl = at ? (size_t)(at - pstart) : strlen(pstart);
    if (pl == 0 || pl >= sizeof portbuf) return -1;
    memcpy(portbuf, pstart, pl);
    portbuf[pl] = 0;
    long v;
    if (rc_parse_int(portbuf, 1, 65535, &v) < 0) return -1;
    a->port = (int)v;
    if (at) {
        if (rc_parse_int(at + 1, 1, 65535, &v) < 0) return -1;
        a->bus = (int)v;
    }
    return 0;
}

/* Split and resolve; the error names the argument. */
static int addr_parse(struct rc *rc, const char *s, struct addr *a) {
    if (addr_split(s, a) < 0)
        return rc_fail(rc, "invalid address '%s': expected host:port or host:port@busport", s);
    if (net_resolve(rc, a->host, a->ip, sizeof a->ip) < 0) return rc_wrap(rc, "invalid address '%s'", s);
    return 0;
}

static int addr_bus(const struct addr *a) { return a->bus ? a->bus : a->port + 10000; }

/* One line of CLUSTER NODES. */
enum { NF_MYSELF = 1, NF_MASTER = 2, NF_SLAVE = 4, NF_PFAIL = 8, NF_FAIL = 16,
       NF_HANDSHAKE = 32, NF_NOADDR = 64 };

struct nodeinfo {
    char id[41];
    char ip[64];            /* may be empty: a fresh node does not know its own IP */
    int port, bus;
    int flags;
    char master[41];        /* "-" for masters */
    int connected;
    int nranges;
    int (*ranges)[2];       /* owned slot ranges, inclusive */
    int open_slots;         /* [slot->-id] / [slot-<-id] entries */
};

struct cview {
    struct nodeinfo *nodes;
    int n;
};

static void cview_free(struct cview *v) {
    for (int i = 0; i < v->n; i++) free(v->nodes[i].ranges);
    free(v->nodes);
    v->nodes = NULL;
    v->n = 0;
}

static int nodes_parse_flags(const char *s, size_t len) {
    static const struct { const char *name; int bit; } names[] = {
        { "myself", NF_MYSELF }, { "master", NF_MASTER }, { "slave", NF_SLAVE },
        { "fail?", NF_PFAIL }, { "fail", NF_FAIL }, { "handshake", NF_HANDSHAKE },
        { "noaddr", NF_NOADDR },
    };
    int flags = 0;
    while (len > 0) {
        size_t n = 0;
        while (n < len && s[n] != ',') n++;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) flags |= names[i].bit;
        s += n; len -= n;
        if (len) { s++; len--; }
    }
    return flags;
}

/* "ip:port@cport[,hostname]" (Redis 7), "ip:port@cport" (4-6) or "ip:port" (3). */
static int nodes_parse_addr(const char *s, struct nodeinfo *ni) {
    char buf[128];
    size_t n = strcspn(s, ",");
    if (n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *at = strchr(buf, '@');
    if (at) {
        *at = 0;
        long v;
        if (rc_parse_int(at + 1, 0, 65535, &v) < 0) return -1;
        ni->bus = (int)v;
    }
    char *colon = strrchr(buf, ':');
    if (!colon) return -1;
    *colon = 0;
    long v;
    if (rc_parse_int(colon + 1, 0, 65535, &v) < 0) return -1;
    ni->port = (int)v;
    if (!at) ni->bus = ni->port ? ni->port + 10000 : 0;
    if (strlen(buf) >= sizeof ni->ip) return -1;
    strcpy(ni->ip, buf);
    return 0;
}

static int nodes_add_range(struct nodeinfo *ni, int lo, int hi) {
    if (ni->nranges > 0 && ni->ranges[ni->nranges - 1][1] + 1 == lo) {
        ni->ranges[ni->nranges - 1][1] = hi;
        return 0;
    }
    int (*r)[2] = realloc(ni->ranges, (size_t)(ni->nranges + 1) * sizeof *r);
    if (!r) return -1;
    ni->ranges = r;
    r[ni->nranges][0] = lo;
    r[ni->nranges][1] = hi;
    ni->nranges++;
    return 0;
}

/* Slot fields: "N", "A-B", "[N->-id]" or "[N-<-id]" (open slots). */
static int nodes_parse_slot(const char *tok, size_t len, struct nodeinfo *ni) {
    if (len > 0 && tok[0] == '[') { ni->open_slots++; return 0; }
    char buf[32];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, tok, len);
    buf[len] = 0;
    char *dash = strchr(buf, '-');
    long lo, hi;
    if (dash) {
        *dash = 0;
        if (rc_parse_int(buf, 0, CLUSTER_SLOTS - 1, &lo) < 0 || rc_parse_int(dash + 1, 0, CLUSTER_SLOTS - 1, &hi) < 0 || hi < lo) return -1;
    } else {
        if (rc_parse_int(buf, 0, CLUSTER_SLOTS - 1, &lo) < 0) return -1;
        hi = lo;
    }
    return nodes_add_range(ni, (int)lo, (int)hi);
}

static int nodes_parse_line(const char *line, size_t len, struct nodeinfo *ni) {
    memset(ni, 0, sizeof *ni);
    const char *tok[8];
    size_t tlen[8];
    size_t pos = 0;
    int nt = 0;
    while (nt < 8) {
        while (pos < len && line[pos] == ' ') pos++;
        if (pos >= len) break;
        tok[nt] = line + pos;
        while (pos < len && line[pos] != ' ') pos++;
        tlen[nt] = (size_t)(line + pos - tok[nt]);
        nt++;
    }
    if (nt < 8 || tlen[0] != 40 || tlen[3] > 40) return -1;
    memcpy(ni->id, tok[0], 40);
    char abuf[128];
    if (tlen[1] >= sizeof abuf) return -1;
    memcpy(abuf, tok[1], tlen[1]);
    abuf[tlen[1]] = 0;
    if (nodes_parse_addr(abuf, ni) < 0) return -1;
    ni->flags = nodes_parse_flags(tok[2], tlen[2]);
    memcpy(ni->master, tok[3], tlen[3]);
    ni->connected = tlen[7] == 9 && memcmp(tok[7], "connected", 9) == 0;
    while (pos < len) {
        while (pos < len && line[pos] == ' ') pos++;
        if (pos >= len) break;
        const char *s = line + pos;
        while (pos < len && line[pos] != ' ') pos++;
        if (nodes_parse_slot(s, (size_t)(line + pos - s), ni) < 0) return -1;
    }
    return 0;
}

/* Parse a whole CLUSTER NODES reply into v (caller frees with cview_free). */
static int cview_parse(const char *text, size_t len, struct cview *v) {
    memset(v, 0, sizeof *v);
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll && line[ll - 1] == '\r') ll--;
        if (ll == 0) continue;
        if (v->n >= 4096) { cview_free(v); return -1; }
        struct nodeinfo *grown = realloc(v->nodes, (size_t)(v->n + 1) * sizeof *grown);
        if (!grown) { cview_free(v); return -1; }
        v->nodes = grown;
        if (nodes_parse_line(line, ll, &v->nodes[v->n]) < 0) {
            free(v->nodes[v->n].ranges);
            cview_free(v);
            return -1;
        }
        v->n++;
    }
    return 0;
}

static struct nodeinfo *cview_myself(struct cview *v) {
    for (int i = 0; i < v->n; i++)
        if (v->nodes[i].flags & NF_MYSELF) return &v->nodes[i];
    return NULL;
}

static struct nodeinfo *cview_find(struct cview *v, const char *id) {
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->nodes[i].id, id) == 0) return &v->nodes[i];
    return NULL;
}

static int nodeinfo_slot_count(const struct nodeinfo *ni) {
    int c = 0;
    for (int i = 0; i < ni->nranges; i++) c += ni->ranges[i][1] - ni->ranges[i][0] + 1;
    return c;
}

/* "0-5460,5462" — the slot ranges as one string. */
static sds nodeinfo_slots_str(const struct nodeinfo *ni) {
    sds s = sdsempty();
    for (int i = 0; s && i < ni->nranges; i++) {
        if (ni->ranges[i][0] == ni->ranges[i][1]) s = sdscatprintf(s, "%s%d", i ? "," : "", ni->ranges[i][0]);
        else s = sdscatprintf(s, "%s%d-%d", i ? "," : "", ni->ranges[i][0], ni->ranges[i][1]);
    }
    return s;
}

/* CRC16-CCITT (XMODEM), the hash Redis Cluster uses for key slots. */
static unsigned cluster_crc16(const char *buf, size_t len) {
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)buf[i] << 8;
        for (int b = 0; b < 8; b++) crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

/* Slot of a key, honouring {hash tags} as Redis does. */
static int cluster_key_slot(const char *key, size_t len) {
    size_t s, e;
    for (s = 0; s < len && key[s] != '{'; s++) {}
    if (s < len) {
        for (e = s + 1; e < len && key[e] != '}'; e++) {}
        if (e < len && e != s + 1) return (int)(cluster_crc16(key + s + 1, e - s - 1) & 16383);
    }
    return (int)(cluster_crc16(key, len) & 16383);
}

/* Split the 16384 slots into `masters` contiguous ranges exactly as redis-cli does
 * (cumulative rounding), so clusters made by either tool look the same. */
static void cluster_split_slots(int masters, int *lo, int *hi) {
    double per = (double)CLUSTER_SLOTS / masters, cursor = 0;
    int first = 0;
    for (int i = 0; i < masters; i++) {
        long last = (long)(cursor + per - 1 + 0.5);
        if (last > CLUSTER_SLOTS - 1 || i == masters - 1) last = CLUSTER_SLOTS - 1;
        if (last < first) last = first;
        lo[i] = first;
        hi[i] = (int)last;
        first = (int)last + 1;
        cursor += per;
    }
}

/* Choose masters and replicas with anti-affinity by host.
 * hosts[i] identifies node i's machine. On return master_of[i] is -1 for a master,
 * else the index of its master; masters[] lists master indexes in slot order.
 * Returns the number of masters, or -1 on OOM. */
static int cluster_plan_layout(int n, const char *const *hosts, int replicas, int *master_of, int *masters) {
    int *order = malloc((size_t)n * sizeof *order), *used = calloc((size_t)n, sizeof *used);
    int *group = malloc((size_t)n * sizeof *group);
    if (!order || !used || !group) { free(order); free(used); free(group); return -1; }
    /* group[i] = index of the first node on the same host; interleave hosts round-robin
     * so masters spread over machines the way redis-cli spreads them. */
    for (int i = 0; i < n; i++) {
        group[i] = i;
        for (int j = 0; j < i; j++) if (strcmp(hosts[i], hosts[j]) == 0) { group[i] = group[j]; break; }
    }
    int k = 0;
    while (k < n) {
        for (int g = 0; g < n; g++) {
            if (group[g] != g) continue;
            for (int i = 0; i < n; i++)
                if (!used[i] && group[i] == g) { used[i] = 1; order[k++] = i; break; }
        }
    }
    int m = n / (replicas + 1);
    for (int i = 0; i < n; i++) master_of[i] = -1;
    for (int i = 0; i < m; i++) masters[i] = order[i];
    memset(used, 0, (size_t)n * sizeof *used);
    int left = n - m;
    for (int round = 0; left > 0; round++) {
        for (int mi = 0; mi < m && left > 0; mi++) {
            int mnode = masters[mi], pick = -1;
            for (int i = m; i < n && pick < 0; i++)
                if (!used[order[i]] && strcmp(hosts[order[i]], hosts[mnode]) != 0) pick = order[i];
            for (int i = m; i < n && pick < 0; i++)
                if (!used[order[i]]) pick = order[i];
            used[pick] = 1;
            master_of[pick] = mnode;
            left--;
        }
        (void)round;
    }
    free(order); free(used); free(group);
    return m;
}

/* ====================================================================== */
/* 7. Cluster engine: preflight, plan, apply, wait, diagnose, check         */
/* ====================================================================== */

/* While forming, Redis' own delays dominate: a master keeps cluster_state:fail for its
 * rejoin delay, min(max(cluster-node-timeout, 500 ms), 5 s), and a master delays a
 * diskless full sync by repl-diskless-sync-delay. We lower both on the still-empty
 * nodes and put the original values back on every exit path. */
#define ENGINE_FORM_NODE_TIMEOUT "500"
#define ENGINE_FORM_SYNC_DELAY   "0"
#define ENGINE_POLL_MS           20
#define ENGINE_REMEET_MS         400
#define ENGINE_DOWN_GRACE_MS     1500

struct engine_addr { sds host; int port; };

struct enode {
    struct addr a;          /* as given by the user */
    struct rconn c;
    char id[41];
    char meet_ip[64];       /* what other nodes MEET: the announced address if any */
    int meet_port, meet_bus;
    int major, minor;
    int master_of;          /* -1 for a master, else index of its master */
    int slot_lo, slot_hi;   /* masters only */
    sds orig_timeout, orig_delay;   /* to restore; NULL when not changed */
    int changed;            /* apply has modified this node */
    int replicated;         /* CLUSTER REPLICATE accepted */
    int state_ok;           /* its last CLUSTER INFO said cluster_state:ok */
    int64_t last_nudge;     /* masters: last replication nudge (see engine_nudge_master) */
    int acks;               /* replies to MEETs queued mid-wait, read before the poll answers */
    int healthy;
    int64_t last_meet, down_since;
    sds why;                /* what this node still lacks, for the diagnosis */
    struct cview view;      /* its latest CLUSTER NODES */
};

struct engine {
    struct rc *rc;
    struct enode *nodes;
    int n, replicas, m;
    int *masters;           /* master indexes in slot order */
    sds plan_sig;           /* expected slot map signature */
};

static void engine_free(struct engine *e) {
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        rconn_free(&x->c);
        sdsfree(x->orig_timeout);
        sdsfree(x->orig_delay);
        sdsfree(x->why);
        cview_free(&x->view);
    }
    free(e->nodes);
    free(e->masters);
    sdsfree(e->plan_sig);
    memset(e, 0, sizeof *e);
}

static void enode_set_why(struct enode *x, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds s = sdscatvprintf(sdsempty(), fmt, ap);
    va_end(ap);
    if (s) { sdsfree(x->why); x->why = s; }
}

/* --- Slot map signatures: "slot:owner-id," at every change of owner. --- */
static sds slotmap_signature(const char **owner) {
    sds s = sdsempty();
    const char *prev = NULL;
    for (int slot = 0; s && slot < CLUSTER_SLOTS; slot++) {
        const char *o = owner[slot] ? owner[slot] : "-";
        if (prev && strcmp(prev, o) == 0) continue;
        s = sdscatprintf(s, "%d:%s,", slot, o);
        prev = o;
    }
    return s;
}

static sds cview_signature(const struct cview *v) {
    const char **owner = calloc(CLUSTER_SLOTS, sizeof *owner);
    if (!owner) return NULL;
    for (int i = 0; i < v->n; i++) {
        const struct nodeinfo *ni = &v->nodes[i];
        for (int r = 0; r < ni->nranges; r++)
            for (int s = ni->ranges[r][0]; s <= ni->ranges[r][1]; s++) owner[s] = ni->id;
    }
    sds sig = slotmap_signature(owner);
    free(owner);
    return sig;
}

static sds engine_plan_signature(struct engine *e) {
    const char **owner = calloc(CLUSTER_SLOTS, sizeof *owner);
    if (!owner) return NULL;
    for (int k = 0; k < e->m; k++) {
        struct enode *x = &e->nodes[e->masters[k]];
        for (int s = x->slot_lo; s <= x->slot_hi; s++) owner[s] = x->id;
    }
    sds sig = slotmap_signature(owner);
    free(owner);
    return sig;
}

/* --- Preflight --------------------------------------------------------- */

static int engine_check_duplicates(struct rc *rc, struct addr *a, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(a[i].ip, a[j].ip) == 0 && a[i].port == a[j].port)
                return rc_fail(rc, "node %s:%d is listed twice (as '%s:%d' and '%s:%d')",
                               a[i].ip, a[i].port, a[j].host, a[j].port, a[i].host, a[i].port);
    return 0;
}

static int engine_check_count(struct rc *rc, int n, int replicas) {
    int need = 3 * (replicas + 1);
    if (n < need)
        return rc_fail(rc, "3 masters with %d replicas each need at least %d nodes, got %d", replicas, need, n);
    return 0;
}

static void parse_version(const char *v, int *major, int *minor) {
    *major = *minor = 0;
    if (sscanf(v, "%d.%d", major, minor) < 1) *major = 0;
}

/* Queue the preflight questions on every node first, then read the answers, so a
 * hundred nodes cost about one round trip. */
static int engine_preflight_queue(struct engine *e, struct enode *x) {
    struct rc *rc = e->rc;
    if (rconn_queue(rc, &x->c, "INFO", "server", NULL) < 0 ||
        rconn_queue(rc, &x->c, "INFO", "cluster", NULL) < 0 ||
        rconn_queue(rc, &x->c, "DBSIZE", NULL) < 0 ||
        rconn_queue(rc, &x->c, "CLUSTER", "NODES", NULL) < 0 ||
        rconn_queue(rc, &x->c, "CONFIG", "GET", "cluster-node-timeout", NULL) < 0 ||
        rconn_queue(rc, &x->c, "CONFIG", "GET", "repl-diskless-sync-delay", NULL) < 0) return -1;
    return rconn_flush(rc, &x->c, rc_now_ms() + rc->io_timeout_ms);
}

/* CONFIG GET answers [name, value]; an error (CONFIG renamed away) leaves *out NULL. */
static void engine_take_config(struct resp *r, sds *out) {
    *out = NULL;
    if (r && r->type == RESP_ARRAY && r->n == 2 && r->elem[1]->type == RESP_BULK) {
        *out = r->elem[1]->str;
        r->elem[1]->str = NULL;
    }
}

static int engine_preflight_read(struct engine *e, struct enode *x) {
    struct rc *rc = e->rc;
    struct resp *r[6] = { 0 };
    int64_t dl = rc_now_ms() + rc->io_timeout_ms;
    int ret = -1;
    for (int i = 0; i < 6; i++)
        if (!(r[i] = rconn_read(rc, &x->c, dl))) goto out;
    for (int i = 0; i < 4; i++) {
        if (r[i]->type == RESP_ERROR) {
            if (strncmp(r[i]->str, "NOAUTH", 6) == 0)
                rc_fail(rc, "%s: %s (give the password with --password or --password-file)", x->c.name, r[i]->str);
            else if (i == 3 && strstr(r[i]->str, "cluster support disabled"))
                rc_fail(rc, "%s: cluster mode is disabled (cluster_enabled:0); start it with cluster-enabled yes", x->c.name);
            else
                rc_fail(rc, "%s: %s: %s", x->c.name, i < 2 ? "INFO" : i == 2 ? "DBSIZE" : "CLUSTER NODES", r[i]->str);
            goto out;
        }
    }
    if (r[0]->type != RESP_BULK || r[1]->type != RESP_BULK || r[2]->type != RESP_INTEGER || r[3]->type != RESP_BULK) {
        rc_fail(rc, "%s: unexpected reply types to INFO/DBSIZE/CLUSTER NODES (is this a Redis node?)", x->c.name);
        goto out;
    }
    char buf[64];
    if (info_field(r[1]->str, "cluster_enabled", buf, sizeof buf) < 0 || strcmp(buf, "1") != 0) {
        rc_fail(rc, "%s: cluster mode is disabled (cluster_enabled:0); start it with cluster-enabled yes", x->c.name);
        goto out;
    }
    if (info_field(r[0]->str, "redis_version", buf, sizeof buf) == 0) parse_version(buf, &x->major, &x->minor);
    if (r[2]->integer != 0) {
        rc_fail(rc, "%s: node is not empty (%lld keys); only empty nodes can form a new cluster", x->c.name, r[2]->integer);
        goto out;
    }
    cview_free(&x->view);
    if (cview_parse(r[3]->str, sdslen(r[3]->str), &x->view) < 0) {
        rc_fail(rc, "%s: cannot parse its CLUSTER NODES reply", x->c.name);
        goto out;
    }
    struct nodeinfo *me = cview_myself(&x->view);
    if (!me) { rc_fail(rc, "%s: CLUSTER NODES has no 'myself' line", x->c.name); goto out; }
    if (x->view.n > 1) {
        rc_fail(rc, "%s: node already knows %d other nodes (it is part of a cluster; CLUSTER RESET it first)", x->c.name, x->view.n - 1);
        goto out;
    }
    if (me->nranges > 0) {
        rc_fail(rc, "%s: node already has %d slots assigned", x->c.name, nodeinfo_slot_count(me));
        goto out;
    }
    memcpy(x->id, me->id, sizeof x->id);
    /* A node started with cluster-announce-ip shows that address in its own line; MEET
     * must use it, because inside Docker the published address means nothing. */
    if (me->ip[0] && me->port) {
        snprintf(x->meet_ip, sizeof x->meet_ip, "%s", me->ip);
        x->meet_port = me->port;
        x->meet_bus = me->bus ? me->bus : me->port + 10000;
    } else {
        snprintf(x->meet_ip, sizeof x->meet_ip, "%s", x->a.ip);
        x->meet_port = x->a.port;
        x->meet_bus = addr_bus(&x->a);
    }
    engine_take_config(r[4], &x->orig_timeout);
    engine_take_config(r[5], &x->orig_delay);
    ret = 0;
out:
    for (int i = 0; i < 6; i++) resp_free(r[i]);
    return ret;
}

static int engine_connect_all(struct engine *e) {
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        if (rconn_open(e->rc, &x->c, x->a.ip, x->a.port) < 0) return -1;
    }
    return 0;
}

static int engine_preflight(struct engine *e) {
    struct rc *rc = e->rc;
    if (engine_connect_all(e) < 0) return -1;
    for (int i = 0; i < e->n; i++)
        if (engine_preflight_queue(e, &e->nodes[i]) < 0) return -1;
    for (int i = 0; i < e->n; i++)
        if (engine_preflight_read(e, &e->nodes[i]) < 0) return -1;
    for (int i = 0; i < e->n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(e->nodes[i].id, e->nodes[j].id) == 0)
                return rc_fail(rc, "%s and %s are the same node (id %.8s)", e->nodes[j].c.name, e->nodes[i].c.name, e->nodes[i].id);
    return 0;
}

/* --- Plan --------------------------------------------------------------- */

static int engine_plan(struct engine *e) {
    const char **hosts = malloc((size_t)e->n * sizeof *hosts);
    int *master_of = malloc((size_t)e->n * sizeof *master_of);
    e->masters = malloc((size_t)e->n * sizeof *e->masters);
    int *lo = malloc((size_t)e->n * sizeof *lo), *hi = malloc((size_t)e->n * sizeof *hi);
    int ret = -1;
    if (!hosts || !master_of || !e->masters || !lo || !hi) { rc_fail_oom(e->rc); goto out; }
    for (int i = 0; i < e->n; i++) hosts[i] = e->nodes[i].a.ip;
    e->m = cluster_plan_layout(e->n, hosts, e->replicas, master_of, e->masters);
    if (e->m < 0) { rc_fail_oom(e->rc); goto out; }
    cluster_split_slots(e->m, lo, hi);
    for (int i = 0; i < e->n; i++) e->nodes[i].master_of = master_of[i];
    for (int k = 0; k < e->m; k++) {
        e->nodes[e->masters[k]].slot_lo = lo[k];
        e->nodes[e->masters[k]].slot_hi = hi[k];
    }
    if (!(e->plan_sig = engine_plan_signature(e))) { rc_fail_oom(e->rc); goto out; }
    ret = 0;
out:
    free(hosts); free(master_of); free(lo); free(hi);
    return ret;
}

static void engine_print_plan(struct engine *e) {
    struct rc *rc = e->rc;
    rc_progress(rc, "Plan: %d masters, %d nodes, %d replica(s) per master", e->m, e->n, e->replicas);
    for (int k = 0; k < e->m; k++) {
        struct enode *x = &e->nodes[e->masters[k]];
        rc_progress(rc, "  master %-22s slots %d-%d (%d)", x->c.name, x->slot_lo, x->slot_hi, x->slot_hi - x->slot_lo + 1);
        for (int i = 0; i < e->n; i++)
            if (e->nodes[i].master_of == e->masters[k])
                rc_progress(rc, "    replica %s", e->nodes[i].c.name);
    }
}

/* --- Apply ---------------------------------------------------------------- */

static int engine_tune(struct engine *e) {
    struct rc *rc = e->rc;
    int tuned = 0;
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        if (x->orig_timeout && rconn_queue(rc, &x->c, "CONFIG", "SET", "cluster-node-timeout", ENGINE_FORM_NODE_TIMEOUT, NULL) < 0) return -1;
        if (x->orig_delay && rconn_queue(rc, &x->c, "CONFIG", "SET", "repl-diskless-sync-delay", ENGINE_FORM_SYNC_DELAY, NULL) < 0) return -1;
    }
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        int64_t dl = rc_now_ms() + rc->io_timeout_ms;
        sds *orig[2] = { &x->orig_timeout, &x->orig_delay };
        for (int k = 0; k < 2; k++) {
            if (!*orig[k]) continue;
            struct resp *r = rconn_read(rc, &x->c, dl);
            if (!r) return -1;
            x->changed = 1;
            if (r->type == RESP_ERROR) { sdsfree(*orig[k]); *orig[k] = NULL; }
            else tuned++;
            resp_free(r);
        }
    }
    struct enode *x0 = &e->nodes[0];
    if (tuned)
        rc_progress(rc, "Lowered cluster-node-timeout (%s -> %s ms) and repl-diskless-sync-delay (%s -> %s s) on %d node(s) while forming; the originals are restored at the end",
                    x0->orig_timeout ? x0->orig_timeout : "?", ENGINE_FORM_NODE_TIMEOUT,
                    x0->orig_delay ? x0->orig_delay : "?", ENGINE_FORM_SYNC_DELAY, e->n);
    return 0;
}

/* Put back what engine_tune changed. Runs on every exit path; failures only warn,
 * because the node may be the very thing that broke. */
static void engine_restore(struct engine *e) {
    struct rc *rc = e->rc;
    sds saved = rc->err ? sdsdup(rc->err) : NULL;
    int restored = 0;
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        if (!x->orig_timeout && !x->orig_delay) continue;
        if (x->c.fd < 0 && rconn_open(rc, &x->c, x->a.ip, x->a.port) < 0) {
            rc_warn(rc, "could not restore settings on %s: %s", x->c.name ? x->c.name : x->a.host, rc->err);
            continue;
        }
        sds *orig[2] = { &x->orig_timeout, &x->orig_delay };
        const char *names[2] = { "cluster-node-timeout", "repl-diskless-sync-delay" };
        for (int k = 0; k < 2; k++) {
            if (!*orig[k]) continue;
            struct resp *r = rconn_call(rc, &x->c, "CONFIG SET", "CONFIG", "SET", names[k], *orig[k], NULL);
            if (!r) rc_warn(rc, "could not restore %s on %s: %s", names[k], x->c.name, rc->err);
            else restored++;
            resp_free(r);
            sdsfree(*orig[k]);
            *orig[k] = NULL;
        }
    }
    if (restored) rc_progress(rc, "Restored cluster-node-timeout and repl-diskless-sync-delay on the nodes");
    sdsfree(rc->err);
    rc->err = saved;
}

static int engine_assign_slots(struct engine *e) {
    struct rc *rc = e->rc;
    char num[2][16];
    for (int k = 0; k < e->m; k++) {
        struct enode *x = &e->nodes[e->masters[k]];
        if (x->major >= 7) {
            snprintf(num[0], sizeof num[0], "%d", x->slot_lo);
            snprintf(num[1], sizeof num[1], "%d", x->slot_hi);
            if (rconn_queue(rc, &x->c, "CLUSTER", "ADDSLOTSRANGE", num[0], num[1], NULL) < 0) return -1;
        } else {
            /* Before 7.0 there is no range form: send the slots in batches. */
            for (int s = x->slot_lo; s <= x->slot_hi; ) {
                const char *argv[2 + 1000];
                char nums[1000][8];
                int argc = 0;
                argv[argc++] = "CLUSTER";
                argv[argc++] = "ADDSLOTS";
                for (int b = 0; b < 1000 && s <= x->slot_hi; b++, s++) {
                    snprintf(nums[b], sizeof nums[b], "%d", s);
                    argv[argc++] = nums[b];
                }
                if (rconn_queue_argv(rc, &x->c, argc, argv) < 0) return -1;
            }
        }
    }
    for (int i = 0; i < e->n; i++) {
        snprintf(num[0], sizeof num[0], "%d", i + 1);
        if (rconn_queue(rc, &e->nodes[i].c, "CLUSTER", "SET-CONFIG-EPOCH", num[0], NULL) < 0) return -1;
    }
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        int replies = 1 + (x->master_of < 0 ? (x->major >= 7 ? 1 : (x->slot_hi - x->slot_lo + 1000) / 1000) : 0);
        int64_t dl = rc_now_ms() + rc->io_timeout_ms;
        for (int k = 0; k < replies; k++) {
            x->changed = 1;
            struct resp *r = rconn_expect(rc, &x->c, k == replies - 1 ? "CLUSTER SET-CONFIG-EPOCH" : "CLUSTER ADDSLOTS", dl);
            if (!r) return -1;
            resp_free(r);
        }
    }
    rc_progress(rc, "Assigned slots to %d masters and a distinct config epoch to every node", e->m);
    return 0;
}

static int engine_queue_meet(struct engine *e, struct enode *from, const struct enode *to) {
    char port[16], bus[16];
    snprintf(port, sizeof port, "%d", to->meet_port);
    snprintf(bus, sizeof bus, "%d", to->meet_bus);
    from->last_meet = rc_now_ms();
    from->acks++;
    /* The bus-port argument exists since Redis 4; pass it only when it is not port+10000. */
    if (to->meet_bus != to->meet_port + 10000)
        return rconn_queue(e->rc, &from->c, "CLUSTER", "MEET", to->meet_ip, port, bus, NULL);
    return rconn_queue(e->rc, &from->c, "CLUSTER", "MEET", to->meet_ip, port, NULL);
}

/* Every node meets every other node at once: waiting for gossip to spread the news
 * costs several cron rounds, while Redis drops the duplicate handshakes by itself.
 * Pairs that still do not know each other are met again by the wait loop. */
static int engine_meet(struct engine *e) {
    for (int i = 0; i < e->n; i++)
        for (int j = 0; j < e->n; j++)
            if (i != j && engine_queue_meet(e, &e->nodes[i], &e->nodes[j]) < 0) return -1;
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        int64_t dl = rc_now_ms() + e->rc->io_timeout_ms;
        for (; x->acks > 0; x->acks--) {
            struct resp *r = rconn_expect(e->rc, &x->c, "CLUSTER MEET", dl);
            if (!r) return -1;
            resp_free(r);
        }
    }
    rc_progress(e->rc, "Sent CLUSTER MEET between all %d nodes", e->n);
    return 0;
}

/* --- Wait until healthy ---------------------------------------------------- */

/* One poll round asks every node four questions; answers are judged per node. */
static int engine_poll_queue(struct engine *e, struct enode *x) {
    struct rc *rc = e->rc;
    if (x->c.fd < 0) {
        rconn_free(&x->c);
        x->acks = 0;
        if (rconn_open(rc, &x->c, x->a.ip, x->a.port) < 0) return -1;
    }
    if (rconn_queue(rc, &x->c, "CLUSTER", "NODES", NULL) < 0 ||
        rconn_queue(rc, &x->c, "CLUSTER", "INFO", NULL) < 0 ||
        rconn_queue(rc, &x->c, "INFO", "replication", NULL) < 0 ||
        rconn_queue(rc, &x->c, "CLUSTER", "SLOTS", NULL) < 0) return -1;
    return rconn_flush(rc, &x->c, rc_now_ms() + rc->io_timeout_ms);
}

static int engine_count_replicas(struct engine *e, int master) {
    int c = 0;
    for (int i = 0; i < e->n; i++) if (e->nodes[i].master_of == master) c++;
    return c;
}

/* Does CLUSTER SLOTS list every planned replica under every master's range? */
static int engine_slots_complete(struct engine *e, const struct resp *slots) {
    if (slots->type != RESP_ARRAY) return 0;
    for (int k = 0; k < e->m; k++) {
        struct enode *mx = &e->nodes[e->masters[k]];
        int want = 1 + engine_count_replicas(e, e->masters[k]), found = 0;
        for (size_t i = 0; i < slots->n; i++) {
            const struct resp *ent = slots->elem[i];
            if (ent->type != RESP_ARRAY || ent->n < 3 || ent->elem[0]->type != RESP_INTEGER) continue;
            if (ent->elem[0]->integer == mx->slot_lo) { found = 1; if ((int)ent->n - 2 != want) return 0; }
        }
        if (!found) return 0;
    }
    return 1;
}

/* Redis 7 leaves a replica out of CLUSTER SLOTS until gossip carries a non-zero
 * replication offset for it, and an idle master only moves its offset with the
 * replication PING every repl-ping-replica-period (10 s). Writing and deleting one
 * key of our own in the master's slots moves the offset at once and leaves no data. */
static int engine_nudge_master(struct engine *e, struct enode *m) {
    if (!m->state_ok || rc_now_ms() - m->last_nudge < 200) return 0;
    char key[64];
    for (unsigned i = 0; ; i++) {
        snprintf(key, sizeof key, "rcluster:formation:{%u}", i);
        int slot = cluster_key_slot(key, strlen(key));
        if (slot >= m->slot_lo && slot <= m->slot_hi) break;
    }
    m->last_nudge = rc_now_ms();
    if (rconn_queue(e->rc, &m->c, "SET", key, "1", NULL) < 0 || rconn_queue(e->rc, &m->c, "DEL", key, NULL) < 0) return -1;
    m->acks += 2;
    return 0;
}

/* Judge one node's answers; sets x->healthy and x->why, queues follow-up commands
 * (REPLICATE once the replica knows its master, MEET for nodes it has not met). */
static int engine_judge_node(struct engine *e, int idx, struct resp **r) {
    struct rc *rc = e->rc;
    struct enode *x = &e->nodes[idx];
    x->healthy = 0;
    for (int k = 0; k < 4; k++)
        if (r[k]->type == RESP_ERROR) { enode_set_why(x, "error: %s", r[k]->str); return 0; }
    if (r[0]->type != RESP_BULK || r[1]->type != RESP_BULK || r[2]->type != RESP_BULK) {
        enode_set_why(x, "unexpected reply types");
        return 0;
    }
    cview_free(&x->view);
    if (cview_parse(r[0]->str, sdslen(r[0]->str), &x->view) < 0) { enode_set_why(x, "unparsable CLUSTER NODES"); return 0; }
    /* Which nodes does it not know yet (or only through a handshake)? */
    int missing = -1, handshakes = 0;
    for (int j = 0; j < e->n; j++) {
        if (j == idx) continue;
        struct nodeinfo *ni = cview_find(&x->view, e->nodes[j].id);
        if (!ni || (ni->flags & (NF_HANDSHAKE | NF_NOADDR))) { if (missing < 0) missing = j; continue; }
        if (ni->flags & (NF_FAIL | NF_PFAIL)) { enode_set_why(x, "sees %s as failing", e->nodes[j].c.name); return 0; }
    }
    for (int j = 0; j < x->view.n; j++) if (x->view.nodes[j].flags & NF_HANDSHAKE) handshakes++;
    if (missing >= 0) {
        enode_set_why(x, "does not know %s yet (%d handshake(s) in progress)", e->nodes[missing].c.name, handshakes);
        if (rc_now_ms() - x->last_meet > ENGINE_REMEET_MS) {
            for (int j = 0; j < e->n; j++)
                if (j != idx && !cview_find(&x->view, e->nodes[j].id))
                    if (engine_queue_meet(e, x, &e->nodes[j]) < 0) return -1;
        }
    }
    /* A replica can be told its master as soon as it knows that master's id. */
    if (x->master_of >= 0 && !x->replicated) {
        struct enode *mx = &e->nodes[x->master_of];
        struct nodeinfo *ni = cview_find(&x->view, mx->id);
        if (!ni || (ni->flags & NF_HANDSHAKE)) { if (missing < 0) enode_set_why(x, "waiting to learn master %s", mx->c.name); return 0; }
        struct resp *rr = rconn_call(rc, &x->c, "CLUSTER REPLICATE", "CLUSTER", "REPLICATE", mx->id, NULL);
        if (!rr) {
            /* "Unknown node" while gossip is still settling is worth another round. */
            if (x->c.fd >= 0) { enode_set_why(x, "CLUSTER REPLICATE not accepted yet: %s", rc->err); return 0; }
            return -1;
        }
        resp_free(rr);
        x->replicated = 1;
        enode_set_why(x, "replicating from %s", mx->c.name);
        return 0;
    }
    if (missing >= 0) return 0;
    sds sig = cview_signature(&x->view);
    if (!sig) return rc_fail_oom(rc);
    int agrees = strcmp(sig, e->plan_sig) == 0;
    sdsfree(sig);
    if (!agrees) { enode_set_why(x, "does not agree on the slot map yet"); return 0; }
    char buf[64];
    x->state_ok = info_field(r[1]->str, "cluster_state", buf, sizeof buf) == 0 && strcmp(buf, "ok") == 0;
    if (!x->state_ok) {
        enode_set_why(x, "cluster_state:%s", buf);
        return 0;
    }
    if (x->master_of >= 0) {
        if (info_field(r[2]->str, "master_link_status", buf, sizeof buf) < 0 || strcmp(buf, "up") != 0) {
            enode_set_why(x, "replication link to %s is %s", e->nodes[x->master_of].c.name, buf[0] ? buf : "not up");
            return 0;
        }
        if (info_field(r[2]->str, "slave_repl_offset", buf, sizeof buf) == 0 && strcmp(buf, "0") == 0) {
            enode_set_why(x, "replication offset still 0");
            return engine_nudge_master(e, &e->nodes[x->master_of]);
        }
    }
    if (!engine_slots_complete(e, r[3])) { enode_set_why(x, "CLUSTER SLOTS does not list every replica yet"); return 0; }
    x->healthy = 1;
    enode_set_why(x, "ok");
    return 0;
}

/* Read one node's four answers. A node that stops answering is given a short grace
 * period (a restart or a slow fork), then the whole wait fails naming it. */
static int engine_poll_read(struct engine *e, int idx) {
    struct rc *rc = e->rc;
    struct enode *x = &e->nodes[idx];
    struct resp *r[4] = { 0 };
    int ret = 0, k;
    int64_t dl = rc_now_ms() + rc->io_timeout_ms;
    for (; x->acks > 0; x->acks--) {
        struct resp *ack = rconn_read(rc, &x->c, dl);
        if (!ack) break;
        if (ack->type == RESP_ERROR && rc->verbose) rc_warn(rc, "%s: %s", x->c.name, ack->str);
        resp_free(ack);
    }
    for (k = 0; k < 4 && x->c.fd >= 0; k++)
        if (!(r[k] = rconn_read(rc, &x->c, dl))) break;
    if (k == 4) {
        x->down_since = 0;
        ret = engine_judge_node(e, idx, r);
    } else {
        if (!x->down_since) x->down_since = rc_now_ms();
        enode_set_why(x, "not answering: %s", rc->err);
        if (rc_now_ms() - x->down_since > ENGINE_DOWN_GRACE_MS) ret = rc_fail(rc, "%s stopped answering while the cluster was forming: %s", x->c.name ? x->c.name : x->a.host, rc->err);
    }
    for (k = 0; k < 4; k++) resp_free(r[k]);
    return ret;
}

static sds engine_diagnosis(struct engine *e) {
    sds s = sdsempty();
    for (int i = 0; s && i < e->n; i++)
        if (!e->nodes[i].healthy)
            s = sdscatprintf(s, "\n  %s: %s", e->nodes[i].c.name ? e->nodes[i].c.name : e->nodes[i].a.host,
                             e->nodes[i].why ? e->nodes[i].why : "no answer yet");
    return s;
}

static int engine_wait_healthy(struct engine *e, int64_t deadline) {
    struct rc *rc = e->rc;
    int64_t last_report = rc_now_ms();
    for (;;) {
        int64_t round = rc_now_ms();
        for (int i = 0; i < e->n; i++) {
            struct enode *x = &e->nodes[i];
            if (engine_poll_queue(e, x) < 0) {
                if (!x->down_since) x->down_since = rc_now_ms();
                enode_set_why(x, "not answering: %s", rc->err);
                if (rc_now_ms() - x->down_since > ENGINE_DOWN_GRACE_MS)
                    return rc_fail(rc, "%s stopped answering while the cluster was forming: %s", x->c.name ? x->c.name : x->a.host, rc->err);
            }
        }
        int healthy = 0;
        for (int i = 0; i < e->n; i++) {
            if (e->nodes[i].c.fd < 0) continue;
            if (engine_poll_read(e, i) < 0) return -1;
            healthy += e->nodes[i].healthy;
        }
        if (healthy == e->n) return 0;
        if (rc->verbose && rc_now_ms() - last_report >= 100) {
            sds d = engine_diagnosis(e);
            rc_progress(rc, "%lld ms: %d/%d nodes ready:%s", (long long)(rc_now_ms() - rc->t0), healthy, e->n, d ? d : "");
            sdsfree(d);
            last_report = rc_now_ms();
        }
        if (rc_interrupted()) return rc_fail(rc, "interrupted while waiting for the cluster to become healthy");
        if (rc_now_ms() >= deadline) {
            sds d = engine_diagnosis(e);
            rc_fail(rc, "the cluster did not become healthy within %.0f s:%s\nhint: every node must reach every other node's cluster bus port (port+10000, or the @busport given) and its announced address",
                    rc->timeout, d ? d : "");
            sdsfree(d);
            return -1;
        }
        int64_t spent = rc_now_ms() - round;
        if (spent < ENGINE_POLL_MS) rc_sleep_ms((int)(ENGINE_POLL_MS - spent));
    }
}

/* --- Report ------------------------------------------------------------------ */

static void engine_print_table(struct engine *e, int64_t elapsed_ms) {
    struct rc *rc = e->rc;
    if (rc->json) {
        sds s = sdsnew("{\"ok\":true,\"nodes\":[");
        for (int i = 0; s && i < e->n; i++) {
            struct enode *x = &e->nodes[i];
            sds slots = x->master_of < 0 ? sdscatprintf(sdsempty(), "%d-%d", x->slot_lo, x->slot_hi) : sdsempty();
            s = sdscatprintf(s, "%s{\"id\":\"%s\",\"addr\":", i ? "," : "", x->id);
            s = rc_json_str(s, x->c.name);
            s = s ? sdscatprintf(s, ",\"announced\":\"%s:%d@%d\",\"role\":\"%s\",\"slots\":", x->meet_ip, x->meet_port, x->meet_bus,
                                 x->master_of < 0 ? "master" : "replica") : NULL;
            s = rc_json_str(s, slots);
            s = s ? (x->master_of < 0 ? sdscat(s, ",\"master\":null}") : sdscatprintf(s, ",\"master\":\"%s\"}", e->nodes[x->master_of].id)) : NULL;
            sdsfree(slots);
        }
        if (s) s = sdscatprintf(s, "],\"elapsed_ms\":%lld}\n", (long long)elapsed_ms);
        if (s) fputs(s, stdout);
        sdsfree(s);
        return;
    }
    printf("%-40s  %-21s  %-7s  %-11s  %s\n", "ID", "ADDRESS", "ROLE", "SLOTS", "MASTER");
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        char slots[32] = "-";
        if (x->master_of < 0) snprintf(slots, sizeof slots, "%d-%d", x->slot_lo, x->slot_hi);
        printf("%-40s  %-21s  %-7s  %-11s  %s\n", x->id, x->c.name, x->master_of < 0 ? "master" : "replica",
               slots, x->master_of < 0 ? "-" : e->nodes[x->master_of].id);
    }
}

/* After a failure in apply or wait, say which nodes were touched and how to undo. */
static void engine_explain_changes(struct engine *e) {
    struct rc *rc = e->rc;
    sds list = sdsempty();
    int changed = 0;
    for (int i = 0; list && i < e->n; i++)
        if (e->nodes[i].changed) { list = sdscatprintf(list, "%s%s", changed ? ", " : "", e->nodes[i].c.name); changed++; }
    if (changed && list)
        rc_wrap(rc, "cluster formation failed after changing %d node(s) (%s); to start over, run CLUSTER RESET HARD on each of them, then create again.\ncause", changed, list);
    sdsfree(list);
}

/* --- Entry points -------------------------------------------------------------- */

static int engine_init(struct engine *e, struct rc *rc, const struct addr *a, int n, int replicas) {
    memset(e, 0, sizeof *e);
    e->rc = rc;
    e->replicas = replicas;
    e->nodes = calloc((size_t)n, sizeof *e->nodes);
    if (!e->nodes) return rc_fail_oom(rc);
    e->n = n;
    for (int i = 0; i < n; i++) {
        e->nodes[i].a = a[i];
        e->nodes[i].c.fd = -1;
        e->nodes[i].master_of = -1;
    }
    return 0;
}

/* create = preflight, plan, confirm, apply, wait, report. */
static int engine_create_addrs(struct rc *rc, const struct addr *a, int n, int replicas) {
    int64_t t0 = rc_now_ms();
    struct engine e;
    if (replicas < 0 || replicas > 100) return rc_fail(rc, "--replicas must be between 0 and 100");
    if (engine_check_duplicates(rc, (struct addr *)a, n) < 0 || engine_check_count(rc, n, replicas) < 0) return -1;
    if (engine_init(&e, rc, a, n, replicas) < 0) return -1;
    int ret = -1;
    rc_progress(rc, "Checking %d nodes", n);
    if (engine_preflight(&e) < 0 || engine_plan(&e) < 0) goto out;
    engine_print_plan(&e);
    if (rc_confirm(rc, "Form this cluster?") < 0) goto out;
    int64_t deadline = rc_now_ms() + (int64_t)(rc->timeout * 1000);
    if (engine_tune(&e) < 0 || engine_assign_slots(&e) < 0 || engine_meet(&e) < 0 ||
        engine_wait_healthy(&e, deadline) < 0) {
        engine_restore(&e);
        engine_explain_changes(&e);
        goto out;
    }
    engine_restore(&e);
    int64_t el = rc_now_ms() - t0;
    rc_progress(rc, "Cluster is healthy: %d masters, %d replicas, all 16384 slots covered, every node ok (%lld ms)",
                e.m, e.n - e.m, (long long)el);
    engine_print_table(&e, el);
    ret = 0;
out:
    engine_free(&e);
    return ret;
}

/* For `up`: addresses as host + port (published ports). */
static int engine_create(struct rc *rc, struct engine_addr *addrs, int n, int replicas) {
    struct addr *a = calloc((size_t)n, sizeof *a);
    if (!a) return rc_fail_oom(rc);
    int ret = 0;
    for (int i = 0; i < n && ret == 0; i++) {
        snprintf(a[i].host, sizeof a[i].host, "%s", addrs[i].host);
        a[i].port = addrs[i].port;
        ret = net_resolve(rc, a[i].host, a[i].ip, sizeof a[i].ip);
    }
    if (ret == 0) ret = engine_create_addrs(rc, a, n, replicas);
    free(a);
    return ret;
}

/* Wait until host:port answers PING; NOAUTH or LOADING also mean the process is up. */
static int engine_wait_ping(struct rc *rc, const char *host, int port, int64_t deadline_ms) {
    for (;;) {
        struct rconn c;
        int saved_to = rc->io_timeout_ms;
        rc->io_timeout_ms = 1000;
        sds pw = rc->password;
        rc->password = NULL;
        int ok = rconn_open(rc, &c, host, port);
        rc->password = pw;
        if (ok == 0) {
            struct resp *r = NULL;
            if (rconn_queue(rc, &c, "PING", NULL) == 0) r = rconn_read(rc, &c, rc_now_ms() + 1000);
            ok = r ? 0 : -1;
            resp_free(r);
        }
        rc->io_timeout_ms = saved_to;
        rconn_free(&c);
        if (ok == 0) return 0;
        if (rc_interrupted()) return rc_fail(rc, "interrupted while waiting for %s:%d", host, port);
        if (rc_now_ms() >= deadline_ms) return rc_wrap(rc, "%s:%d did not answer PING in time", host, port);
        rc_sleep_ms(ENGINE_POLL_MS);
    }
}

/* --- Check: the health of an existing cluster, seen from every node ------------ */

struct check_node {
    struct nodeinfo *ni;    /* the seed's line for this node */
    struct rconn c;
    struct cview view;
    char state[32], link[32];
    int reachable;
    sds err;
};

static void check_nodes_free(struct check_node *cn, int n) {
    for (int i = 0; cn && i < n; i++) {
        rconn_free(&cn[i].c);
        cview_free(&cn[i].view);
        sdsfree(cn[i].err);
    }
    free(cn);
}

/* Connect to one node and collect its view; failures are recorded, not fatal. */
static void check_probe(struct rc *rc, struct check_node *cn, const char *host, int port) {
    struct resp *r[3] = { 0 };
    int64_t dl = rc_now_ms() + rc->io_timeout_ms;
    if (rconn_open(rc, &cn->c, host, port) < 0 ||
        rconn_queue(rc, &cn->c, "CLUSTER", "NODES", NULL) < 0 ||
        rconn_queue(rc, &cn->c, "CLUSTER", "INFO", NULL) < 0 ||
        rconn_queue(rc, &cn->c, "INFO", "replication", NULL) < 0) goto fail;
    for (int k = 0; k < 3; k++) {
        if (!(r[k] = rconn_read(rc, &cn->c, dl))) goto fail;
        if (r[k]->type != RESP_BULK) { rc_fail(rc, "%s: %s", cn->c.name, r[k]->type == RESP_ERROR ? r[k]->str : "unexpected reply type"); goto fail; }
    }
    if (cview_parse(r[0]->str, sdslen(r[0]->str), &cn->view) < 0) { rc_fail(rc, "%s: unparsable CLUSTER NODES", cn->c.name); goto fail; }
    if (info_field(r[1]->str, "cluster_state", cn->state, sizeof cn->state) < 0) snprintf(cn->state, sizeof cn->state, "?");
    if (info_field(r[2]->str, "master_link_status", cn->link, sizeof cn->link) < 0) cn->link[0] = 0;
    cn->reachable = 1;
    for (int k = 0; k < 3; k++) resp_free(r[k]);
    return;
fail:
    cn->err = sdsdup(rc->err ? rc->err : "unknown error");
    for (int k = 0; k < 3; k++) resp_free(r[k]);
}

static sds check_add_problem(sds problems, int *count, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds p = sdscatvprintf(sdsempty(), fmt, ap);
    va_end(ap);
    if (!p || !problems) { sdsfree(p); return problems; }
    problems = sdscatprintf(problems, "%s\n", p);
    sdsfree(p);
    (*count)++;
    return problems;
}

static void check_print_json(struct check_node *cn, int n, int healthy, const char *problems) {
    sds s = sdscatprintf(sdsempty(), "{\"healthy\":%s,\"nodes\":[", healthy ? "true" : "false");
    for (int i = 0; s && i < n; i++) {
        struct nodeinfo *ni = cn[i].ni;
        sds slots = nodeinfo_slots_str(ni);
        s = sdscatprintf(s, "%s{\"id\":\"%s\",\"addr\":\"%s:%d\",\"role\":\"%s\",\"slots\":", i ? "," : "", ni->id, ni->ip, ni->port,
                         (ni->flags & NF_SLAVE) ? "replica" : "master");
        s = rc_json_str(s, slots);
        if (s) s = (ni->flags & NF_SLAVE) ? sdscatprintf(s, ",\"master\":\"%s\"", ni->master) : sdscat(s, ",\"master\":null");
        if (s) s = sdscatprintf(s, ",\"reachable\":%s,\"cluster_state\":", cn[i].reachable ? "true" : "false");
        s = rc_json_str(s, cn[i].reachable ? cn[i].state : NULL);
        if (s) s = sdscat(s, ",\"link\":");
        s = rc_json_str(s, cn[i].link[0] ? cn[i].link : NULL);
        if (s) s = sdscat(s, "}");
        sdsfree(slots);
    }
    if (s) s = sdscat(s, "],\"problems\":[");
    int first = 1;
    for (const char *p = problems; s && p && *p; ) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        sds one = sdsnewlen(p, len);
        if (!first) s = sdscat(s, ",");
        s = rc_json_str(s, one);
        sdsfree(one);
        first = 0;
        p += len + (nl ? 1 : 0);
    }
    if (s) s = sdscat(s, "]}\n");
    if (s) fputs(s, stdout);
    sdsfree(s);
}

static void check_print_text(struct check_node *cn, int n, int healthy, const char *problems, struct cview *seed) {
    for (int i = 0; i < n; i++) {
        struct nodeinfo *ni = cn[i].ni;
        if (ni->flags & NF_SLAVE) {
            printf("S: %.40s %s:%d replica of %.8s, link %s\n", ni->id, ni->ip, ni->port, ni->master,
                   cn[i].reachable ? (cn[i].link[0] ? cn[i].link : "?") : "unknown");
            continue;
        }
        sds slots = nodeinfo_slots_str(ni);
        int reps = 0;
        for (int j = 0; j < seed->n; j++) if (strcmp(seed->nodes[j].master, ni->id) == 0) reps++;
        printf("M: %.40s %s:%d slots:%s (%d slots) %d replica(s)\n", ni->id, ni->ip, ni->port,
               slots && sdslen(slots) ? slots : "-", nodeinfo_slot_count(ni), reps);
        sdsfree(slots);
    }
    if (problems && *problems) {
        for (const char *p = problems; *p; ) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            printf("[ERR] %.*s\n", (int)len, p);
            p += len + (nl ? 1 : 0);
        }
    } else {
        printf("[OK] All nodes agree about slots configuration.\n[OK] No open slots.\n[OK] All %d slots covered.\n"
               "[OK] cluster_state:ok on all %d nodes.\n[OK] All replicas linked to their masters.\n", CLUSTER_SLOTS, n);
    }
    printf("%s\n", healthy ? "healthy" : "NOT healthy");
}

/* Returns 0 healthy, 1 unhealthy, -1 when the seed cannot be asked at all. */
static int engine_check(struct rc *rc, const char *host, int port, int quiet_report) {
    struct rconn seedc;
    struct cview seed = { 0 };
    if (rconn_open(rc, &seedc, host, port) < 0) return -1;
    sds text = rconn_call_str(rc, &seedc, "CLUSTER NODES", "CLUSTER", "NODES", NULL);
    rconn_free(&seedc);
    if (!text) {
        if (strstr(rc->err, "cluster support disabled"))
            rc_fail(rc, "%s:%d: cluster mode is disabled (cluster_enabled:0)", host, port);
        return -1;
    }
    int bad = cview_parse(text, sdslen(text), &seed);
    sdsfree(text);
    if (bad < 0) return rc_fail(rc, "%s:%d: cannot parse its CLUSTER NODES reply", host, port);
    struct check_node *cn = calloc((size_t)seed.n, sizeof *cn);
    if (!cn) { cview_free(&seed); return rc_fail_oom(rc); }
    int n = 0;
    for (int i = 0; i < seed.n; i++) {
        struct nodeinfo *ni = &seed.nodes[i];
        if (ni->flags & (NF_HANDSHAKE | NF_NOADDR)) continue;
        cn[n].ni = ni;
        cn[n].c.fd = -1;
        /* The seed is reached the way the user reached it; others by their announced address. */
        if (ni->flags & NF_MYSELF) check_probe(rc, &cn[n], host, port);
        else check_probe(rc, &cn[n], ni->ip, ni->port);
        n++;
    }
    sds problems = sdsempty();
    int np = 0;
    sds sig0 = NULL;
    int covered = 0, open = 0;
    for (int i = 0; i < seed.n; i++) covered += nodeinfo_slot_count(&seed.nodes[i]);
    for (int i = 0; i < n; i++) {
        struct check_node *c = &cn[i];
        const char *nm = c->c.name ? c->c.name : "?";
        if (!c->reachable) { problems = check_add_problem(problems, &np, "%s:%d unreachable: %s", c->ni->ip, c->ni->port, c->err); continue; }
        if (strcmp(c->state, "ok") != 0) problems = check_add_problem(problems, &np, "%s reports cluster_state:%s", nm, c->state);
        if ((c->ni->flags & NF_SLAVE) && strcmp(c->link, "up") != 0)
            problems = check_add_problem(problems, &np, "%s: replication link to its master is %s", nm, c->link[0] ? c->link : "not up");
        for (int j = 0; j < c->view.n; j++) {
            struct nodeinfo *o = &c->view.nodes[j];
            if (o->flags & NF_MYSELF) open += o->open_slots;
            if (o->flags & (NF_FAIL | NF_PFAIL))
                problems = check_add_problem(problems, &np, "%s sees %s:%d as %s", nm, o->ip, o->port, (o->flags & NF_FAIL) ? "failed" : "possibly failed");
        }
        sds sig = cview_signature(&c->view);
        if (!sig0) sig0 = sig;
        else { if (sig && strcmp(sig, sig0) != 0) problems = check_add_problem(problems, &np, "%s does not agree with the other nodes about the slot map", nm); sdsfree(sig); }
    }
    if (covered != CLUSTER_SLOTS) problems = check_add_problem(problems, &np, "only %d of %d slots are covered", covered, CLUSTER_SLOTS);
    if (open) problems = check_add_problem(problems, &np, "%d open (migrating/importing) slot(s)", open);
    int healthy = np == 0;
    if (!quiet_report) {
        if (rc->json) check_print_json(cn, n, healthy, problems);
        else check_print_text(cn, n, healthy, problems, &seed);
    }
    if (!healthy && problems) {
        sds first = sdsnewlen(problems, strcspn(problems, "\n"));
        rc_fail(rc, "cluster at %s:%d is not healthy: %s%s", host, port, first ? first : "", np > 1 ? " (and more)" : "");
        sdsfree(first);
    }
    sdsfree(problems);
    sdsfree(sig0);
    check_nodes_free(cn, n);
    cview_free(&seed);
    return healthy ? 0 : 1;
}

/* ====================================================================== */
/* 9. Commands: create and check (nodes that already run)                  */
/* ====================================================================== */

static void usage_create(FILE *f) {
    fputs("usage: rcluster create [--replicas N] [--password P | --password-file F] [--user U]\n"
          "                       [--yes] [--timeout SEC] [--json] ADDR...\n"
          "\n"
          "Form a Redis Cluster from running, empty, cluster-enabled nodes (like\n"
          "redis-cli --cluster create). ADDR is host:port or host:port@busport.\n"
          "\n"
          "  --replicas N        replicas per master (default 1); at least 3 masters\n"
          "  --password P        AUTH password (also RCLUSTER_PASSWORD, --password-file F)\n"
          "  --user U            ACL user for AUTH (Redis 6+)\n"
          "  --yes               do not ask for confirmation (required without a TTY)\n"
          "  --timeout SEC       give up waiting for a healthy cluster after SEC (default 60)\n"
          "  --json              print the result as JSON on stdout\n"
          "\n"
          "Every node is checked before anything changes: reachable, password accepted,\n"
          "cluster_enabled:1, no keys, knows no other node. While forming, rcluster lowers\n"
          "cluster-node-timeout and repl-diskless-sync-delay on the empty nodes and\n"
          "restores them on every exit path. It returns once every node reports\n"
          "cluster_state:ok, every replica is linked and every node's CLUSTER SLOTS\n"
          "lists every replica.\n", f);
}

static void usage_check(FILE *f) {
    fputs("usage: rcluster check [--password P | --password-file F] [--user U] [--json] ADDR\n"
          "\n"
          "Report on the cluster that ADDR belongs to (like redis-cli --cluster check): nodes,\n"
          "roles, slots, replicas, coverage, open slots, agreement and cluster_state.\n"
          "Exit status: 0 healthy, 3 not healthy, 1 when ADDR cannot be asked.\n", f);
}

/* Parse a command's options: common ones plus --help; -1 on error, 1 after --help. */
static int cmd_parse_opts(struct rc *rc, int argc, char **argv, const struct option *extra, int nextra,
                          void (*usage)(FILE *), int (*on_opt)(struct rc *, int, const char *, void *), void *ctx) {
    struct option common[] = { RC_COMMON_LONGOPTS, { "help", no_argument, NULL, 'h' } };
    int ncommon = (int)(sizeof common / sizeof common[0]);
    struct option *all = calloc((size_t)(ncommon + nextra + 1), sizeof *all);
    if (!all) return rc_fail_oom(rc);
    memcpy(all, common, sizeof common);
    if (nextra) memcpy(all + ncommon, extra, (size_t)nextra * sizeof *extra);
    optind = 1;
    opterr = 0;
    int ret = 0, opt;
    while (ret == 0 && (opt = getopt_long(argc, argv, "+h", all, NULL)) != -1) {
        if (opt == 'h') { usage(stdout); ret = 1; }
        else if (opt == '?' || opt == ':') {
            const char *bad = argv[optind - 1];
            rc->usage_error = 1;
            ret = rc_fail(rc, "%s: unknown option or missing value '%s' (see rcluster %s --help)", argv[0], bad ? bad : "?", argv[0]);
        }
        else if (opt >= OPT_FIRST_COMMAND_OPT && on_opt) ret = on_opt(rc, opt, optarg, ctx);
        else ret = rc_parse_common(rc, opt, optarg);
    }
    free(all);
    return ret;
}

enum { OPT_REPLICAS = OPT_FIRST_COMMAND_OPT };

static int create_on_opt(struct rc *rc, int opt, const char *arg, void *ctx) {
    long v;
    if (opt == OPT_REPLICAS) {
        if (rc_parse_int(arg, 0, 100, &v) < 0) return rc_fail(rc, "--replicas: expected a number from 0 to 100, got '%s'", arg);
        *(int *)ctx = (int)v;
    }
    return 0;
}

static int cmd_create(struct rc *rc, int argc, char **argv) {
    static const struct option opts[] = { { "replicas", required_argument, NULL, OPT_REPLICAS } };
    int replicas = 1;
    int r = cmd_parse_opts(rc, argc, argv, opts, 1, usage_create, create_on_opt, &replicas);
    if (r) return r < 0 ? -1 : 0;
    int n = argc - optind;
    if (n <= 0) rc->usage_error = 1;
    if (n <= 0) return rc_fail(rc, "create: no node addresses given (see rcluster create --help)");
    if (n > 1000) return rc_fail(rc, "create: at most 1000 nodes");
    struct addr *a = calloc((size_t)n, sizeof *a);
    if (!a) return rc_fail_oom(rc);
    int ret = 0;
    for (int i = 0; i < n && ret == 0; i++) ret = addr_parse(rc, argv[optind + i], &a[i]);
    if (ret == 0) ret = engine_create_addrs(rc, a, n, replicas);
    free(a);
    return ret;
}

static int cmd_check(struct rc *rc, int argc, char **argv) {
    int r = cmd_parse_opts(rc, argc, argv, NULL, 0, usage_check, NULL, NULL);
    if (r) return r < 0 ? -1 : 0;
    if (argc - optind != 1) rc->usage_error = 1;
    if (argc - optind != 1) return rc_fail(rc, "check: expected exactly one ADDR (see rcluster check --help)");
    struct addr a;
    if (addr_parse(rc, argv[optind], &a) < 0) return -1;
    int h = engine_check(rc, a.ip, a.port, 0);
    return h < 0 ? -1 : h == 0 ? 0 : RC_EXIT_UNHEALTHY;
}
static int cmd_up(struct rc *rc, int argc, char **argv) { (void)argc; (void)argv; return rc_fail(rc, "not yet"); }
static int cmd_down(struct rc *rc, int argc, char **argv) { (void)argc; (void)argv; return rc_fail(rc, "not yet"); }
static int cmd_status(struct rc *rc, int argc, char **argv) { (void)argc; (void)argv; return rc_fail(rc, "not yet"); }
static int cmd_image(struct rc *rc, int argc, char **argv);
static int stub_refs(struct rc *rc) { (void)engine_wait_ping; (void)engine_create; (void)net_connect_unix; (void)net_set_nonblock; (void)rc_write_file; (void)rc; return 0; }

static int cmd_image(struct rc *rc, int argc, char **argv) { (void)argc; (void)argv; stub_refs(rc); return rc_fail(rc, "not yet"); }

/* ====================================================================== */
/* 10. Usage, dispatch and main                                            */
/* ====================================================================== */

static void usage_main(FILE *f) {
    fputs("usage: rcluster COMMAND [OPTIONS]\n"
          "\n"
          "One static binary that turns a Docker host into a healthy Redis Cluster, and forms\n"
          "or inspects clusters on nodes that already run.\n"
          "\n"
          "Docker commands (talk to /var/run/docker.sock or DOCKER_HOST):\n"
          "  up         create network, configs and containers, then form the cluster\n"
          "  down       remove the cluster's containers and network (data kept unless --purge)\n"
          "  status     containers and cluster health\n"
          "  image      build an image from the host's redis-server, or load a saved one\n"
          "\n"
          "Cluster commands (talk RESP to running nodes):\n"
          "  create     form a cluster from running empty nodes (redis-cli --cluster create)\n"
          "  check      report on a cluster's health (redis-cli --cluster check)\n"
          "\n"
          "Options for every command:\n"
          "  --json              results as JSON on stdout (progress stays on stderr)\n"
          "  --yes               no confirmation prompts (required without a TTY)\n"
          "  --timeout SEC       how long to wait for a healthy cluster (default 60)\n"
          "  --password P        Redis password; prefer --password-file F or RCLUSTER_PASSWORD\n"
          "  --user U            Redis ACL user\n"
          "  --quiet             no progress on stderr\n"
          "  --no-color          no colours (also NO_COLOR=1)\n"
          "  -h, --help          help (also: rcluster COMMAND --help)\n"
          "  --version           print the version\n"
          "\n"
          "Environment: DOCKER_HOST (unix://PATH or tcp://HOST:PORT), DOCKER_API_VERSION,\n"
          "RCLUSTER_PASSWORD, NO_COLOR.\n"
          "\n"
          "Exit status: 0 success / healthy, 1 failure, 2 usage error, 3 cluster not healthy\n"
          "(check, status), 130 interrupted.\n", f);
}

struct rc_command {
    const char *name;
    int (*run)(struct rc *, int, char **);
};

static const struct rc_command rc_commands[] = {
    { "create", cmd_create }, { "check", cmd_check },
    { "up", cmd_up }, { "down", cmd_down }, { "status", cmd_status }, { "image", cmd_image },
};

static void rc_init(struct rc *rc) {
    memset(rc, 0, sizeof *rc);
    rc->timeout = 60;
    rc->io_timeout_ms = 5000;
    rc->t0 = rc_now_ms();
    const char *nc = getenv("NO_COLOR");
    rc->color = isatty(STDERR_FILENO) && !(nc && *nc);
    const char *dh = getenv("DOCKER_HOST");
    if (dh && *dh) rc->docker_host = sdsnew(dh);
    const char *pw = getenv("RCLUSTER_PASSWORD");
    if (pw && *pw) rc->password = sdsnew(pw);
}

static void rc_release(struct rc *rc) {
    sdsfree(rc->err);
    sdsfree(rc->user);
    sdsfree(rc->password);
    sdsfree(rc->docker_host);
    sdsfree(rc->api_version);
}

static int rc_exit_code(struct rc *rc, int r) {
    if (r >= 0) return r;
    if (rc_interrupted()) return RC_EXIT_INTERRUPTED;
    return rc->usage_error ? RC_EXIT_USAGE : RC_EXIT_FAIL;
}

#ifndef RCLUSTER_NO_MAIN
int main(int argc, char **argv) {
    struct rc rc;
    rc_init(&rc);
    rc_install_signals();
    int r;
    if (argc < 2) { usage_main(stderr); rc_release(&rc); return RC_EXIT_USAGE; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage_main(stdout); rc_release(&rc); return 0; }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) { printf("rcluster %s\n", RCLUSTER_VERSION); rc_release(&rc); return 0; }
    const struct rc_command *cmd = NULL;
    for (size_t i = 0; i < sizeof rc_commands / sizeof rc_commands[0]; i++)
        if (!strcmp(argv[1], rc_commands[i].name)) cmd = &rc_commands[i];
    if (!cmd) { r = rc_fail(&rc, "unknown command '%s' (see rcluster --help)", argv[1]); rc.usage_error = 1; }
    else r = cmd->run(&rc, argc - 1, argv + 1);
    int code = rc_exit_code(&rc, r);
    if (r < 0) fprintf(stderr, "%srcluster: error:%s %s\n", rc.color ? "\033[31m" : "", rc.color ? "\033[0m" : "", rc.err ? rc.err : "unknown failure");
    else if (code == RC_EXIT_UNHEALTHY && rc.err) fprintf(stderr, "rcluster: %s\n", rc.err);
    fflush(stdout);
    rc_release(&rc);
    return code;
}
#endif
