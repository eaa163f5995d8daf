/* rcluster — one static binary: Docker Engine API + RESP -> a healthy Redis Cluster.
 *
 * Contents                              Protocol surface (everything outside this file)
 *  1. Basics: context, errors, time,     Engine API (HTTP/1.1, unix socket or tcp://):
 *     output, small parsers                GET  /_ping                      (Api-Version header)
 *  2. Sockets: unix/tcp, timeouts          GET  /vX/networks?filters=..., /networks/{id}
 *  3. HTTP/1.1 client (incremental          POST /vX/networks/create, DELETE /networks/{id}
 *     response parser, chunked)            GET  /vX/containers/json?all=1&filters=...
 *  4. Docker Engine API                    POST /vX/networks/{id}/connect
 *                                          POST /vX/containers/create?name=, /{id}/start, /{id}/stop,
 *                                            /{id}/wait (update, up --restore: `SERVER --version`
 *                                            in a throw-away container tells the image's version)
 *                                          POST /vX/containers/{id}/rename?name= (update)
 *  5. RESP client                          DELETE /vX/containers/{id}?force=1
 *  6. Cluster model (nodes, slots,         GET  /vX/containers/{id}/json, /{id}/logs
 *                                          HEAD /vX/containers/{id}/archive?path= (which server binary)
 *     CLUSTER NODES parsing, layout)       GET  /vX/images/{name}/json, /distribution/{name}/json
 *                                            (up --dry-run: would a pull find the image)
 *  7. Cluster session (every node of a     POST /vX/images/create?fromImage= | ?fromSrc=-&repo=NAME:TAG
 *     cluster), judges, actions, mover     POST /vX/images/load
 *                                          (images/{name}/json: Config.Entrypoint/Cmd/Env say
 *                                          whether an image runs redis-server or valkey-server)
 *                                        Swarm (--swarm, on a manager; section 9b):
 *                                          GET  /vX/info (Swarm.ControlAvailable, NodeID)
 *                                          GET  /vX/nodes (ID, Status.State/Addr, Spec.Availability)
 *                                          GET  /vX/services?filters=, /services/{name}
 *                                          POST /vX/services/create, DELETE /services/{id}
 *                                          POST /vX/services/{name}/update?version=N (update)
 *                                          GET  /vX/configs/{id} (update: a node's config now)
 *                                          GET  /vX/tasks?filters={"service":[NAME-I]}
 *                                          GET  /vX/configs?filters= (Spec.Data: the manifest
 *                                            NAME-manifest-G), POST /configs/create,
 *                                            DELETE /configs/{id}
 *                                          GET  /vX/secrets?filters=, POST /secrets/create,
 *                                            DELETE /secrets/{id}
 *                                          GET  /vX/volumes?filters=, DELETE /volumes/{name}
 * 7a. Formation (create on the session:   Redis (RESP2 over TCP):
 *     policy, poll/judge/act) and check    AUTH, PING, INFO, DBSIZE, CONFIG GET/SET/REWRITE,
 *                                          CLUSTER FAILOVER (update), EVAL (import's move),
 *                                          REPLCONF, SYNC (backup: one RDB per master),
 *                                          CLUSTER INFO|NODES|SLOTS|MYID|MEET|ADDSLOTS|
 * 7b. Shared by the commands on running    ADDSLOTSRANGE|SET-CONFIG-EPOCH|REPLICATE|
 *     nodes: node specs, preflight,        SETSLOT (IMPORTING|MIGRATING|NODE|STABLE)|
 *     waits for the cluster to settle      GETKEYSINSLOT|COUNTKEYSINSLOT|FORGET|RESET [HARD]|
 *  8. Node configs and data layout         DELSLOTS|BUMPEPOCH,
 *                                          atomic slot migration (section 7, the mover):
 *  9. Commands on running nodes, one       Valkey >= 9.0: CLUSTER MIGRATESLOTS SLOTSRANGE
 *     subsection each: create, check,        lo hi ... NODE id ..., GETSLOTMIGRATIONS,
 *     info, call, add-node, del-node,        CANCELSLOTMIGRATIONS;
 *     reshard, rebalance, fix,             Redis >= 8.4: CLUSTER MIGRATION IMPORT lo hi ...,
 *     set-timeout (options -> plan ->        MIGRATION STATUS ID id | ALL, MIGRATION CANCEL
 *     preflight -> apply -> wait ->          ID id | ALL,
 *     result -> report: text or JSON)      MIGRATE host port "" 0 ms [REPLACE] [AUTH|AUTH2] KEYS,
 * 9a. Clusters rcluster runs: up,          SET/DEL (a key of our own, to move a replication
 *     down, status, scale over               offset), FLUSHALL (only an older node found in a
 *     struct placement (Docker or            re-homed or new Swarm service's volume);
 *     Swarm), and the Docker placement:    `call` sends what the user gives
 *     containers, network, confs
 * 9b. The Swarm placement: services,
 *     configs, secrets, tasks, the
 *     manifest config, re-homing
 * 9c. Data: backup, restore, import      backup, restore, import (section 9c):
 *     (replication stream, CRC-64,         REPLCONF rdb-only 1 | capa eof | version V (Valkey
 *     bounded RDB reader, RESTORE            >= 9), SYNC (reads "$<len>" or "$EOF:<mark>", skips
 *     payloads, SCAN + DUMP/RESTORE)         "\n" keepalives), RESTORE key ttl payload ABSTTL
 *                                          [REPLACE], EXISTS, SELECT db, CONFIG GET
 *                                          cluster-databases, FUNCTION RESTORE payload
 *                                          APPEND|REPLACE; import: on its standalone
 *                                          source INFO cluster|server, DBSIZE, SCAN cursor
 *                                          COUNT n, DUMP k, PTTL k, EVAL (a move: "return
 *                                          1" 0 first; then DEL of each key still holding
 *                                          its DUMPed value: DUMP, DEL inside), on the
 *                                          masters RESTORE key ttl payload [REPLACE]
 * 9d. Rolling update (placement layer:   update (section 9d): CLUSTER FAILOVER, ACL SETUSER
 *     Docker containers, Swarm services)     user >new / <old, CONFIG SET masterauth | requirepass
 *                                            | a --config directive, CONFIG GET, INFO replication
 * 9e. Images: image build (ELF deps,
 *     streamed tar), image load
 * 10. Option parsing, usage, dispatch
 *     and main
 *
 * Settings rcluster changes on nodes it did not make (CONFIG SET; each gets its own value
 * back on every exit path, SIGINT/SIGTERM included; `check` warns about any left over):
 *   while forming (create, up, scale): cluster-node-timeout (a level's, or 2000 for a
 *   moment: a refresh), repl-diskless-sync-delay 0, repl-diskless-sync no, hz 100 (the
 *   fastest level), cluster-replica-no-failover yes (replicas); add-node --replica and
 *   scale: cluster-replica-no-failover yes on a joining replica until it has joined.
 *   backup: repl-diskless-sync-delay 0 on a source whose delay is set, from just before
 *   its SYNC until its transfer starts (unless --disk or --diskless).
 *   set-timeout: cluster-node-timeout (CONFIG REWRITE too; on nodes in containers made by
 *   up their redis.conf and manifest are rewritten instead). update (clusters made by up):
 *   repl-diskless-sync-delay 0 while replaced nodes sync (the old value back at the end),
 *   --config directives the servers take live, the password (ACL SETUSER, masterauth,
 *   requirepass). del-node: CLUSTER RESET HARD on the removed node; scale: the same on a
 *   replica that becomes a master again. rcluster's own nodes get their announce
 *   address and ports (cluster-announce-ip/-port/-bus-port) from its redis.conf template.
 *
 * Conventions: functions return 0 / -1 (or NULL) and leave a message in rc->err that
 * says what was attempted and the peer's own words, and its kind (rc->err_kind); only
 * main() turns the kind into an exit code (rc_exit_of_kind) and, with --json, into the
 * error document: --json is one JSON object on stdout whatever happens (rc_json_out).
 * Options stay as parsed; what a command derives lives in its plan. Every growing
 * string is an sds. One context struct (struct rc) is passed down.
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
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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

/* Exit codes, documented in --help; main() picks one from the error's kind alone
 * (rc_exit_of_kind). */
enum { RC_EXIT_OK = 0, RC_EXIT_FAIL = 1, RC_EXIT_USAGE = 2, RC_EXIT_UNHEALTHY = 3,
       RC_EXIT_INTERRUPTED = 130 };

/* The only file-scope mutable state: a signal handler can do nothing else. Loops that
 * wait check it through rc_interrupted() and unwind normally, so cleanup still runs. */
static volatile sig_atomic_t rc_got_signal;

struct rc_password_src;

/* What kind of failure rc->err describes: callers decide on the kind, never on the
 * message text. rc_fail() resets it to RC_ERR_FAIL; rc_wrap() keeps it. */
enum rc_err_kind { RC_ERR_FAIL = 0, RC_ERR_USAGE, RC_ERR_AUTH, RC_ERR_NOT_CLUSTER, RC_ERR_UNREACHABLE,
                   RC_ERR_TIMEOUT, RC_ERR_INTERRUPTED, RC_ERR_CORRUPT, RC_ERR_INCOMPATIBLE, RC_ERR_EXISTS,
                   RC_ERR_UNHEALTHY };

/* Everything a command needs: options, output mode and the error slot. */
struct rc {
    sds err;              /* last failure: what was attempted and why */
    int json;             /* --json: results as JSON on stdout */
    int color;            /* ANSI colours on stderr (TTY and no NO_COLOR) */
    int quiet;            /* no progress lines */
    int yes;              /* --yes: no confirmation prompt */
    int verbose;
    double timeout;       /* seconds for the whole wait phase (--timeout) */
    int io_timeout_ms;    /* per network operation */
    sds user;             /* --user for AUTH (ACL) or NULL */
    sds password;         /* --password / --password-file / RCLUSTER_PASSWORD, or NULL */
    sds docker_host;      /* DOCKER_HOST or the default unix socket */
    sds api_version;      /* negotiated Engine API version, e.g. "1.41" */
    int64_t t0;           /* start of the command, for progress timestamps */
    int err_kind;         /* enum rc_err_kind of rc->err: the exit code comes from it alone */
    int json_done;        /* --json: a result document is on stdout already */
    sds plan;             /* --dry-run --json: the requests it would send, JSON values joined
                             by ',' (NULL: not a dry run); rc_json_out() adds them */
    sds plan_files;       /* --dry-run --json: the files it would write, the same way */
    sds joined[2];        /* "host:port" made of redis-cli's `host port` (argv points here) */
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

/* When waiting stops (rc_now_ms() clock), made once per command from --timeout and
 * passed down; a struct, so that a number of seconds cannot be passed for it. seconds:
 * the span it was made with, for messages. */
struct rc_deadline { int64_t at_ms; double seconds; };

static struct rc_deadline rc_deadline_in(double seconds) {
    struct rc_deadline d = { rc_now_ms() + (int64_t)(seconds * 1000), seconds };
    return d;
}

/* d, or `seconds` from now when that comes first (a short wait inside a command). */
static struct rc_deadline rc_deadline_within(struct rc_deadline d, double seconds) {
    struct rc_deadline w = rc_deadline_in(seconds);
    return w.at_ms < d.at_ms ? w : d;
}

static int rc_deadline_passed(struct rc_deadline d) { return rc_now_ms() >= d.at_ms; }

/* What a second Ctrl-C would leave as it is, said by the handler before it quits; set
 * (and cleared before it is freed) by code that changes nodes. The one other piece of
 * file-scope state, for the same reason as rc_got_signal. */
static const char *volatile rc_abandon_note;

static void rc_set_abandon_note(const char *note) { rc_abandon_note = note; }

/* write(2) of n bytes to stderr, async-signal-safe; 1 when all were written. */
static int rc_write_stderr(const char *s, size_t n) { return write(STDERR_FILENO, s, n) == (ssize_t)n; }

/* First signal: set the flag, so the command unwinds and restores. Second: the user
 * insists; say what is left as it is and quit at once (the one exit outside main). */
static void rc_on_signal(int sig) {
    if (!rc_got_signal) { rc_got_signal = sig; return; }
    static const char head[] = "\nrcluster: interrupted again: quitting now without cleaning up";
    const char *note = rc_abandon_note;
    if (rc_write_stderr(head, sizeof head - 1) && note && rc_write_stderr("; left as it is: ", 17))
        rc_write_stderr(note, strlen(note));
    rc_write_stderr("\n", 1);
    _exit(RC_EXIT_INTERRUPTED);
}

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

/* Appending without leaks: sds appends return NULL on OOM and leave the old string
 * alive, so `s = sdscat(s, x)` would lose it. These take ownership instead: they free
 * s on failure and pass a NULL s through, so a chain of appends (like rc_json_str)
 * needs one NULL check at the end. */
static sds rc_catlen(sds s, const void *t, size_t len) {
    if (!s) return NULL;
    sds r = sdscatlen(s, t, len);
    if (!r) sdsfree(s);
    return r;
}

static sds rc_cat(sds s, const char *t) { return s ? rc_catlen(s, t, strlen(t)) : NULL; }

static sds rc_vcatprintf(sds s, const char *fmt, va_list ap) {
    if (!s) return NULL;
    sds r = sdscatvprintf(s, fmt, ap);
    if (!r) sdsfree(s);
    return r;
}

__attribute__((format(printf, 2, 3)))
static sds rc_catprintf(sds s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    s = rc_vcatprintf(s, fmt, ap);
    va_end(ap);
    return s;
}

/* A new string from printf-style arguments (caller frees); NULL on OOM. */
__attribute__((format(printf, 1, 2)))
static sds rc_sprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds s = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    return s;
}

/* Make msg (owned; NULL after an OOM keeps the old message) the error. Returns -1. */
static int rc_fail_msg(struct rc *rc, sds msg) {
    if (msg) { sdsfree(rc->err); rc->err = msg; }
    rc->err_kind = RC_ERR_FAIL;
    return -1;
}

/* Same, with the kind of failure. Returns -1. */
static int rc_fail_kind_msg(struct rc *rc, int kind, sds msg) {
    rc_fail_msg(rc, msg);
    rc->err_kind = kind;
    return -1;
}

/* Prefix the current error with msg (owned): "creating network redis: <old message>". Returns -1. */
static int rc_wrap_msg(struct rc *rc, sds msg) {
    if (msg && rc->err && sdslen(rc->err)) msg = rc_catprintf(msg, ": %s", rc->err);
    return rc_fail_kind_msg(rc, rc->err_kind, msg);
}

/* rc_fail(), rc_wrap() and rc_fail_as() are variadic functions, one call where code fails
 * (~500 places; macros over rc_sprintf made two calls there, 2 KB more). The static
 * analyzer does not follow variadic calls: for it they are those macros, so that it sees
 * that they always yield -1. */
#ifdef __clang_analyzer__
#define rc_fail(rc, ...) rc_fail_msg((rc), rc_sprintf(__VA_ARGS__))
#define rc_wrap(rc, ...) rc_wrap_msg((rc), rc_sprintf(__VA_ARGS__))
#define rc_fail_as(rc, kind, ...) rc_fail_kind_msg((rc), (kind), rc_sprintf(__VA_ARGS__))
#else
/* Replace the error message (printf-style); -1, so callers can `return rc_fail(...)`. */
__attribute__((format(printf, 2, 3)))
static int rc_fail(struct rc *rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds msg = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    return rc_fail_msg(rc, msg);
}

/* Prefix the current error with context (printf-style); -1. */
__attribute__((format(printf, 2, 3)))
static int rc_wrap(struct rc *rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds msg = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    return rc_wrap_msg(rc, msg);
}

/* rc_fail with an enum rc_err_kind; -1. */
__attribute__((format(printf, 3, 4)))
static int rc_fail_as(struct rc *rc, int kind, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds msg = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    return rc_fail_kind_msg(rc, kind, msg);
}
#endif

static int rc_fail_errno(struct rc *rc, const char *what) {
    return rc_fail(rc, "%s: %s", what, strerror(errno));
}

static int rc_fail_oom(struct rc *rc) { return rc_fail(rc, "out of memory"); }

/* The cluster answered and is not healthy (exit 3). rc->err keeps what it says, if
 * anything: a report on stdout may have said it all. -1. */
static int rc_fail_unhealthy(struct rc *rc) {
    rc->err_kind = RC_ERR_UNHEALTHY;
    return -1;
}

/* A failure set aside while cleanup code, which may fail and overwrite rc->err, runs. */
struct rc_err_saved { sds err; int kind; };

/* A copy of the current error and its kind, for rc_err_restore(). */
static struct rc_err_saved rc_err_save(const struct rc *rc) {
    struct rc_err_saved v = { rc->err ? sdsdup(rc->err) : NULL, rc->err_kind };
    return v;
}

/* Put back the error and kind rc_err_save() kept (what cleanup said is dropped). */
static void rc_err_restore(struct rc *rc, struct rc_err_saved *v) {
    sdsfree(rc->err);
    rc->err = v->err;
    rc->err_kind = v->kind;
    v->err = NULL;
}

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

/* Parse a number as JSON writes it (30, 0.5, 2e3), also as people type it (+5, .5, 5.);
 * no hex, no blanks, no inf or nan; in [lo, hi]. json.h converts it: strtod(3) would
 * link 6 KB of exact conversion. 0, or -1 with *out untouched. */
static int rc_parse_number(const char *in, double lo, double hi, double *out) {
    char buf[72];
    size_t len = in ? strlen(in) : 0;
    if (!len || len > 64) return -1;
    const char *sign = in[0] == '-' ? "-" : "", *digits = in + (in[0] == '-' || in[0] == '+');
    if (!isdigit((unsigned char)digits[0]) && !(digits[0] == '.' && isdigit((unsigned char)digits[1]))) return -1;
    snprintf(buf, sizeof buf, "%s%s%s%s", sign, digits[0] == '.' ? "0" : "", digits,
             digits[0] && digits[strlen(digits) - 1] == '.' ? "0" : "");
    const char *s = buf;
    size_t n = strlen(s);
    if (!n || !(s[0] == '-' || isdigit((unsigned char)s[0])) || !isdigit((unsigned char)s[n - 1])) return -1;
    json_value_s *v = json_parse(s, n, NULL);
    int ok = json_type(v) == JSON_NUMBER;
    double d = json_number(v, 0);
    json_free(v);
    if (!ok || !(d >= lo && d <= hi)) return -1;
    *out = d;
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

/* Make a rename durable: fsync the directory holding path (best effort). */
static void rc_fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    sds dir = slash ? sdsnewlen(path, slash == path ? 1 : (size_t)(slash - path)) : sdsnew(".");
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) { fsync(fd); close(fd); }
    sdsfree(dir);
}

/* Write a file atomically (tmp + fsync + rename) with its final mode from the first
 * byte; checks every write. */
static int rc_write_file(struct rc *rc, const char *path, const char *data, size_t len, mode_t mode) {
    sds tmp = rc_sprintf("%s.tmp.%ld", path, (long)getpid());
    if (!tmp) return rc_fail_oom(rc);
    unlink(tmp);   /* a stale temp file of an earlier run with our pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
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
    rc_fsync_parent(path);
    sdsfree(tmp);
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    sdsfree(tmp);
    return -1;
}

static int rc_cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The paths matching pattern "DIR/HEAD*TAIL" (one '*', in the last part only, as
 * ld.so.conf includes and "DIR/ *.rdb" need), sorted like glob(3) does, as a
 * NULL-terminated malloc'd array of sds (rc_glob_free() frees it); *n counts them.
 * No match is not an error. -1 with rc->err on OOM. (glob(3) would pull ~6 KB of
 * fnmatch, tilde and passwd code into the static binary.) */
static int rc_glob_simple(struct rc *rc, const char *pattern, sds **out, size_t *n) {
    *out = NULL;
    *n = 0;
    const char *slash = strrchr(pattern, '/'), *base = slash ? slash + 1 : pattern, *star = strchr(base, '*');
    sds dir = slash ? sdsnewlen(pattern, slash == pattern ? 1 : (size_t)(slash - pattern)) : sdsnew(".");
    if (!dir) return rc_fail_oom(rc);
    size_t hl = star ? (size_t)(star - base) : strlen(base);
    const char *tail = star ? star + 1 : "";
    size_t tl = strlen(tail), cap = 0;
    int ret = 0;
    DIR *d = strchr(dir, '*') ? NULL : opendir(dir);
    for (struct dirent *e; ret == 0 && d && (e = readdir(d));) {
        size_t el = strlen(e->d_name);
        if (e->d_name[0] == '.' && base[0] != '.') continue;
        int match = star ? el >= hl + tl && strncmp(e->d_name, base, hl) == 0 && strcmp(e->d_name + el - tl, tail) == 0
                         : strcmp(e->d_name, base) == 0;
        if (!match) continue;
        if (*n + 2 > cap) {
            sds *t = realloc(*out, (cap = cap ? cap * 2 : 8) * sizeof *t);
            if (!t) { ret = rc_fail_oom(rc); break; }
            *out = t;
        }
        (*out)[*n] = rc_sprintf("%s%s%s", slash ? dir : "", slash && slash != pattern ? "/" : "", e->d_name);
        if (!(*out)[*n]) ret = rc_fail_oom(rc);
        else (*out)[++*n] = NULL;
    }
    if (d) closedir(d);
    sdsfree(dir);
    if (*n) qsort(*out, *n, sizeof **out, rc_cmp_cstr);
    return ret;
}

/* Free what rc_glob_simple() returned. */
static void rc_glob_free(sds *v, size_t n) {
    for (size_t i = 0; v && i < n; i++) sdsfree(v[i]);
    free(v);
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when the bytes are not one. */
static size_t rc_utf8_seq(const unsigned char *p, size_t left) {
    if (p[0] < 0x80) return 1;
    size_t n = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 && p[0] <= 0xDF ? 2 : 0;
    if (n == 0 || n > left) return 0;
    for (size_t i = 1; i < n; i++) if ((p[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0))) return 0;
    if (n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] >= 0x90))) return 0;
    return n;
}

/* Append a JSON string literal (quoted, escaped) to s; never build JSON with raw %s.
 * Text from peers may not be UTF-8: invalid bytes become U+FFFD so the output stays
 * valid JSON. Returns NULL on OOM (s is freed then). */
static sds rc_json_str(sds s, const char *v) {
    if (!s) return NULL;
    if (!v) return rc_cat(s, "null");
    size_t len = strlen(v);
    sds clean = sdsempty();
    for (size_t i = 0; clean && i < len; ) {
        size_t n = rc_utf8_seq((const unsigned char *)v + i, len - i);
        clean = n ? rc_catlen(clean, v + i, n) : rc_cat(clean, "\xEF\xBF\xBD");
        i += n ? n : 1;
    }
    if (!clean) { sdsfree(s); return NULL; }
    size_t need = json_escape(clean, sdslen(clean), NULL);
    sds t = sdsMakeRoomFor(s, need + 1);
    if (!t) { sdsfree(clean); sdsfree(s); return NULL; }
    s = t;
    json_escape(clean, sdslen(clean), s + sdslen(s));
    sdsIncrLen(s, (ssize_t)need);
    sdsfree(clean);
    return s;
}

/* ---- the plan recorder: what a dry run would do ------------------------------------ */

/* A command's dry run builds its plan as a normal run does, on handles it opened to
 * record (struct docker .record, struct session .record): reads are sent, changes land
 * here. Text: printed in order on stdout; --json: kept for the one document
 * (rc_json_out adds "requests" and "files"). */

/* --dry-run: from here on, what would be sent is a plan (rc->plan, for --json). */
static void rc_plan_begin(struct rc *rc) {
    if (!rc->plan) rc->plan = sdsempty();
    if (!rc->plan_files) rc->plan_files = sdsempty();
}

/* Append one JSON value (owned; NULL after an OOM is dropped) to a plan list. */
static void rc_plan_add(sds *list, sds item) {
    if (!item || !*list) { sdsfree(item); return; }
    *list = rc_cat(sdslen(*list) ? rc_cat(*list, ",") : *list, item);
    sdsfree(item);
}

/* --dry-run: a line of the plan (a step, a command and where it would go). Printed as
 * it is, or kept for the --json document as {"to":TO,"text":LINE} (TO may be NULL). */
static void rc_plan_line(struct rc *rc, const char *to, const char *line) {
    if (!rc->json) { printf("%s\n", line); return; }
    rc_plan_begin(rc);
    rc_plan_add(&rc->plan, rc_cat(rc_json_str(rc_cat(rc_json_str(sdsnew("{\"to\":"), to), ",\"text\":"), line), "}"));
}

/* --dry-run: an Engine API request it would send (prefix + path, body JSON or NULL).
 * Printed as "METHOD PATH BODY", or kept for --json as {"to":"docker","method":..,
 * "path":..,"body":..}. */
static void rc_plan_request(struct rc *rc, const char *prefix, const char *method, const char *path, const char *body) {
    if (!rc->json) { printf("%s %s%s%s%s\n", method, prefix, path, body ? " " : "", body ? body : ""); return; }
    rc_plan_begin(rc);
    sds full = rc_sprintf("%s%s", prefix, path);
    sds e = rc_json_str(rc_cat(rc_json_str(sdsnew("{\"to\":\"docker\",\"method\":"), method), ",\"path\":"), full);
    rc_plan_add(&rc->plan, rc_cat(rc_json_str(rc_cat(e, ",\"body\":"), body), "}"));
    sdsfree(full);
}

/* --dry-run: a command it would send to node IP:PORT. Printed as "would send to
 * IP:PORT: ARGS", or kept for --json as {"to":"ip:port","command":[...]}. */
static void rc_plan_command(struct rc *rc, const char *ip, int port, int argc, const char **argv) {
    if (!rc->json) {
        printf("would send to %s:%d:", ip, port);
        for (int i = 0; i < argc; i++) printf(" %s", argv[i][0] ? argv[i] : "\"\"");
        printf("\n");
        return;
    }
    rc_plan_begin(rc);
    sds e = rc_catprintf(sdsempty(), "{\"to\":\"%s:%d\",\"command\":[", ip, port);
    for (int i = 0; i < argc; i++) e = rc_json_str(i ? rc_cat(e, ",") : e, argv[i]);
    rc_plan_add(&rc->plan, rc_cat(e, "]}"));
}

/* --dry-run: a file the run would write (a node's redis.conf, the manifest). Printed
 * under a "# PATH" line, or kept for --json as {"path":PATH,"content":TEXT}. */
static void rc_plan_file(struct rc *rc, const char *path, const char *text) {
    if (!rc->json) { printf("# %s\n%s\n", path, text); return; }
    rc_plan_begin(rc);
    rc_plan_add(&rc->plan_files, rc_cat(rc_json_str(rc_cat(rc_json_str(sdsnew("{\"path\":"), path), ",\"content\":"), text), "}"));
}

/* --json: print the command's one document (a JSON object, with or without a newline);
 * a dry run's plan goes in as "requests" and "files". Marks the document as written, so
 * main() adds no error document after it. */
static void rc_json_out(struct rc *rc, const char *doc) {
    size_t n = doc ? strlen(doc) : 0;
    while (n && (doc[n - 1] == '\n' || doc[n - 1] == ' ')) n--;
    if (!n || doc[n - 1] != '}') return;
    sds out = sdsnewlen(doc, n - 1);
    int empty = n == 2;   /* "{}" */
    if (rc->plan) out = rc_catprintf(out, "%s\"requests\":[%s]", empty ? "" : ",", rc->plan), empty = 0;
    if (rc->plan_files) out = rc_catprintf(out, "%s\"files\":[%s]", empty ? "" : ",", rc->plan_files);
    out = rc_cat(out, "}\n");
    if (out) fputs(out, stdout);
    sdsfree(out);
    rc->json_done = 1;
}

/* rc_json_out() of a document made with printf. */
__attribute__((format(printf, 2, 3)))
static void rc_json_outf(struct rc *rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds doc = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    rc_json_out(rc, doc);
    sdsfree(doc);
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
    { "no-color", no_argument, NULL, OPT_NO_COLOR }, { "verbose", no_argument, NULL, OPT_VERBOSE }, \
    { "cluster-yes", no_argument, NULL, OPT_YES }

/* A password file (--password-file, --from-password-file): one non-empty line, its line
 * end dropped; *out takes it (the old value freed). */
static int rc_read_password_file(struct rc *rc, const char *opt, const char *path, sds *out) {
    sds p = rc_read_file(rc, path, 4096);
    if (!p) return rc_wrap(rc, "%s", opt);
    sdstrim(p, "\r\n");
    if (sdslen(p) == 0 || strpbrk(p, "\r\n")) { sdsfree(p); return rc_fail(rc, "%s %s: expected one non-empty line", opt, path); }
    sdsfree(*out);
    *out = p;
    return 0;
}

/* Returns 0 if handled, -1 with rc->err set on a bad value. */
static int rc_parse_common(struct rc *rc, int opt, const char *arg) {
    switch (opt) {
    case OPT_JSON: rc->json = 1; return 0;
    case OPT_YES: rc->yes = 1; return 0;
    case OPT_QUIET: rc->quiet = 1; return 0;
    case OPT_NO_COLOR: rc->color = 0; return 0;
    case OPT_VERBOSE: rc->verbose = 1; return 0;
    case OPT_TIMEOUT: {
        double t = 0;
        if (rc_parse_number(arg, 0, 86400, &t) < 0 || t == 0)
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
    case OPT_PASSWORD_FILE: return rc_read_password_file(rc, "--password-file", arg, &rc->password);
    }
    return rc_fail(rc, "unknown option");
}

/* ====================================================================== */
/* 2. Sockets: unix and TCP connect with timeouts, bounded reads/writes    */
/* ====================================================================== */

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
        return rc_fail_as(rc, RC_ERR_UNREACHABLE, "connecting to %s: %s", what, strerror(errno));
    int r = net_wait(fd, POLLOUT, rc_now_ms() + timeout_ms);
    if (r == 0) return rc_fail_as(rc, RC_ERR_UNREACHABLE, "connecting to %s: timed out after %d ms", what, timeout_ms);
    if (r < 0 && rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "connecting to %s: interrupted", what);
    if (r < 0) return rc_fail_as(rc, RC_ERR_UNREACHABLE, "connecting to %s: %s", what, strerror(errno));
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
    if (soerr) return rc_fail_as(rc, RC_ERR_UNREACHABLE, "connecting to %s: %s", what, strerror(soerr));
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

/* Resolve host (name or IPv4/IPv6 literal) to a numeric address string (an IPv6 scope
 * as "%N"). inet_ntop(3), not getnameinfo(3): that one links a reverse-DNS client too. */
static int net_resolve(struct rc *rc, const char *host, char *out, size_t outlen) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int e = getaddrinfo(host, NULL, &hints, &res);
    if (e != 0 || !res) return rc_fail(rc, "resolving %s: %s", host, e ? gai_strerror(e) : "no address");
    const struct sockaddr_in6 *v6 = res->ai_family == AF_INET6 ? (const void *)res->ai_addr : NULL;
    const void *bin = v6 ? (const void *)&v6->sin6_addr : (const void *)&((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr;
    int ok = inet_ntop(res->ai_family, bin, out, (socklen_t)outlen) != NULL;
    size_t n = ok ? strlen(out) : 0;
    if (ok && v6 && v6->sin6_scope_id) ok = snprintf(out + n, outlen - n, "%%%u", (unsigned)v6->sin6_scope_id) < (int)(outlen - n);
    freeaddrinfo(res);
    if (!ok) return rc_fail(rc, "resolving %s: the address does not fit in %zu bytes", host, outlen);
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
    if (e != 0 || !res) return rc_fail_as(rc, RC_ERR_UNREACHABLE, "resolving %s: %s", what, e ? gai_strerror(e) : "no address");
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
            if (r == 0) return rc_fail_as(rc, RC_ERR_TIMEOUT, "writing to %s: timed out", what);
            if (r < 0 && rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "writing to %s: interrupted", what);
            if (r < 0) return rc_fail_as(rc, RC_ERR_UNREACHABLE, "writing to %s: %s", what, strerror(errno));
            continue;
        }
        return rc_fail_as(rc, RC_ERR_UNREACHABLE, "writing to %s: %s", what, n < 0 ? strerror(errno) : "connection closed");
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
            if (r == 0) { rc_fail_as(rc, RC_ERR_TIMEOUT, "reading from %s: timed out", what); return -1; }
            if (r < 0 && rc_interrupted()) { rc_fail_as(rc, RC_ERR_INTERRUPTED, "reading from %s: interrupted", what); return -1; }
            if (r < 0) { rc_fail_as(rc, RC_ERR_UNREACHABLE, "reading from %s: %s", what, strerror(errno)); return -1; }
            continue;
        }
        rc_fail_as(rc, RC_ERR_UNREACHABLE, "reading from %s: %s", what, strerror(errno));
        return -1;
    }
}

/* ====================================================================== */
/* 3. HTTP/1.1 client: incremental response parser, chunked, streams       */
/* ====================================================================== */

/* The parser is a pure state machine: http_parser_feed() takes whatever bytes arrived
 * and never looks at a socket, so it can be fuzzed and unit tested. Every size it
 * reads from the peer is bounded: the head (status line + headers), the chunk-size
 * and trailer lines, and the body (max_body). */
#define HTTP_MAX_HEAD       ((size_t)64 * 1024)
#define HTTP_MAX_CHUNK_LINE 4096
#define HTTP_MAX_LINE       ((size_t)64 * 1024) /* streamed bodies: one JSON object per line */
#define HTTP_MAX_JSON_BODY  (64ULL * 1024 * 1024)

enum http_state {
    HTTP_HEAD,            /* collecting status line and headers */
    HTTP_BODY_LENGTH,     /* Content-Length body */
    HTTP_BODY_EOF,        /* body ends when the peer closes */
    HTTP_CHUNK_SIZE,      /* hex size, optional ;extensions, CRLF */
    HTTP_CHUNK_DATA,
    HTTP_CHUNK_CR,        /* the CRLF after chunk data */
    HTTP_CHUNK_LF,
    HTTP_TRAILERS,        /* header lines after the last chunk, until an empty line */
    HTTP_DONE,
    HTTP_ERROR
};

/* Body bytes go to a callback as they are decoded; it returns 0, or -1 to abort. */
typedef int (*http_body_fn)(void *ud, const char *data, size_t len);

struct http_parser {
    enum http_state state;
    int head_request;        /* answer to HEAD: never a body */
    int status;              /* e.g. 200 */
    int keep_alive;          /* connection reusable after this response */
    int chunked;
    int64_t content_length;  /* -1 when absent */
    uint64_t remaining;      /* bytes left in the Content-Length body or current chunk */
    uint64_t body_len;       /* decoded body bytes so far */
    uint64_t max_body;
    sds head;                /* raw head, kept for header lookups; NULL until first byte */
    size_t reason_off, reason_len;  /* reason phrase inside head */
    int chunk_digits;        /* hex digits seen on the current chunk-size line */
    int chunk_in_ext;        /* past the digits (extension or whitespace) */
    size_t line_len;         /* bytes on the current chunk-size or trailer line */
    size_t trailer_len;      /* total trailer bytes */
    const char *error;       /* static text saying why parsing failed */
};

/* Prepare p for one response. max_body bounds the decoded body; head_request says the
 * request was HEAD. Call http_parser_free() afterwards. */
static void http_parser_init(struct http_parser *p, uint64_t max_body, int head_request) {
    memset(p, 0, sizeof *p);
    p->state = HTTP_HEAD;
    p->head_request = head_request;
    p->content_length = -1;
    p->max_body = max_body;
    p->keep_alive = 1;
}

static void http_parser_free(struct http_parser *p) {
    sdsfree(p->head);
    p->head = NULL;
}

static ssize_t http_parser_fail(struct http_parser *p, const char *why) {
    p->state = HTTP_ERROR;
    p->error = why;
    return -1;
}

/* Find header `name` (case-insensitive) in the parsed head. Returns a pointer to its
 * trimmed value (not NUL-terminated) and sets *len, or NULL. First occurrence wins. */
static const char *http_header(const struct http_parser *p, const char *name, size_t *len) {
    if (!p->head) return NULL;
    size_t nlen = strlen(name);
    const char *s = p->head, *end = p->head + sdslen(p->head);
    const char *line = memchr(s, '\n', (size_t)(end - s));   /* skip the status line */
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) eol = end;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && (size_t)(colon - line) == nlen && strncasecmp(line, name, nlen) == 0) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        line = eol < end ? eol : NULL;
    }
    return NULL;
}

/* Does the comma-separated header value contain token (case-insensitive)? */
static int http_value_has_token(const char *v, size_t len, const char *token) {
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t start = i;
        while (i < len && v[i] != ',') i++;
        size_t e = i;
        while (e > start && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e - start == tlen && strncasecmp(v + start, token, tlen) == 0) return 1;
    }
    return 0;
}

/* Parse a Content-Length value: digits only, bounded well below overflow. */
static int http_parse_length(const char *v, size_t len, int64_t *out) {
    if (len == 0 || len > 18) return -1;   /* 18 digits < INT64_MAX: no overflow possible */
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        n = n * 10 + (v[i] - '0');
    }
    *out = n;
    return 0;
}

/* Validate the status line and every header line, then decide how the body is framed. */
static int http_parse_head(struct http_parser *p) {
    const char *s = p->head, *end = p->head + sdslen(p->head);
    const char *eol = memchr(s, '\n', (size_t)(end - s));
    if (!eol) return -1;
    size_t l = (size_t)(eol - s);
    if (l && s[l - 1] == '\r') l--;
    if (l < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) || s[8] != ' ' ||
        !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) || !isdigit((unsigned char)s[11]) ||
        (l > 12 && s[12] != ' '))
        { p->error = "malformed status line"; return -1; }
    int minor = s[7] - '0';
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (p->status < 100) { p->error = "malformed status code"; return -1; }
    p->reason_off = l > 13 ? 13 : l;
    p->reason_len = l > 13 ? l - 13 : 0;
    for (const char *line = eol + 1; line < end;) {
        const char *e = memchr(line, '\n', (size_t)(end - line));
        if (!e) e = end;
        size_t ll = (size_t)(e - line);
        if (ll && line[ll - 1] == '\r') ll--;
        if (ll == 0) break;   /* the blank line that ends the head */
        if (line[0] == ' ' || line[0] == '\t') { p->error = "obsolete header folding"; return -1; }
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line) { p->error = "malformed header line"; return -1; }
        for (const char *c = line; c < colon; c++)
            if (*c <= ' ' || *c >= 127) { p->error = "malformed header name"; return -1; }
        for (const char *c = colon; c < line + ll; c++)
            if ((unsigned char)*c < ' ' && *c != '\t') { p->error = "control byte in header"; return -1; }
        line = e + 1;
    }
    /* Content-Length: every occurrence must agree (RFC 9112 6.3 on conflicting values). */
    for (const char *line = eol + 1; line < end;) {
        const char *e = memchr(line, '\n', (size_t)(end - line));
        if (!e) e = end;
        if ((size_t)(e - line) > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
            const char *v = line + 15, *ve = e;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            int64_t n;
            if (http_parse_length(v, (size_t)(ve - v), &n) < 0) { p->error = "bad Content-Length"; return -1; }
            if (p->content_length >= 0 && p->content_length != n) { p->error = "conflicting Content-Length"; return -1; }
            p->content_length = n;
        }
        line = e + 1;
    }
    size_t vlen;
    const char *v = http_header(p, "Transfer-Encoding", &vlen);
    if (v) {
        if (!http_value_has_token(v, vlen, "chunked")) { p->error = "unsupported Transfer-Encoding"; return -1; }
        p->chunked = 1;
        p->content_length = -1;   /* chunked framing wins over a Content-Length */
    }
    v = http_header(p, "Connection", &vlen);
    if (minor == 0) p->keep_alive = v && http_value_has_token(v, vlen, "keep-alive");
    if (v && http_value_has_token(v, vlen, "close")) p->keep_alive = 0;
    return 0;
}

/* After the head: pick the body state (or finish) from status, method and framing. */
static void http_start_body(struct http_parser *p) {
    if (p->head_request || p->status == 204 || p->status == 304 || p->status < 200) {
        p->state = HTTP_DONE;
    } else if (p->chunked) {
        p->state = HTTP_CHUNK_SIZE;
    } else if (p->content_length >= 0) {
        p->remaining = (uint64_t)p->content_length;
        p->state = p->remaining ? HTTP_BODY_LENGTH : HTTP_DONE;
    } else {
        p->state = HTTP_BODY_EOF;
        p->keep_alive = 0;
    }
}

/* Collect head bytes; returns bytes consumed, sets state when the blank line arrives. */
static ssize_t http_feed_head(struct http_parser *p, const char *buf, size_t len) {
    if (!p->head && !(p->head = sdsempty())) return http_parser_fail(p, "out of memory");
    for (size_t i = 0; i < len; i++) {
        size_t hl = sdslen(p->head);
        if (hl >= HTTP_MAX_HEAD) return http_parser_fail(p, "response head larger than 64 KB");
        sds t = sdscatlen(p->head, buf + i, 1);
        if (!t) return http_parser_fail(p, "out of memory");
        p->head = t;
        hl++;
        /* A head ends with an empty line: "\n\n" or "\n\r\n" (bare LF tolerated). */
        if (buf[i] != '\n') continue;
        if (!((hl >= 2 && p->head[hl - 2] == '\n') || (hl >= 3 && p->head[hl - 2] == '\r' && p->head[hl - 3] == '\n')))
            continue;
        if (http_parse_head(p) < 0) { p->state = HTTP_ERROR; return -1; }
        if (p->status >= 100 && p->status < 200) {
            if (p->status == 101) return http_parser_fail(p, "unexpected protocol switch");
            sdsclear(p->head);   /* 100 Continue and friends: the real answer follows */
            p->content_length = -1;
            p->chunked = 0;
            continue;
        }
        if (p->content_length > 0 && (uint64_t)p->content_length > p->max_body && !p->head_request)
            return http_parser_fail(p, "response body larger than the limit");
        http_start_body(p);
        return (ssize_t)(i + 1);
    }
    return (ssize_t)len;
}

static int http_deliver(struct http_parser *p, const char *data, size_t n, http_body_fn fn, void *ud) {
    if (n > p->max_body - p->body_len) { http_parser_fail(p, "response body larger than the limit"); return -1; }
    p->body_len += n;
    if (fn && fn(ud, data, n) < 0) { http_parser_fail(p, "body consumer failed"); return -1; }
    return 0;
}

/* One byte of a chunk-size line: hex digits, then optional whitespace/;extension, CRLF. */
static int http_feed_chunk_size_byte(struct http_parser *p, char c) {
    if (++p->line_len > HTTP_MAX_CHUNK_LINE) return http_parser_fail(p, "chunk-size line too long"), -1;
    if (c == '\n') {
        if (p->chunk_digits == 0) return http_parser_fail(p, "missing chunk size"), -1;
        p->line_len = 0;
        p->chunk_digits = 0;
        p->chunk_in_ext = 0;
        if (p->remaining == 0) { p->state = HTTP_TRAILERS; p->trailer_len = 0; }
        else p->state = HTTP_CHUNK_DATA;
        return 0;
    }
    if (!p->chunk_in_ext && isxdigit((unsigned char)c)) {
        if (p->remaining > (UINT64_MAX >> 4)) return http_parser_fail(p, "chunk size overflow"), -1;
        int d = isdigit((unsigned char)c) ? c - '0' : (tolower((unsigned char)c) - 'a' + 10);
        p->remaining = (p->remaining << 4) | (uint64_t)d;
        p->chunk_digits++;
        if (p->remaining > p->max_body) return http_parser_fail(p, "chunk larger than the body limit"), -1;
        return 0;
    }
    if (p->chunk_digits == 0) return http_parser_fail(p, "malformed chunk size"), -1;
    if (c == ';' || c == ' ' || c == '\t' || c == '\r') { p->chunk_in_ext = 1; return 0; }
    if (p->chunk_in_ext && (unsigned char)c >= ' ') return 0;   /* extension text, ignored */
    return http_parser_fail(p, "malformed chunk size"), -1;
}

/* Feed bytes of one response. Returns how many were consumed: it stops at the end of
 * the response so that pipelined bytes stay with the caller for the next one. Returns
 * -1 on a protocol error (p->error says why) or when the body callback fails. */
static ssize_t http_parser_feed(struct http_parser *p, const char *buf, size_t len, http_body_fn fn, void *ud) {
    size_t i = 0;
    while (i < len) {
        switch (p->state) {
        case HTTP_HEAD: {
            ssize_t n = http_feed_head(p, buf + i, len - i);
            if (n < 0) return -1;
            i += (size_t)n;
            break;
        }
        case HTTP_BODY_LENGTH:
        case HTTP_CHUNK_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > p->remaining) n = (size_t)p->remaining;
            if (http_deliver(p, buf + i, n, fn, ud) < 0) return -1;
            i += n;
            p->remaining -= n;
            if (p->remaining == 0) p->state = p->state == HTTP_BODY_LENGTH ? HTTP_DONE : HTTP_CHUNK_CR;
            break;
        }
        case HTTP_BODY_EOF:
            if (http_deliver(p, buf + i, len - i, fn, ud) < 0) return -1;
            i = len;
            break;
        case HTTP_CHUNK_SIZE:
            if (http_feed_chunk_size_byte(p, buf[i++]) < 0) return -1;
            break;
        case HTTP_CHUNK_CR:
            if (buf[i] == '\n') { p->state = HTTP_CHUNK_SIZE; i++; break; }
            if (buf[i] != '\r') return http_parser_fail(p, "missing CRLF after chunk data");
            p->state = HTTP_CHUNK_LF;
            i++;
            break;
        case HTTP_CHUNK_LF:
            if (buf[i++] != '\n') return http_parser_fail(p, "missing CRLF after chunk data");
            p->state = HTTP_CHUNK_SIZE;
            break;
        case HTTP_TRAILERS: {
            char c = buf[i++];
            if (++p->trailer_len > HTTP_MAX_HEAD) return http_parser_fail(p, "trailers larger than 64 KB");
            if (c == '\n') {
                if (p->line_len == 0) p->state = HTTP_DONE;
                p->line_len = 0;
            } else if (c != '\r') {
                p->line_len++;
            }
            break;
        }
        case HTTP_DONE:
            return (ssize_t)i;
        case HTTP_ERROR:
            return -1;
        }
    }
    return (ssize_t)i;
}

/* The peer closed the connection. Returns 0 if that completes the response (a body
 * delimited by close), -1 if the response was cut short. */
static int http_parser_eof(struct http_parser *p) {
    if (p->state == HTTP_BODY_EOF) { p->state = HTTP_DONE; return 0; }
    if (p->state == HTTP_DONE) return 0;
    http_parser_fail(p, p->state == HTTP_HEAD ? "connection closed before a response" : "connection closed mid-body");
    return -1;
}

static int http_parser_done(const struct http_parser *p) { return p->state == HTTP_DONE; }

/* The reason phrase of the status line ("Conflict"), or "" */
static sds http_reason(const struct http_parser *p) {
    if (!p->head || p->reason_off + p->reason_len > sdslen(p->head)) return sdsempty();
    return sdsnewlen(p->head + p->reason_off, p->reason_len);
}

/* ---- body sinks ---------------------------------------------------------- */

/* Collect the body into an sds (the parser's max_body bounds it). */
static int http_sink_sds(void *ud, const char *data, size_t len) {
    sds *s = ud;
    sds t = sdscatlen(*s, data, len);
    if (!t) return -1;
    *s = t;
    return 0;
}

/* Split a streamed body into lines (LF, CR stripped), each handed to on_line; a line
 * longer than HTTP_MAX_LINE is an error rather than unbounded growth. */
struct http_lines {
    sds buf;
    int (*on_line)(void *ud, const char *line, size_t len);
    void *ud;
    int too_long;
};

static int http_lines_emit(struct http_lines *l) {
    size_t n = sdslen(l->buf);
    if (n && l->buf[n - 1] == '\r') n--;
    int r = n ? l->on_line(l->ud, l->buf, n) : 0;
    sdsclear(l->buf);
    return r;
}

static int http_sink_lines(void *ud, const char *data, size_t len) {
    struct http_lines *l = ud;
    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (sdslen(l->buf) + take > HTTP_MAX_LINE) { l->too_long = 1; return -1; }
        sds t = sdscatlen(l->buf, data, take);
        if (!t) return -1;
        l->buf = t;
        if (!nl) return 0;
        if (http_lines_emit(l) < 0) return -1;
        data += take + 1;
        len -= take + 1;
    }
    return 0;
}

/* A final line without a newline still counts. */
static int http_lines_flush(struct http_lines *l) {
    return sdslen(l->buf) ? http_lines_emit(l) : 0;
}

/* ---- connections ------------------------------------------------------------ */

/* One HTTP connection; bytes read past the end of a response stay in buf for the next
 * (pipelined) response. */
struct http_conn {
    int fd;                 /* -1 when closed */
    int reused;             /* at least one response already read on it */
    char what[320];         /* the peer, for error messages */
    size_t off, len;        /* unconsumed bytes buf[off..off+len) */
    char buf[16384];
};

static void http_conn_init(struct http_conn *c, const char *what) {
    c->fd = -1;
    c->reused = 0;
    c->off = c->len = 0;
    snprintf(c->what, sizeof c->what, "%s", what);
}

static void http_conn_close(struct http_conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->reused = 0;
    c->off = c->len = 0;
}

/* Format a request head. content_length < 0 means no body headers at all. NULL on OOM. */
static sds http_format_request(const char *method, const char *path, const char *host,
                               const char *content_type, int64_t content_length) {
    sds s = rc_sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rcluster/" RCLUSTER_VERSION "\r\n",
                       method, path, host);
    if (content_length >= 0) {
        if (content_type) s = rc_catprintf(s, "Content-Type: %s\r\n", content_type);
        s = rc_catprintf(s, "Content-Length: %lld\r\n", (long long)content_length);
    }
    return rc_cat(s, "\r\n");
}

/* Feed the connection's buffered bytes to p. Returns 1 when the response is complete,
 * 0 when more bytes are needed, -1 on a parse error (rc->err set). */
static int http_conn_feed(struct rc *rc, struct http_conn *c, struct http_parser *p, http_body_fn fn, void *ud) {
    if (c->len == 0) return http_parser_done(p);
    ssize_t n = http_parser_feed(p, c->buf + c->off, c->len, fn, ud);
    if (n < 0) return rc_fail(rc, "bad HTTP response from %s: %s", c->what, p->error);
    c->off += (size_t)n;
    c->len -= (size_t)n;
    if (c->len == 0) c->off = 0;
    return http_parser_done(p);
}

/* Read more bytes into the connection buffer. Returns bytes read, 0 on close, -1 error. */
static ssize_t http_conn_fill(struct rc *rc, struct http_conn *c, int64_t deadline) {
    if (c->off && c->len == 0) c->off = 0;
    if (c->off + c->len == sizeof c->buf) {
        memmove(c->buf, c->buf + c->off, c->len);
        c->off = 0;
    }
    ssize_t n = net_read_some(rc, c->fd, c->buf + c->off + c->len, sizeof c->buf - c->off - c->len, deadline, c->what);
    if (n > 0) c->len += (size_t)n;
    return n;
}

/* Read one response through p, giving body bytes to fn. idle_ms bounds the wait for
 * each read (a long stream may go on for minutes as long as it keeps moving).
 * Returns 0 when complete, -1 (rc->err set). Closes the connection unless reusable. */
static int http_read_response(struct rc *rc, struct http_conn *c, struct http_parser *p,
                              http_body_fn fn, void *ud, int idle_ms) {
    for (;;) {
        int r = http_conn_feed(rc, c, p, fn, ud);
        if (r < 0) { http_conn_close(c); return -1; }
        if (r == 1) break;
        ssize_t n = http_conn_fill(rc, c, rc_now_ms() + idle_ms);
        if (n < 0) { http_conn_close(c); return -1; }
        if (n == 0) {
            if (http_parser_eof(p) < 0) {
                rc_fail(rc, "bad HTTP response from %s: %s", c->what, p->error);
                http_conn_close(c);
                return -1;
            }
            http_conn_close(c);
            return 0;
        }
    }
    c->reused = 1;
    if (!p->keep_alive) http_conn_close(c);
    return 0;
}

/* A request body produced piecewise (a file, a tar stream): fills buf, returns bytes
 * written, 0 at the end, -1 on error (rc->err set). */
typedef ssize_t (*http_body_source)(struct rc *rc, void *ud, char *buf, size_t cap);

/* Send `length` body bytes from src while reading the response at the same time, so
 * that a daemon writing progress before it has read the whole upload never deadlocks
 * with us. An early answer (an error before the upload finished) ends the upload.
 * Returns 0 when the response is complete, -1 (rc->err set). */
static int http_upload(struct rc *rc, struct http_conn *c, struct http_parser *p, http_body_source src, void *src_ud,
                       uint64_t length, http_body_fn fn, void *ud, int idle_ms) {
    char *out = malloc(65536);
    if (!out) return rc_fail_oom(rc);
    size_t out_off = 0, out_len = 0;
    uint64_t sent = 0;
    int ret = -1;
    int64_t deadline = rc_now_ms() + idle_ms;
    for (;;) {
        int r = http_conn_feed(rc, c, p, fn, ud);
        if (r < 0) goto out;
        if (r == 1) { ret = 0; break; }
        int sending = sent < length || out_len > 0;
        if (sending && out_len == 0) {
            uint64_t want = length - sent;
            ssize_t n = src(rc, src_ud, out, want < 65536 ? (size_t)want : 65536);
            if (n < 0) goto out;
            if (n == 0) { rc_fail(rc, "upload to %s: body ended %llu bytes early", c->what, (unsigned long long)(length - sent)); goto out; }
            out_off = 0;
            out_len = (size_t)n;
            sent += (uint64_t)n;
        }
        struct pollfd pfd = { c->fd, (short)(POLLIN | (sending ? POLLOUT : 0)), 0 };
        int64_t left = deadline - rc_now_ms();
        if (left <= 0) { rc_fail(rc, "talking to %s: timed out", c->what); goto out; }
        int pr = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (pr < 0 && errno == EINTR) {
            if (rc_interrupted()) { rc_fail(rc, "talking to %s: interrupted", c->what); goto out; }
            continue;
        }
        if (pr < 0) { rc_fail_errno(rc, "poll"); goto out; }
        if (pr == 0) continue;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = http_conn_fill(rc, c, rc_now_ms() + idle_ms);
            if (n < 0) goto out;
            if (n == 0) {
                if (http_parser_eof(p) < 0) { rc_fail(rc, "bad HTTP response from %s: %s", c->what, p->error); goto out; }
                ret = 0;
                break;
            }
            deadline = rc_now_ms() + idle_ms;
            continue;
        }
        if (sending && (pfd.revents & POLLOUT)) {
            ssize_t n = send(c->fd, out + out_off, out_len, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n < 0) {
                /* The daemon may have answered and closed (e.g. 400 before reading all):
                 * stop sending and let the reads above pick up its message. */
                if (errno == EPIPE || errno == ECONNRESET) { out_len = 0; sent = length; continue; }
                rc_fail(rc, "writing to %s: %s", c->what, strerror(errno));
                goto out;
            }
            out_off += (size_t)n;
            out_len -= (size_t)n;
            deadline = rc_now_ms() + idle_ms;
        }
    }
out:
    free(out);
    if (ret < 0 || !p->keep_alive || sent < length || out_len) http_conn_close(c);
    else c->reused = 1;
    return ret;
}

/* ====================================================================== */
/* 4. Docker Engine API: endpoint, version negotiation, calls, streams     */
/* ====================================================================== */

/* Used when /_ping carries no Api-Version header (very old daemons, some proxies):
 * 1.41 is Docker 20.10, the oldest engine we support, and what Podman reports. */
#define DOCKER_DEFAULT_API "1.41"
#define DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"
#define DOCKER_MAX_PARALLEL 16

/* One Engine endpoint plus a keep-alive connection for sequential calls. */
struct docker {
    struct rc *rc;
    int tcp;                 /* 0: unix socket, 1: tcp:// without TLS */
    sds target;              /* socket path, or host name for tcp */
    int port;
    sds host_header;
    sds prefix;              /* "/v1.41": prepended to every API path */
    int status;              /* HTTP status of the last answer (0: none came), to decide on */
    int record;              /* set by a command for its dry run: GET and HEAD are sent, every
                                other request is recorded into the plan (rc_plan_*) instead */
    struct http_conn conn;
};

/* A docker that owns nothing yet, so docker_free() is safe before docker_open(). */
static void docker_init_closed(struct docker *d, struct rc *rc) {
    memset(d, 0, sizeof *d);
    d->rc = rc;
    http_conn_init(&d->conn, "docker");
}

static void docker_free(struct docker *d) {
    http_conn_close(&d->conn);
    sdsfree(d->target);
    sdsfree(d->host_header);
    sdsfree(d->prefix);
    d->target = d->host_header = d->prefix = NULL;
}

/* Parse DOCKER_HOST ("unix:///path", "tcp://host:port"; NULL means the default socket). */
static int docker_parse_host(struct rc *rc, struct docker *d, const char *host) {
    if (!host || !*host) host = "unix://" DOCKER_DEFAULT_SOCKET;
    if (strncmp(host, "unix://", 7) == 0) {
        d->tcp = 0;
        d->target = sdsnew(host + 7);
        d->host_header = sdsnew("docker");
        if (!d->target || !d->host_header) return rc_fail_oom(rc);
        if (!sdslen(d->target)) return rc_fail(rc, "DOCKER_HOST=%s: missing socket path", host);
        return 0;
    }
    if (strncmp(host, "tcp://", 6) == 0) {
        const char *hp = host + 6;
        const char *tls = getenv("DOCKER_TLS_VERIFY");
        if (tls && *tls)
            return rc_fail(rc, "DOCKER_HOST=%s with DOCKER_TLS_VERIFY: TLS is not supported; "
                               "use the unix socket or a plain tcp:// endpoint", host);
        const char *colon = strrchr(hp, ':');
        const char *slash = strchr(hp, '/');
        long port = 2375;
        size_t hlen = slash ? (size_t)(slash - hp) : strlen(hp);
        if (colon && (!slash || colon < slash)) {
            char pbuf[8];
            size_t plen = (size_t)((slash ? slash : hp + strlen(hp)) - colon - 1);
            if (plen == 0 || plen >= sizeof pbuf) return rc_fail(rc, "DOCKER_HOST=%s: bad port", host);
            memcpy(pbuf, colon + 1, plen);
            pbuf[plen] = 0;
            if (rc_parse_int(pbuf, 1, 65535, &port) < 0) return rc_fail(rc, "DOCKER_HOST=%s: bad port", host);
            hlen = (size_t)(colon - hp);
        }
        if (hlen == 0) return rc_fail(rc, "DOCKER_HOST=%s: missing host", host);
        d->tcp = 1;
        d->port = (int)port;
        d->target = sdsnewlen(hp, hlen);
        if (d->target && d->target[0] == '[' && sdslen(d->target) > 2) sdsrange(d->target, 1, -2);
        d->host_header = sdsnewlen(hp, (size_t)((slash ? slash : hp + strlen(hp)) - hp));
        if (!d->target || !d->host_header) return rc_fail_oom(rc);
        return 0;
    }
    const char *sep = strstr(host, "://");
    return rc_fail(rc, "DOCKER_HOST=%s: the %.*s:// scheme is not supported (use unix://PATH or tcp://HOST:PORT without TLS)",
                   host, sep ? (int)(sep - host) : (int)strlen(host), host);
}

/* Open a new connection to the daemon; each failure names its own remedy. */
static int docker_connect(struct docker *d, struct http_conn *c) {
    struct rc *rc = d->rc;
    int fd;
    if (d->tcp) {
        char what[300];
        snprintf(what, sizeof what, "tcp://%s:%d", d->target, d->port);
        http_conn_init(c, what);
        fd = net_connect_tcp(rc, d->target, d->port, rc->io_timeout_ms);
        if (fd < 0) return rc_wrap(rc, "cannot reach the Docker daemon at %s (is it listening there without TLS?)", what);
    } else {
        char what[160];
        snprintf(what, sizeof what, "unix://%s", d->target);
        http_conn_init(c, what);
        struct stat st;
        if (stat(d->target, &st) < 0 && errno == ENOENT)
            return rc_fail(rc, "Docker socket %s does not exist: is Docker installed and running? "
                               "Start it (e.g. `sudo systemctl start docker`) or set DOCKER_HOST", d->target);
        if (access(d->target, R_OK | W_OK) < 0 && errno == EACCES)
            return rc_fail(rc, "permission denied on %s: add your user to the docker group "
                               "(`sudo usermod -aG docker $USER`, then log in again) or run as root", d->target);
        fd = net_connect_unix(rc, d->target, rc->io_timeout_ms);
        if (fd < 0) return rc_wrap(rc, "the Docker daemon is not answering on %s (is it running? "
                                       "`sudo systemctl start docker`)", d->target);
    }
    c->fd = fd;
    return 0;
}

/* The daemon's own words from an error body: Docker and Podman both send
 * {"message": "..."}; anything else is shown as (bounded) text. */
static sds docker_error_text(const char *body, size_t len) {
    if (!body || !len) return sdsempty();
    json_value_s *v = json_parse(body, len, NULL);
    const char *m = v ? json_string(json_get(v, "message")) : NULL;
    sds s = m ? sdsnew(m) : sdsnewlen(body, len > 300 ? 300 : len);
    json_free(v);
    if (s) s = sdstrim(s, " \r\n");
    return s;
}

/* A request head for fullpath plus its JSON body (NULL: none; a POST still says
 * Content-Length: 0). NULL on OOM. */
static sds docker_format_request(struct docker *d, const char *method, const char *fullpath,
                                 const char *body, size_t blen) {
    int has_body = body != NULL || strcmp(method, "POST") == 0;
    sds req = http_format_request(method, fullpath, d->host_header, body ? "application/json" : NULL,
                                  has_body ? (int64_t)blen : -1);
    return body && blen ? rc_catlen(req, body, blen) : req;
}

/* Send one request on c and read the answer through p. A keep-alive connection the
 * daemon closed while idle fails before any byte arrives; that case is retried once
 * on a fresh connection (the daemon cannot have acted on the request). */
static int docker_exchange(struct docker *d, struct http_conn *c, const char *method, const char *path,
                           const char *body, size_t blen, struct http_parser *p, uint64_t max_body,
                           http_body_fn fn, void *ud, int idle_ms) {
    struct rc *rc = d->rc;
    for (int attempt = 0;; attempt++) {
        /* Before connecting: the caller frees p on every path. */
        http_parser_init(p, max_body, strcmp(method, "HEAD") == 0);
        if (c->fd < 0 && docker_connect(d, c) < 0) return -1;
        int reused = c->reused;
        sds req = docker_format_request(d, method, path, body, blen);
        if (!req) return rc_fail_oom(rc);
        int r = net_write_all(rc, c->fd, req, sdslen(req), rc_now_ms() + rc->io_timeout_ms, c->what);
        sdsfree(req);
        if (r == 0) r = http_read_response(rc, c, p, fn, ud, idle_ms);
        if (r == 0) return 0;
        int nothing_back = p->state == HTTP_HEAD && (!p->head || sdslen(p->head) == 0);
        http_conn_close(c);
        if (!(reused && nothing_back && attempt == 0)) return -1;
        http_parser_free(p);
    }
}

/* Turn a finished response into an error unless it is 2xx or `allow`:
 * "POST /v1.41/containers/create?name=redis-3: 409 Conflict: <daemon message>". */
static int docker_check_status(struct docker *d, const char *method, const char *fullpath,
                               const struct http_parser *p, const char *body, size_t blen, int allow) {
    d->status = p->status;
    if ((p->status >= 200 && p->status < 300) || p->status == allow) return 0;
    sds reason = http_reason(p);
    sds msg = docker_error_text(body, blen);
    rc_fail(d->rc, "%s %s: %d%s%s%s%s", method, fullpath, p->status, reason && sdslen(reason) ? " " : "",
            reason ? reason : "", msg && sdslen(msg) ? ": " : "", msg ? msg : "");
    sdsfree(reason);
    sdsfree(msg);
    return -1;
}

/* A recording handle's request, into the plan instead of onto the wire. */
static void docker_record_request(struct docker *d, const char *method, const char *path, const char *body) {
    rc_plan_request(d->rc, d->prefix ? d->prefix : "/v" DOCKER_DEFAULT_API, method, path, body);
}

/* Call the Engine API: path without the version prefix ("/containers/json?all=1").
 * body is JSON or NULL. On success returns the HTTP status and, when out is not NULL,
 * the body (caller frees). Non-2xx statuses other than `allow` (0: none) are errors.
 * In --dry-run only GET and HEAD reach the daemon; other methods are printed. */
static int docker_call(struct docker *d, const char *method, const char *path, const char *body, sds *out, int allow) {
    struct rc *rc = d->rc;
    if (out) *out = NULL;
    if (d->record && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        docker_record_request(d, method, path, body);
        return 200;
    }
    sds fullpath = rc_sprintf("%s%s", d->prefix, path);
    sds resp = sdsempty();
    if (!fullpath || !resp) { sdsfree(fullpath); sdsfree(resp); return rc_fail_oom(rc); }
    struct http_parser p;
    int r = docker_exchange(d, &d->conn, method, fullpath, body, body ? strlen(body) : 0, &p,
                            HTTP_MAX_JSON_BODY, http_sink_sds, &resp, rc->io_timeout_ms * 6);
    if (r < 0) rc_wrap(rc, "%s %s", method, fullpath);
    else if (docker_check_status(d, method, fullpath, &p, resp, sdslen(resp), allow) < 0) r = -1;
    else r = p.status;
    http_parser_free(&p);
    sdsfree(fullpath);
    if (r >= 0 && out) *out = resp;
    else sdsfree(resp);
    return r;
}

/* docker_call() whose answer is parsed as JSON. Returns the status; *out is NULL
 * for an allowed non-2xx status or a dry-run. */
static int docker_call_json(struct docker *d, const char *method, const char *path, const char *body,
                            json_value_s **out, int allow) {
    sds raw = NULL;
    *out = NULL;
    int st = docker_call(d, method, path, body, &raw, allow);
    if (st < 0) return -1;
    if (st >= 200 && st < 300 && raw && sdslen(raw)) {
        json_error_s err;
        *out = json_parse(raw, sdslen(raw), &err);
        if (!*out) {
            rc_fail(d->rc, "%s %s%s: bad JSON at byte %zu: %s", method, d->prefix, path, err.offset, err.message ? err.message : "?");
            sdsfree(raw);
            return -1;
        }
    }
    sdsfree(raw);
    return st;
}

/* Connect and negotiate the API version from GET /_ping: DOCKER_API_VERSION wins,
 * else the daemon's own Api-Version (it only ever raises its minimum, so following
 * it keeps us working with newer engines), else 1.41. */
#define DOCKER_MIN_API_MINOR 24

static int docker_open(struct rc *rc, struct docker *d) {
    memset(d, 0, sizeof *d);
    d->rc = rc;
    http_conn_init(&d->conn, "docker");
    if (docker_parse_host(rc, d, rc->docker_host) < 0) return -1;
    struct http_parser p;
    sds body = sdsempty();
    if (!body) return rc_fail_oom(rc);
    int r = docker_exchange(d, &d->conn, "GET", "/_ping", NULL, 0, &p, 4096, http_sink_sds, &body, rc->io_timeout_ms);
    if (r < 0) rc_wrap(rc, "GET /_ping");
    if (r == 0 && p.status != 200) {
        sds msg = docker_error_text(body, sdslen(body));
        r = rc_fail(rc, "GET /_ping on %s: %d: %s (is this a Docker Engine API endpoint?)", d->conn.what, p.status, msg ? msg : "");
        sdsfree(msg);
    }
    char ver[16] = DOCKER_DEFAULT_API;
    const char *env = getenv("DOCKER_API_VERSION");
    size_t vlen = 0;
    const char *hv = r == 0 ? http_header(&p, "Api-Version", &vlen) : NULL;
    if (env && *env) {
        snprintf(ver, sizeof ver, "%s", env[0] == 'v' ? env + 1 : env);
    } else if (hv && vlen > 0 && vlen < sizeof ver) {
        memcpy(ver, hv, vlen);
        ver[vlen] = 0;
    }
    http_parser_free(&p);
    sdsfree(body);
    if (r < 0) return -1;
    if (strncmp(ver, "1.", 2) != 0 || !ver[2] || strspn(ver + 2, "0123456789") != strlen(ver + 2))
        return rc_fail(rc, "%s Engine API version '%s' is not of the form 1.NN", env && *env ? "DOCKER_API_VERSION:" : "GET /_ping: daemon reports", ver);
    /* 1.24 (Docker 1.12) is the oldest API with everything `up` sends. */
    if (strtol(ver + 2, NULL, 10) < DOCKER_MIN_API_MINOR)
        return rc_fail(rc, "%s Engine API version %s is older than 1.%d, the oldest rcluster supports; upgrade Docker",
                       env && *env ? "DOCKER_API_VERSION:" : "GET /_ping: daemon reports", ver, DOCKER_MIN_API_MINOR);
    d->prefix = rc_sprintf("/v%s", ver);
    sdsfree(rc->api_version);
    rc->api_version = sdsnew(ver);
    if (!d->prefix || !rc->api_version) return rc_fail_oom(rc);
    return 0;
}

/* ---- batches on parallel connections ------------------------------------- */

/* One request of a batch; the answer's status and body are filled in. */
struct docker_req {
    const char *method;
    sds path;                /* without the version prefix; owned */
    sds body;                /* JSON or NULL; owned */
    int allow;               /* extra accepted status (e.g. 304 for "already started") */
    int status;              /* 0 if not answered */
    sds resp;                /* answer body */
    sds err;                 /* this request's error, if any */
};

static void docker_req_clear(struct docker_req *r) {
    sdsfree(r->path);
    sdsfree(r->body);
    sdsfree(r->resp);
    sdsfree(r->err);
    memset(r, 0, sizeof *r);
}

/* Send each request on its own connection before reading any answer, so the daemon
 * works on them concurrently (container create/start take tens of ms each and the
 * daemon serves one request per connection at a time). Returns 0 if all succeeded,
 * else -1 with rc->err naming the first failure and how many failed. */
static int docker_call_parallel(struct docker *d, struct docker_req *reqs, int n) {
    struct rc *rc = d->rc;
    int failed = 0, first = -1;
    for (int base = 0; base < n; base += DOCKER_MAX_PARALLEL) {
        int m = n - base < DOCKER_MAX_PARALLEL ? n - base : DOCKER_MAX_PARALLEL;
        struct http_conn *conns = malloc(sizeof *conns * (size_t)m);
        if (!conns) return rc_fail_oom(rc);
        for (int i = 0; i < m; i++) {
            struct docker_req *q = &reqs[base + i];
            http_conn_init(&conns[i], "docker");
            q->status = 0;
            if (d->record) { docker_record_request(d, q->method, q->path, q->body); q->status = 200; continue; }
            sds full = rc_sprintf("%s%s", d->prefix, q->path);
            sds req = full ? docker_format_request(d, q->method, full, q->body, q->body ? sdslen(q->body) : 0) : NULL;
            int r = -1;
            if (!req) rc_fail_oom(rc);
            else r = docker_connect(d, &conns[i]);
            if (r == 0) r = net_write_all(rc, conns[i].fd, req, sdslen(req), rc_now_ms() + rc->io_timeout_ms, conns[i].what);
            if (r < 0) { rc_wrap(rc, "%s %s", q->method, full ? full : q->path); q->err = sdsdup(rc->err); http_conn_close(&conns[i]); }
            sdsfree(req);
            sdsfree(full);
        }
        for (int i = 0; i < m; i++) {
            struct docker_req *q = &reqs[base + i];
            if (conns[i].fd < 0) continue;
            struct http_parser p;
            http_parser_init(&p, HTTP_MAX_JSON_BODY, 0);
            q->resp = sdsempty();
            sds full = rc_sprintf("%s%s", d->prefix, q->path);
            int r = -1;
            if (!q->resp || !full) rc_fail_oom(rc);
            else r = http_read_response(rc, &conns[i], &p, http_sink_sds, &q->resp, rc->io_timeout_ms * 6);
            if (r < 0) rc_wrap(rc, "%s %s", q->method, full ? full : q->path);
            else if (docker_check_status(d, q->method, full ? full : q->path, &p, q->resp, sdslen(q->resp), q->allow) < 0) r = -1;
            if (r == 0) q->status = p.status;
            else q->err = sdsdup(rc->err);
            http_parser_free(&p);
            http_conn_close(&conns[i]);
            sdsfree(full);
        }
        free(conns);
    }
    for (int i = 0; i < n; i++)
        if (reqs[i].err) { failed++; if (first < 0) first = i; }
    if (!failed) return 0;
    rc_fail(rc, "%s", reqs[first].err);
    if (failed > 1) rc_wrap(rc, "%d of %d requests failed, the first", failed, n);
    return -1;
}

/* ---- streams: pull, load, import ----------------------------------------- */

/* Progress from a JSON-lines stream ({"status","progress","id"} / {"stream"} /
 * {"error","errorDetail"}). An error inside a 200 stream is still a failure. */
struct docker_progress {
    struct rc *rc;
    sds error;             /* first error message seen in the stream */
    sds last;              /* last status line printed, to avoid repeats */
    sds result;            /* last "status" or "stream" text (e.g. the imported image id) */
    int64_t last_ms;
    int quiet;             /* keep the stream's status lines to ourselves */
};

static int docker_progress_line(void *ud, const char *line, size_t len) {
    struct docker_progress *pr = ud;
    json_value_s *v = json_parse(line, len, NULL);
    if (!v) return 0;   /* not JSON: ignore rather than fail a long transfer */
    const char *err = json_string(json_get(json_get(v, "errorDetail"), "message"));
    if (!err) err = json_string(json_get(v, "error"));
    if (!err) err = json_string(json_get(v, "message"));   /* a non-2xx answer's body */
    const char *status = json_string(json_get(v, "status"));
    const char *stream = json_string(json_get(v, "stream"));
    const char *id = json_string(json_get(v, "id"));
    const char *progress = json_string(json_get(v, "progress"));
    int ret = 0;
    if (err && !pr->error) ret = (pr->error = sdsnew(err)) ? 0 : -1;
    const char *text = stream ? stream : status;
    if (text && !err) {
        sds t = rc_sprintf("%s%s%s", id ? id : "", id ? ": " : "", text);
        if (t) t = sdstrim(t, " \r\n");
        int64_t now = rc_now_ms();
        /* Byte counters change many times a second: print those at most every 2 s. */
        if (t && sdslen(t) && (!pr->last || strcmp(t, pr->last) != 0) && (!progress || now - pr->last_ms > 2000)) {
            /* A bare image id is the import's result: the caller says it ("Built T (sha256:...)"). */
            int result_only = !id && strncmp(t, "sha256:", 7) == 0;
            if (!pr->quiet && !result_only) rc_progress(pr->rc, "%s%s%s", t, progress ? " " : "", progress ? progress : "");
            pr->last_ms = now;
            sdsfree(pr->last);
            pr->last = t;
            t = NULL;
        }
        sdsfree(t);
        sdsfree(pr->result);
        pr->result = sdsnew(text);
        if (pr->result) pr->result = sdstrim(pr->result, " \r\n");
    }
    json_free(v);
    return ret;
}

/* POST a long-running request whose answer streams JSON lines (pull, load, import).
 * With src, `length` body bytes of content_type are uploaded from it. On success
 * *result (if not NULL) gets the last status text. Idle limit: 5 minutes. */
static int docker_stream(struct docker *d, const char *path, const char *content_type, http_body_source src,
                         void *src_ud, uint64_t length, int quiet, sds *result) {
    struct rc *rc = d->rc;
    if (result) *result = NULL;
    if (d->record) { docker_record_request(d, "POST", path, src ? "<stream>" : NULL); return 0; }
    struct http_conn c;
    if (docker_connect(d, &c) < 0) return -1;
    sds full = rc_sprintf("%s%s", d->prefix, path);
    sds req = full ? http_format_request("POST", full, d->host_header, src ? content_type : NULL, src ? (int64_t)length : 0) : NULL;
    struct docker_progress pr = { rc, NULL, NULL, NULL, 0, quiet };
    struct http_lines lines = { sdsempty(), docker_progress_line, &pr, 0 };
    struct http_parser p;
    http_parser_init(&p, UINT64_MAX, 0);
    int r = -1;
    if (!req || !lines.buf) rc_fail_oom(rc);
    else r = net_write_all(rc, c.fd, req, sdslen(req), rc_now_ms() + rc->io_timeout_ms, c.what);
    if (r == 0 && src) r = http_upload(rc, &c, &p, src, src_ud, length, http_sink_lines, &lines, 300000);
    else if (r == 0) r = http_read_response(rc, &c, &p, http_sink_lines, &lines, 300000);
    if (r == 0) r = http_lines_flush(&lines);
    if (r < 0 && lines.too_long) rc_fail(rc, "a progress line longer than %zu bytes", HTTP_MAX_LINE);
    if (r < 0) rc_wrap(rc, "POST %s", full ? full : path);
    else if (p.status < 200 || p.status >= 300) {
        /* An error answer is one {"message":...} object; the line sink has seen it. */
        sds msg = pr.error ? sdsdup(pr.error) : sdsnew("");
        sds reason = http_reason(&p);
        r = rc_fail(rc, "POST %s: %d %s%s%s", full ? full : path, p.status, reason ? reason : "",
                    msg && sdslen(msg) ? ": " : "", msg ? msg : "");
        sdsfree(reason);
        sdsfree(msg);
    } else if (pr.error) {
        r = rc_fail(rc, "POST %s: %s", full ? full : path, pr.error);
    } else if (result) {
        *result = pr.result;
        pr.result = NULL;
    }
    http_parser_free(&p);
    http_conn_close(&c);
    sdsfree(lines.buf);
    sdsfree(pr.error);
    sdsfree(pr.last);
    sdsfree(pr.result);
    sdsfree(req);
    sdsfree(full);
    return r;
}

/* ---- small pure helpers ---------------------------------------------------- */

/* Append s percent-encoded (everything but RFC 3986 unreserved bytes). NULL on OOM
 * (out freed); a NULL out passes through, like rc_cat(). */
static sds docker_urlencode(sds out, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; out && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out = rc_catlen(out, s, 1);
        else { char e[3] = { '%', hex[c >> 4], hex[c & 15] }; out = rc_catlen(out, e, 3); }
    }
    return out;
}

/* Demultiplex a container log stream (no TTY): frames of an 8-byte header
 * {stream 0|1|2, 0, 0, 0, size as 32-bit big endian} and `size` payload bytes.
 * Appends the payloads of the complete frames in in[0..len) to *out and returns the
 * bytes consumed (a partial frame at the end is left for the next call). Returns -1
 * if the bytes are not a multiplexed stream (a TTY container: show them raw) and -2
 * on OOM. *out stays valid either way. */
static ssize_t docker_demux(const char *in, size_t len, sds *out) {
    size_t i = 0;
    while (len - i >= 8) {
        const unsigned char *h = (const unsigned char *)in + i;
        if (h[0] > 2 || h[1] || h[2] || h[3]) return -1;
        uint32_t size = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
        if (size > len - i - 8) break;
        sds t = sdscatlen(*out, in + i + 8, size);
        if (!t) return -2;
        *out = t;
        i += 8 + (size_t)size;
    }
    return (ssize_t)i;
}

/* The last `tail` lines a container wrote (stdout and stderr, demultiplexed). */
static sds docker_container_logs(struct docker *d, const char *name, int tail) {
    char path[256];
    snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1&tail=%d", name, tail);
    sds raw = NULL;
    if (docker_call(d, "GET", path, NULL, &raw, 0) < 0) return NULL;
    sds text = sdsempty();
    ssize_t n = text ? docker_demux(raw, sdslen(raw), &text) : -2;
    /* No complete frame in a non-empty log: a TTY container's raw text (or garbage). */
    if (n == -1 || (n == 0 && sdslen(raw) > 0)) { sdsfree(text); text = raw; raw = NULL; }
    else if (n == -2) { sdsfree(text); text = NULL; rc_fail_oom(d->rc); }
    sdsfree(raw);
    return text;
}

/* Label value of a container (list or inspect JSON) or network; NULL if absent. */
static const char *docker_label(const json_value_s *obj, const char *key) {
    const json_value_s *labels = json_get(obj, "Labels");
    if (!labels) labels = json_get(json_get(obj, "Config"), "Labels");
    return json_string(json_get(labels, key));
}

/* Inspect a container or network by exact name. Docker also matches ID prefixes,
 * so the returned name is compared. Returns 1 found (*out set, caller frees), 0 not
 * found, -1 error. kind: "containers" or "networks". */
static int docker_inspect(struct docker *d, const char *kind, const char *name, json_value_s **out) {
    char path[300];
    snprintf(path, sizeof path, "/%s/%s%s", kind, name, strcmp(kind, "containers") == 0 ? "/json" : "");
    *out = NULL;
    int st = docker_call_json(d, "GET", path, NULL, out, 404);
    if (st < 0) return -1;
    if (st == 404 || !*out) { json_free(*out); *out = NULL; return 0; }
    const char *got = json_string(json_get(*out, "Name"));
    if (got && got[0] == '/') got++;
    if (!got || strcmp(got, name) != 0) { json_free(*out); *out = NULL; return 0; }
    return 1;
}

/* The labels on every object rcluster makes: nothing unlabelled is ever touched. */
#define LABEL_CLUSTER  "io.rcluster.cluster"
#define LABEL_NODE     "io.rcluster.node"
#define LABEL_VERSION  "io.rcluster.version"
#define LABEL_DATA_DIR "io.rcluster.data-dir"
#define LABEL_NETWORK  "io.rcluster.network"    /* "host" for --network host, else absent */
#define LABEL_HOST_IP  "io.rcluster.host-ip"    /* host mode: where rcluster reaches the node */
#define LABEL_HOST_PORT "io.rcluster.host-port"
/* What `update` renames a node's container to while its new one starts: NAME-I.previous. */
#define UPDATE_PREVIOUS ".previous"

/* Objects carrying label key=value ("containers" with all=1, or "networks"); a NULL
 * value matches any. */
static int docker_list_by_label(struct docker *d, const char *kind, const char *key, const char *value, json_value_s **out) {
    sds lab = value ? rc_sprintf("%s=%s", key, value) : sdsnew(key);   /* NULL value: any */
    sds filter = lab ? rc_cat(rc_json_str(sdsnew("{\"label\":["), lab), "]}") : NULL;
    sds path = filter ? rc_sprintf("/%s%s?%sfilters=", kind, strcmp(kind, "containers") ? "" : "/json",
                                   strcmp(kind, "containers") ? "" : "all=1&") : NULL;
    path = docker_urlencode(path, filter);
    int st = path && lab ? docker_call_json(d, "GET", path, NULL, out, 0) : rc_fail_oom(d->rc);
    sdsfree(filter);
    sdsfree(lab);
    sdsfree(path);
    if (st >= 0 && json_type(*out) != JSON_ARRAY) {
        json_free(*out);
        *out = NULL;
        return rc_fail(d->rc, "GET /%s: expected a JSON array", kind);
    }
    return st < 0 ? -1 : 0;
}

/* Is the image present locally? 1 yes, 0 no, -1 error. */
static int docker_image_present(struct docker *d, const char *image) {
    sds path = rc_sprintf("/images/%s/json", image);
    if (!path) return rc_fail_oom(d->rc);
    int st = docker_call(d, "GET", path, NULL, NULL, 404);
    sdsfree(path);
    return st < 0 ? -1 : st != 404;
}

/* Split "repo[:tag]" (a ':' after the last '/'; "@digest" kept whole) into repo and tag. */
static int docker_split_ref(const char *ref, sds *repo, sds *tag) {
    const char *at = strchr(ref, '@');
    const char *slash = strrchr(ref, '/');
    const char *colon = strrchr(ref, ':');
    if (at || !colon || (slash && colon < slash)) { *repo = sdsnew(ref); *tag = sdsnew(at ? "" : "latest"); }
    else { *repo = sdsnewlen(ref, (size_t)(colon - ref)); *tag = sdsnew(colon + 1); }
    if (!*repo || !*tag) { sdsfree(*repo); sdsfree(*tag); *repo = *tag = NULL; return -1; }
    return 0;
}

/* Pull an image with progress on stderr. */
/* Can the daemon pull `image`? Asks the registry through it for the manifest only
 * (GET /distribution/NAME/json changes nothing), so --dry-run shows the image a run
 * would really use. 0 yes, -1 (rc->err says why) no. */
static int docker_image_pullable(struct docker *d, const char *image) {
    sds path = rc_sprintf("/distribution/%s/json", image);
    if (!path) return rc_fail_oom(d->rc);
    int st = docker_call(d, "GET", path, NULL, NULL, 0);
    sdsfree(path);
    return st == 200 ? 0 : -1;
}

static int docker_image_pull(struct docker *d, const char *image) {
    sds repo, tag;
    if (docker_split_ref(image, &repo, &tag) < 0) return rc_fail_oom(d->rc);
    sds path = docker_urlencode(sdsnew("/images/create?fromImage="), repo);
    if (sdslen(tag)) path = docker_urlencode(rc_cat(path, "&tag="), tag);
    int r = path ? docker_stream(d, path, NULL, NULL, NULL, 0, 0, NULL) : rc_fail_oom(d->rc);
    sdsfree(path);
    sdsfree(repo);
    sdsfree(tag);
    return r;
}

/* ====================================================================== */
/* 5. RESP client: command encoding, a bounded reply parser, connections   */
/* ====================================================================== */

/* Limits that keep a hostile or broken peer from exhausting memory or stack. */
#define RESP_MAX_BULK   (64L * 1024 * 1024)
#define RESP_MAX_ELEMS  (1024L * 1024)
#define RESP_MAX_DEPTH  16
#define RESP_MAX_LINE   ((size_t)64 * 1024)

enum { RESP_STATUS = 1, RESP_ERROR, RESP_INTEGER, RESP_BULK, RESP_ARRAY, RESP_NIL };

/* Ends the argument list of rconn_queue/rconn_call: a typed null, since a bare NULL
 * may be a plain int 0 in a variadic call. */
#define RESP_END ((const char *)NULL)

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
    out = rc_catprintf(out, "*%d\r\n", argc);
    for (int i = 0; out && i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        out = rc_catprintf(out, "$%zu\r\n", len);
        out = rc_catlen(out, argv[i], len);
        out = rc_catlen(out, "\r\n", 2);
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
        if (!strchr("+-:$*", type) || type == 0) { *why = "unknown reply type byte"; return -1; }
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
        if (!(r->elem = calloc((size_t)v, sizeof(struct resp *)))) goto oom;
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
    sds rbuf;       /* bytes received */
    size_t rpos;    /* of rbuf, bytes already parsed (kept until more must be read) */
    sds wbuf;       /* pipelined commands, not yet sent */
};

static void rconn_close(struct rconn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    sdsfree(c->rbuf); c->rbuf = NULL;
    c->rpos = 0;
    sdsfree(c->wbuf); c->wbuf = NULL;
}

static void rconn_free(struct rconn *c) {
    rconn_close(c);
    sdsfree(c->name);
    c->name = NULL;
}

/* The variadic commands take at most this many words; longer ones use the argv forms. */
#define RCONN_MAX_ARGS 32

/* Gather the rest of a RESP_END-terminated argument list into argv; returns argc. */
static int rconn_collect_args(const char **argv, const char *arg0, va_list ap) {
    int argc = 0;
    for (const char *a = arg0; a && argc < RCONN_MAX_ARGS; a = va_arg(ap, const char *)) argv[argc++] = a;
    return argc;
}

/* Queue a command given as an argv array (for long ADDSLOTS lists). */
static int rconn_queue_argv(struct rc *rc, struct rconn *c, int argc, const char **argv) {
    if (!c->wbuf && !(c->wbuf = sdsempty())) return rc_fail_oom(rc);
    c->wbuf = resp_append_command(c->wbuf, argc, argv, NULL);
    return c->wbuf ? 0 : rc_fail_oom(rc);
}

/* Queue a command (NULL-terminated list of C strings) without sending it. */
static int rconn_queue(struct rc *rc, struct rconn *c, const char *arg0, ...) {
    const char *argv[RCONN_MAX_ARGS];
    va_list ap;
    va_start(ap, arg0);
    int argc = rconn_collect_args(argv, arg0, ap);
    va_end(ap);
    return rconn_queue_argv(rc, c, argc, argv);
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
        int p = resp_parse(c->rbuf + c->rpos, sdslen(c->rbuf) - c->rpos, &used, &r, &why);
        if (p == 1) {   /* the parsed bytes go only before the next read: a pipeline's replies cost no memmove each */
            c->rpos += used;
            if (c->rpos == sdslen(c->rbuf)) {
                c->rpos = 0;
                /* Read whole: let a large buffer go, or every connection of a session keeps its
                 * largest reply's room (32 KB each in a 100-node create). */
                if (sdsavail(c->rbuf) > 4096) { sdsfree(c->rbuf); c->rbuf = NULL; }
                else sdsclear(c->rbuf);
            }
            return r;
        }
        if (p < 0) { rc_fail(rc, "%s: protocol error in reply: %s", c->name, why); rconn_close(c); return NULL; }
        if (c->rpos) { sdsrange(c->rbuf, (ssize_t)c->rpos, -1); c->rpos = 0; }
        sds t = sdsMakeRoomFor(c->rbuf, 16384);
        if (!t) { rc_fail_oom(rc); return NULL; }
        c->rbuf = t;
        ssize_t n = net_read_some(rc, c->fd, c->rbuf + sdslen(c->rbuf), 16384, deadline, c->name);
        if (n == 0) { rc_fail_as(rc, RC_ERR_UNREACHABLE, "%s: connection closed by the node", c->name); rconn_close(c); return NULL; }
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

/* Send one command given as an argv array and return its (non-error) reply. */
static struct resp *rconn_call_argv(struct rc *rc, struct rconn *c, const char *what, int argc, const char **argv) {
    if (rconn_queue_argv(rc, c, argc, argv) < 0) return NULL;
    return rconn_expect(rc, c, what, rc_now_ms() + rc->io_timeout_ms);
}

/* Run one command and return its (non-error) reply. */
static struct resp *rconn_call(struct rc *rc, struct rconn *c, const char *what, const char *arg0, ...) {
    const char *argv[RCONN_MAX_ARGS];
    va_list ap;
    va_start(ap, arg0);
    int argc = rconn_collect_args(argv, arg0, ap);
    va_end(ap);
    return rconn_call_argv(rc, c, what, argc, argv);
}

/* Same, but expects a string-ish reply (status or bulk) and returns it as a new sds. */
static sds rconn_call_str(struct rc *rc, struct rconn *c, const char *what, const char *arg0, ...) {
    const char *argv[RCONN_MAX_ARGS];
    va_list ap;
    va_start(ap, arg0);
    int argc = rconn_collect_args(argv, arg0, ap);
    va_end(ap);
    struct resp *r = rconn_call_argv(rc, c, what, argc, argv);
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

/* Connect, without AUTH. `host` must be printable; the password never is. c->name
 * stays set even on failure (callers name the node in messages): rconn_free() c either way. */
static int rconn_connect(struct rc *rc, struct rconn *c, const char *host, int port, int timeout_ms) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->name = rc_sprintf(strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (!c->name) return rc_fail_oom(rc);
    c->fd = net_connect_tcp(rc, host, port, timeout_ms);
    return c->fd < 0 ? -1 : 0;
}

/* Connect and authenticate with the --user/--password of the command. */
static int rconn_open(struct rc *rc, struct rconn *c, const char *host, int port) {
    if (rconn_connect(rc, c, host, port, rc->io_timeout_ms) < 0) return -1;
    if (!rc->password) return 0;
    int r = rc->user ? rconn_queue(rc, c, "AUTH", rc->user, rc->password, RESP_END)
                     : rconn_queue(rc, c, "AUTH", rc->password, RESP_END);
    struct resp *reply = r < 0 ? NULL : rconn_read(rc, c, rc_now_ms() + rc->io_timeout_ms);
    if (!reply) { rc_wrap(rc, "AUTH"); rconn_close(c); return -1; }
    /* A node without a password refuses AUTH with a plain ERR; that is harmless, so carry
     * on. A wrong password is WRONGPASS (Redis 6+) or "ERR invalid password" (older). */
    int bad = reply->type == RESP_ERROR &&
              (strncmp(reply->str, "WRONGPASS", 9) == 0 || strstr(reply->str, "invalid") != NULL);
    if (bad) rc_fail_as(rc, RC_ERR_AUTH, "%s: AUTH: %s", c->name, reply->str);
    resp_free(reply);
    if (!bad) return 0;
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

/* Which server answered INFO server, as people name it: "Valkey 8.0.1", "Redis 7.0.15".
 * Valkey says server_name:valkey and valkey_version:8.0.1 but keeps redis_version:7.2.4
 * for clients that gate features on it (so do we: see enode.major); Redis says neither.
 * Writes "?" parts for what is missing. Pure. */
static void info_server_desc(const char *info, char *out, size_t outlen) {
    char name[32], ver[32], key[48];
    if (info_field(info, "server_name", name, sizeof name) < 0 || !*name) snprintf(name, sizeof name, "redis");
    for (char *c = name; *c; c++) if (!isalnum((unsigned char)*c) && *c != '-') *c = '?';
    snprintf(key, sizeof key, "%s_version", name);
    if (info_field(info, key, ver, sizeof ver) < 0 && info_field(info, "redis_version", ver, sizeof ver) < 0)
        snprintf(ver, sizeof ver, "?");
    name[0] = (char)toupper((unsigned char)name[0]);
    snprintf(out, outlen, "%s %s", name, ver);
}

static void parse_version(const char *v, int *major, int *minor);

/* What a server offers a slot move, from INFO server. */
enum { SRV_ATOMIC_VALKEY = 1,   /* Valkey >= 9.0: CLUSTER MIGRATESLOTS on the source */
       SRV_ATOMIC_REDIS = 2,    /* Redis >= 8.4: CLUSTER MIGRATION IMPORT on the destination */
       SRV_REPLICATED_SETSLOT = 4 /* Valkey >= 8.0: SETSLOT answers once the replicas have it */ };

/* The SRV_* bits of the server whose INFO server this is; Valkey is told by
 * server_name/valkey_version (its redis_version stays 7.2.4). Pure. */
static int server_caps(const char *info) {
    char name[32], ver[32];
    int major = 0, minor = 0;
    if (info_field(info, "server_name", name, sizeof name) == 0 && strcmp(name, "valkey") == 0) {
        if (info_field(info, "valkey_version", ver, sizeof ver) < 0) return 0;
        parse_version(ver, &major, &minor);
        return (major >= 9 ? SRV_ATOMIC_VALKEY : 0) | (major >= 8 ? SRV_REPLICATED_SETSLOT : 0);
    }
    if (info_field(info, "redis_version", ver, sizeof ver) < 0) return 0;
    parse_version(ver, &major, &minor);
    return major > 8 || (major == 8 && minor >= 4) ? SRV_ATOMIC_REDIS : 0;
}

/* The DUMP payload (RDB) version a server writes, and the newest it reads (0: not known),
 * from INFO server: Redis 7.0 10, 7.2 11, 7.4 12, 8.x at least 12 (the dev build past
 * 8.4: 14); Valkey 7.2 and 8 11; Valkey 9 writes 80 and reads up to 11 and 80. MIGRATE
 * fails on every key whose payload its target cannot read. Pure. */
static void server_payload_versions(const char *info, int *writes, int *reads) {
    char name[32], ver[32];
    int major = 0, minor = 0;
    *writes = *reads = 0;
    if (info_field(info, "server_name", name, sizeof name) == 0 && strcmp(name, "valkey") == 0) {
        if (info_field(info, "valkey_version", ver, sizeof ver) < 0) return;
        parse_version(ver, &major, &minor);
        if (major >= 9) { *writes = 80; *reads = 11; }
        else if (major >= 7) *writes = *reads = 11;
        return;
    }
    if (info_field(info, "redis_version", ver, sizeof ver) < 0) return;
    parse_version(ver, &major, &minor);
    if (major == 255) *writes = *reads = 14;
    else if (major >= 8) *writes = 12;
    else if (major == 7) *writes = *reads = minor >= 4 ? 12 : minor >= 2 ? 11 : 10;
}

/* Whether a server that reads up to reads (and 80 when reads80) takes a payload of
 * version writes; unknown versions pass. Pure. */
static int payload_readable(int writes, int reads, int reads80) {
    if (!writes || !reads) return 1;
    return writes == 80 ? reads80 : writes <= reads;
}

/* "Valkey 8.0.1" when every node runs the same server, else each one with its count
 * ("Redis 7.0.15 on 3 nodes, Valkey 8.0.1 on 3 nodes"); NULL entries (nodes not
 * asked) are left out. NULL on OOM or when there is nothing to say. */
static sds info_servers_summary(const char *const *desc, int n) {
    int first = -1, mixed = 0;
    for (int i = 0; i < n; i++) {
        if (!desc[i] || !*desc[i]) continue;
        if (first < 0) first = i;
        else if (strcmp(desc[i], desc[first]) != 0) mixed = 1;
    }
    if (first < 0) return NULL;
    if (!mixed) return sdsnew(desc[first]);
    sds out = sdsempty();
    for (int i = 0; out && i < n; i++) {
        if (!desc[i] || !*desc[i]) continue;
        int seen = 0, count = 0;
        for (int j = 0; j < n; j++) {
            if (!desc[j] || strcmp(desc[i], desc[j]) != 0) continue;
            seen |= j < i;
            count++;
        }
        if (!seen) out = rc_catprintf(out, "%s%s on %d node%s", sdslen(out) ? ", " : "", desc[i], count, count == 1 ? "" : "s");
    }
    return out;
}

/* ====================================================================== */
/* 6. Cluster model: addresses, CLUSTER NODES parsing, slot split, layout   */
/* ====================================================================== */

#define CLUSTER_SLOTS 16384
#define CLUSTER_BUS_OFFSET 10000   /* a node's bus port, unless announced: its port + this */

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
    if (addr_split(s, a) < 0) {
        return rc_fail_as(rc, RC_ERR_USAGE, "invalid address '%s': expected host:port or host:port@busport", s);
    }
    if (net_resolve(rc, a->host, a->ip, sizeof a->ip) < 0) return rc_wrap(rc, "invalid address '%s'", s);
    return 0;
}

static int addr_bus(const struct addr *a) { return a->bus ? a->bus : a->port + CLUSTER_BUS_OFFSET; }

/* One line of CLUSTER NODES. */
enum { NF_MYSELF = 1, NF_MASTER = 2, NF_SLAVE = 4, NF_PFAIL = 8, NF_FAIL = 16,
       NF_HANDSHAKE = 32, NF_NOADDR = 64 };

/* An open slot in a node's own line: "[slot->-peer]" migrating, "[slot-<-peer]" importing. */
struct nodeopen {
    int slot;
    int importing;          /* 1: importing from peer; 0: migrating to peer */
    char peer[41];
};

struct nodeinfo {
    char id[41];
    char ip[64];            /* may be empty: a fresh node does not know its own IP */
    char hostname[64];      /* Redis 7 "ip:port@cport,hostname"; empty when absent */
    int port, bus;
    int flags;
    char master[41];        /* "-" for masters */
    int connected;
    int nranges;
    int (*ranges)[2];       /* owned slot ranges, inclusive */
    int open_slots;         /* [slot->-id] / [slot-<-id] entries */
    struct nodeopen *open;  /* those entries, open_slots of them */
};

struct cview {
    struct nodeinfo *nodes;
    int n;
};

static void cview_free(struct cview *v) {
    for (int i = 0; i < v->n; i++) { free(v->nodes[i].ranges); free(v->nodes[i].open); }
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
    if (s[n] == ',') {
        size_t h = strcspn(s + n + 1, ",");
        if (h >= sizeof ni->hostname) h = sizeof ni->hostname - 1;
        memcpy(ni->hostname, s + n + 1, h);
        ni->hostname[h] = 0;
    }
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
    if (!at) ni->bus = ni->port ? ni->port + CLUSTER_BUS_OFFSET : 0;
    size_t iplen = strlen(buf);
    if (iplen >= sizeof ni->ip) return -1;
    memcpy(ni->ip, buf, iplen + 1);
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

/* "[N->-id]" (migrating to id) or "[N-<-id]" (importing from id). */
static int nodes_parse_open(const char *tok, size_t len, struct nodeinfo *ni) {
    struct nodeopen o;
    memset(&o, 0, sizeof o);
    size_t i = 1;
    long v = 0;
    for (; i < len && isdigit((unsigned char)tok[i]) && v < CLUSTER_SLOTS; i++) v = v * 10 + (tok[i] - '0');
    if (i == 1 || v >= CLUSTER_SLOTS || len < i + 3 + 1 + 1 || tok[len - 1] != ']') return -1;
    if (memcmp(tok + i, "->-", 3) == 0) o.importing = 0;
    else if (memcmp(tok + i, "-<-", 3) == 0) o.importing = 1;
    else return -1;
    size_t idlen = len - (i + 3) - 1;
    if (idlen > 40) return -1;
    memcpy(o.peer, tok + i + 3, idlen);
    o.slot = (int)v;
    struct nodeopen *grown = realloc(ni->open, (size_t)(ni->open_slots + 1) * sizeof *grown);
    if (!grown) return -1;
    ni->open = grown;
    ni->open[ni->open_slots++] = o;
    return 0;
}

/* Slot fields: "N", "A-B", "[N->-id]" or "[N-<-id]" (open slots). */
static int nodes_parse_slot(const char *tok, size_t len, struct nodeinfo *ni) {
    if (len > 0 && tok[0] == '[') return nodes_parse_open(tok, len, ni);
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
    for (size_t i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)tok[0][i])) return -1;
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
            free(v->nodes[v->n].open);
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
        if (ni->ranges[i][0] == ni->ranges[i][1]) s = rc_catprintf(s, "%s%d", i ? "," : "", ni->ranges[i][0]);
        else s = rc_catprintf(s, "%s%d-%d", i ? "," : "", ni->ranges[i][0], ni->ranges[i][1]);
    }
    return s;
}

/* CRC16-CCITT (XMODEM), the hash Redis Cluster uses for key slots. */
static const uint16_t cluster_crc16_table[256] = {   /* CRC-16/XMODEM (poly 0x1021) of each byte */
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7, 0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6, 0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485, 0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4, 0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823, 0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12, 0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41, 0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70, 0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f, 0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e, 0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d, 0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c, 0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab, 0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a, 0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9, 0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8, 0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

static unsigned cluster_crc16(const char *buf, size_t len) {
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) crc = ((crc << 8) ^ cluster_crc16_table[((crc >> 8) ^ (unsigned char)buf[i]) & 0xff]) & 0xffff;
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

/* The greedy pass can leave the last master only same-host candidates while a swap
 * with another master's replica would separate both pairs: do such swaps until none
 * helps (each swap removes at least one same-host pair, so this ends). */
static void cluster_fix_affinity(int n, const char *const *hosts, int *master_of) {
    int improved = 1;
    while (improved) {
        improved = 0;
        for (int a = 0; a < n; a++) {
            if (master_of[a] < 0 || strcmp(hosts[a], hosts[master_of[a]]) != 0) continue;
            for (int b = 0; b < n; b++) {
                if (b == a || master_of[b] < 0 || master_of[b] == master_of[a]) continue;
                int ma = master_of[a], mb = master_of[b];
                int b_was_bad = strcmp(hosts[b], hosts[mb]) == 0;
                int a_ok = strcmp(hosts[a], hosts[mb]) != 0, b_ok = strcmp(hosts[b], hosts[ma]) != 0;
                if (a_ok && (b_ok || b_was_bad)) {
                    master_of[a] = mb;
                    master_of[b] = ma;
                    improved = 1;
                    break;
                }
            }
        }
    }
}

/* Choose masters and replicas with anti-affinity by host.
 * hosts[i] identifies node i's machine. On return master_of[i] is -1 for a master,
 * else the index of its master; masters[] lists master indexes in slot order.
 * Returns the number of masters, or -1 on OOM, a negative count, or fewer than
 * replicas+1 nodes (no master could be chosen). */
static int cluster_plan_layout(int n, const char *const *hosts, int replicas, int *master_of, int *masters) {
    if (n <= 0 || replicas < 0) return -1;
    int *order = calloc((size_t)n, sizeof *order), *used = calloc((size_t)n, sizeof *used);
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
    if (m == 0) { free(order); free(used); free(group); return -1; }  /* no master to hang replicas on */
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
    cluster_fix_affinity(n, hosts, master_of);
    free(order); free(used); free(group);
    return m;
}

/* Slot map signatures: "slot:owner-id," at every change of owner. owner[slot] indexes
 * ids, -1 for a slot nobody owns ("-"). */
static sds slotmap_signature(const int *owner, const char *const *ids) {
    sds sig = sdsempty();
    for (int slot = 0; sig && slot < CLUSTER_SLOTS; slot++)
        if (slot == 0 || owner[slot] != owner[slot - 1])
            sig = rc_catprintf(sig, "%d:%s,", slot, owner[slot] < 0 ? "-" : ids[owner[slot]]);
    return sig;
}

/* The view's slot map signature. Called per node per poll round: the owner map lives on
 * the stack (a 128 KB allocation each time cost a mmap and its page faults). */
static sds cview_signature(const struct cview *v) {
    int owner[CLUSTER_SLOTS];
    const char **ids = malloc(((size_t)v->n + 1) * sizeof *ids);
    if (!ids) return NULL;
    for (int s = 0; s < CLUSTER_SLOTS; s++) owner[s] = -1;
    for (int i = 0; i < v->n; i++) {
        const struct nodeinfo *ni = &v->nodes[i];
        ids[i] = ni->id;
        for (int r = 0; r < ni->nranges; r++)
            for (int s = ni->ranges[r][0]; s <= ni->ranges[r][1]; s++) owner[s] = i;
    }
    sds sig = slotmap_signature(owner, ids);
    free(ids);
    return sig;
}

/* "7.0.15" -> 7, 0; anything unparsable counts as 0.0 (the oldest behaviour). */
static void parse_version(const char *v, int *major, int *minor) {
    char *end;
    long ma = strtol(v, &end, 10), mi = 0;
    if (end == v || ma < 0 || ma > 1000) ma = 0;
    else if (*end == '.') { mi = strtol(end + 1, &end, 10); if (mi < 0 || mi > 1000) mi = 0; }
    *major = (int)ma;
    *minor = (int)mi;
}

/* ====================================================================== */
/* 7. Cluster session: every node of a running cluster; judges; actions    */
/* ====================================================================== */

/* Every command that talks to cluster nodes works through a session: one connection
 * per node — reached from one seed whose CLUSTER NODES lists them (check, the day-2
 * commands), or given by address (create) — each with the number of replies still owed
 * to it, and that node's own view. Judges only read views and return findings; actions
 * only queue commands. check, create (7a) and the commands in 7b are built from these
 * three parts and never read struct rc fields to learn their arguments. */

struct snode {
    char id[41];
    char ip[64];            /* as the cluster announces it: how the other nodes reach it */
    int port, bus;
    char conn_ip[64];       /* how we reach it (the seed: as the user wrote it) */
    int conn_port;
    struct rconn c;
    int up;                 /* connected and answered the first questions */
    int owed;               /* replies queued and not yet read */
    sds err;                /* why it is not up */
    int err_kind;
    struct cview view;      /* its own CLUSTER NODES */
    struct nodeinfo *me;    /* its own line in view, NULL when not up */
    const struct nodeinfo *line; /* the seed's line for it */
    long long keys;         /* DBSIZE */
    long node_timeout;      /* cluster-node-timeout in ms, -1 when unknown */
    int no_failover;        /* cluster-replica-no-failover: 1 yes, 0 no, -1 unknown */
    long diskless_delay;    /* repl-diskless-sync-delay, -1 unknown */
    char state[16];         /* cluster_state from CLUSTER INFO */
    long long current_epoch; /* cluster_current_epoch from CLUSTER INFO, -1 unknown */
    char link[16];          /* master_link_status; "" on a master */
    long long repl_offset;  /* slave_repl_offset, -1 when unknown */
    char server[64];        /* "Valkey 8.0.1" (info_server_desc) */
    int major, minor;       /* redis_version, which Valkey keeps Redis-compatible */
    int caps;               /* SRV_* bits (server_caps) */
    int payload_w, payload_r; /* DUMP payload version it writes / newest it reads, 0 unknown */
    int migrations;         /* atomic slot migrations in flight on it (sess_read_migrations) */
    char migration[320];    /* the first of them, said */
};

struct session {
    struct rc *rc;
    struct cview map;       /* the seed's CLUSTER NODES: who belongs to the cluster */
    struct snode *nodes;
    int n;
    int seed;               /* index of the seed in nodes */
    int record;             /* set by a command for its dry run: actions record what they
                               would send into the plan (rc_plan_command) instead of sending */
    struct rc_deadline deadline;   /* the command's (--timeout from when it opened) */
};

static void sess_free(struct session *s) {
    for (int i = 0; i < s->n; i++) {
        rconn_free(&s->nodes[i].c);
        sdsfree(s->nodes[i].err);
        cview_free(&s->nodes[i].view);
    }
    free(s->nodes);
    cview_free(&s->map);
    memset(s, 0, sizeof *s);
}

/* Does ni own slot? */
static int nodeinfo_owns(const struct nodeinfo *ni, int slot) {
    for (int r = 0; r < ni->nranges; r++)
        if (slot >= ni->ranges[r][0] && slot <= ni->ranges[r][1]) return 1;
    return 0;
}

/* Role as the node says itself, or as the seed says when it cannot be asked. */
static int snode_is_master(const struct snode *x) {
    const struct nodeinfo *ni = x->me ? x->me : x->line;
    return ni && (ni->flags & NF_MASTER) && !(ni->flags & NF_SLAVE);
}

/* The slots a node owns, as it says itself (the seed's line when it cannot be asked). */
static const struct nodeinfo *snode_slots(const struct snode *x) { return x->me ? x->me : x->line; }

static const char *snode_master_id(const struct snode *x) {
    const struct nodeinfo *ni = x->me ? x->me : x->line;
    return ni ? ni->master : "-";
}

static int snode_slot_count(const struct snode *x) {
    const struct nodeinfo *ni = snode_slots(x);
    return ni ? nodeinfo_slot_count(ni) : 0;
}

static void snode_fail(struct rc *rc, struct snode *x) {
    sdsfree(x->err);
    x->err = sdsdup(rc->err ? rc->err : "unknown failure");
    x->err_kind = rc->err_kind;
    x->up = 0;
    rconn_close(&x->c);
}

/* Find a node by full id, unique id prefix (4+ characters) or ip:port. Returns its
 * index, -1 when none matches and -2 when the prefix is ambiguous. */
static int sess_find(const struct session *s, const char *spec) {
    int found = -1;
    size_t len = strlen(spec);
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        char ap[128];
        snprintf(ap, sizeof ap, "%s:%d", x->ip, x->port);
        if (strcasecmp(x->id, spec) == 0 || strcmp(ap, spec) == 0) return i;
        if (len >= 4 && len < 40 && strncasecmp(x->id, spec, len) == 0) {
            if (found >= 0) return -2;
            found = i;
        }
    }
    return found;
}

static int sess_index_of(const struct session *s, const char *id) {
    for (int i = 0; i < s->n; i++) if (strcmp(s->nodes[i].id, id) == 0) return i;
    return -1;
}

/* --- Queue and replies -------------------------------------------------- */

/* Queue one command on x (or print it under --dry-run); its reply is owed. */
static int sess_queue_argv(struct session *s, struct snode *x, int argc, const char **argv) {
    if (s->record) { rc_plan_command(s->rc, x->ip, x->port, argc, argv); return 0; }
    if (!x->up) return rc_fail_as(s->rc, RC_ERR_UNREACHABLE, "%s:%d is not reachable: %s", x->ip, x->port, x->err ? x->err : "?");
    if (rconn_queue_argv(s->rc, &x->c, argc, argv) < 0) return -1;
    x->owed++;
    return 0;
}

static int sess_queue(struct session *s, struct snode *x, const char *arg0, ...) {
    const char *argv[RCONN_MAX_ARGS];
    va_list ap;
    va_start(ap, arg0);
    int argc = rconn_collect_args(argv, arg0, ap);
    va_end(ap);
    return sess_queue_argv(s, x, argc, argv);
}

/* Send what is queued on every node, so that they all work at once. */
static int sess_flush_all(struct session *s) {
    int64_t dl = rc_now_ms() + s->rc->io_timeout_ms;
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (x->up && x->c.wbuf && sdslen(x->c.wbuf) && rconn_flush(s->rc, &x->c, dl) < 0) {
            snode_fail(s->rc, x);
            return rc_wrap(s->rc, "%s:%d", x->ip, x->port);
        }
    }
    return 0;
}

/* Read the next owed reply of x (an -ERR reply is a reply, not a failure); extra_ms
 * extends the deadline for slow commands such as MIGRATE. */
static struct resp *sess_reply(struct session *s, struct snode *x, int extra_ms) {
    if (x->owed <= 0) { rc_fail(s->rc, "%s:%d: no reply is owed", x->ip, x->port); return NULL; }
    struct resp *r = rconn_read(s->rc, &x->c, rc_now_ms() + s->rc->io_timeout_ms + extra_ms);
    if (!r) { snode_fail(s->rc, x); return NULL; }
    x->owed--;
    return r;
}

/* Read the next owed reply of x and turn -ERR into a failure naming x and `what`. */
static struct resp *sess_expect(struct session *s, struct snode *x, const char *what) {
    struct resp *r = sess_reply(s, x, 0);
    if (!r) { rc_wrap(s->rc, "%s", what); return NULL; }
    if (r->type == RESP_ERROR) {
        rc_fail(s->rc, "%s: %s: %s", x->c.name, what, r->str);
        resp_free(r);
        return NULL;
    }
    return r;
}

/* Read every reply x owes; the first -ERR becomes the failure (after all are read). */
static int sess_drain(struct session *s, struct snode *x, const char *what) {
    int ret = 0;
    sds first = NULL;
    while (x->owed > 0) {
        struct resp *r = sess_reply(s, x, 0);
        if (!r) { sdsfree(first); return rc_wrap(s->rc, "%s", what); }
        if (r->type == RESP_ERROR && !first) first = sdsdup(r->str);
        resp_free(r);
    }
    if (first) ret = rc_fail(s->rc, "%s:%d: %s: %s", x->ip, x->port, what, first);
    sdsfree(first);
    return ret;
}

/* Flush everything and read every owed reply on every node. */
static int sess_drain_all(struct session *s, const char *what) {
    if (s->record) return 0;
    int ret = sess_flush_all(s);
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].up && s->nodes[i].owed && sess_drain(s, &s->nodes[i], what) < 0) ret = -1;
    return ret;
}

/* --- Opening a session ---------------------------------------------------- */

/* The questions every node answers when a session opens, in this order. */
enum { PROBE_CLUSTER_ENABLED, PROBE_NODES, PROBE_DBSIZE, PROBE_NODE_TIMEOUT, PROBE_CLUSTER_INFO, PROBE_SERVER,
       PROBE_REPLICATION, PROBE_NO_FAILOVER, PROBE_DISKLESS_DELAY, PROBES };

static int sess_probe_queue(struct session *s, struct snode *x) {
    struct rc *rc = s->rc;
    if (rconn_queue(rc, &x->c, "INFO", "cluster", RESP_END) < 0 ||
        rconn_queue(rc, &x->c, "CLUSTER", "NODES", RESP_END) < 0 ||
        rconn_queue(rc, &x->c, "DBSIZE", RESP_END) < 0 ||
        rconn_queue(rc, &x->c, "CONFIG", "GET", "cluster-node-timeout", RESP_END) < 0 ||
        rconn_queue(rc, &x->c, "CLUSTER", "INFO", RESP_END) < 0 ||
        rconn_queue(rc, &x->c, "INFO", "server", RESP_END) < 0 ||
        rconn_queue(rc, &x->c, "INFO", "replication", RESP_END) < 0 ||
        rconn_queue(rc, &x->c, "CONFIG", "GET", "cluster-replica-no-failover", RESP_END) < 0 ||
        rconn_queue(rc, &x->c, "CONFIG", "GET", "repl-diskless-sync-delay", RESP_END) < 0) return -1;
    x->owed += PROBES;
    return rconn_flush(rc, &x->c, rc_now_ms() + rc->io_timeout_ms);
}

/* The value of a CONFIG GET reply ([name, value]), or NULL: an error (CONFIG renamed,
 * or not allowed for this user) only makes the value unknown. */
static const char *resp_config_value(const struct resp *r) {
    return r && r->type == RESP_ARRAY && r->n == 2 && r->elem[1]->type == RESP_BULK ? r->elem[1]->str : NULL;
}

/* What INFO replication and the CONFIG GETs say; none of it is required. */
static void snode_take_details(struct snode *x, struct resp **r) {
    long v;
    char buf[32];
    const char *nt = resp_config_value(r[PROBE_NODE_TIMEOUT]), *nf = resp_config_value(r[PROBE_NO_FAILOVER]);
    x->node_timeout = nt && rc_parse_int(nt, 0, LONG_MAX, &v) == 0 ? v : -1;
    x->no_failover = nf ? !strcmp(nf, "yes") : -1;
    const char *dd = resp_config_value(r[PROBE_DISKLESS_DELAY]);
    x->diskless_delay = dd && rc_parse_int(dd, 0, LONG_MAX, &v) == 0 ? v : -1;
    x->link[0] = 0;
    x->repl_offset = -1;
    if (r[PROBE_REPLICATION]->type == RESP_BULK) {
        if (info_field(r[PROBE_REPLICATION]->str, "master_link_status", x->link, sizeof x->link) < 0) x->link[0] = 0;
        if (info_field(r[PROBE_REPLICATION]->str, "slave_repl_offset", buf, sizeof buf) == 0) x->repl_offset = strtoll(buf, NULL, 10);
    }
    if (r[PROBE_SERVER]->type == RESP_BULK) {
        if (info_field(r[PROBE_SERVER]->str, "redis_version", buf, sizeof buf) == 0) parse_version(buf, &x->major, &x->minor);
        info_server_desc(r[PROBE_SERVER]->str, x->server, sizeof x->server);
        x->caps = server_caps(r[PROBE_SERVER]->str);
        server_payload_versions(r[PROBE_SERVER]->str, &x->payload_w, &x->payload_r);
    }
}

static int sess_probe_read(struct session *s, struct snode *x) {
    struct rc *rc = s->rc;
    struct resp *r[PROBES] = { 0 };
    int ret = -1;
    char buf[16];
    for (int k = 0; k < PROBES; k++)
        if (!(r[k] = sess_reply(s, x, 0))) goto out;
    struct resp *en = r[PROBE_CLUSTER_ENABLED], *nodes = r[PROBE_NODES];
    /* A replica loading its first sync answers LOADING for a moment: it is up, its
     * last view stays. */
    if (nodes->type == RESP_ERROR && strncmp(nodes->str, "LOADING", 7) == 0 && x->me) {
        snprintf(x->state, sizeof x->state, "loading");
        ret = 0;
        goto out;
    }
    if (en->type == RESP_ERROR && strncmp(en->str, "NOAUTH", 6) == 0) {
        rc_fail_as(rc, RC_ERR_AUTH, "%s: %s (give the password with --password or --password-file)", x->c.name, en->str);
        goto out;
    }
    if (en->type == RESP_BULK && (info_field(en->str, "cluster_enabled", buf, sizeof buf) < 0 || strcmp(buf, "1") != 0)) {
        rc_fail_as(rc, RC_ERR_NOT_CLUSTER, "%s: cluster mode is disabled (cluster_enabled:0); start it with cluster-enabled yes", x->c.name);
        goto out;
    }
    /* Redis 8 answers CLUSTER NODES while it loads a full sync, and LOADING to DBSIZE. */
    int loading = r[PROBE_DBSIZE]->type == RESP_ERROR && strncmp(r[PROBE_DBSIZE]->str, "LOADING", 7) == 0;
    if (nodes->type != RESP_BULK || (r[PROBE_DBSIZE]->type != RESP_INTEGER && !loading)) {
        rc_fail_as(rc, RC_ERR_NOT_CLUSTER, "%s: CLUSTER NODES: %s", x->c.name, nodes->type == RESP_ERROR ? nodes->str : "unexpected reply (is this a Redis node?)");
        goto out;
    }
    cview_free(&x->view);
    x->me = NULL;
    if (cview_parse(nodes->str, sdslen(nodes->str), &x->view) < 0 || !(x->me = cview_myself(&x->view))) {
        rc_fail(rc, "%s: cannot parse its CLUSTER NODES reply", x->c.name);
        goto out;
    }
    x->keys = loading ? 0 : r[PROBE_DBSIZE]->integer;
    snode_take_details(x, r);
    if (r[PROBE_CLUSTER_INFO]->type != RESP_BULK || info_field(r[PROBE_CLUSTER_INFO]->str, "cluster_state", x->state, sizeof x->state) < 0)
        snprintf(x->state, sizeof x->state, "?");
    x->current_epoch = r[PROBE_CLUSTER_INFO]->type == RESP_BULK &&
                       info_field(r[PROBE_CLUSTER_INFO]->str, "cluster_current_epoch", buf, sizeof buf) == 0 ? strtoll(buf, NULL, 10) : -1;
    x->up = 1;
    ret = 0;
out:
    for (int k = 0; k < PROBES; k++) resp_free(r[k]);
    if (ret < 0) snode_fail(rc, x);
    return ret;
}

/* Ask the seed who is in the cluster. cluster_enabled:0 and NOAUTH get their own kinds. */
static int sess_read_map(struct session *s, struct rconn *c) {
    struct rc *rc = s->rc;
    struct resp *info = NULL, *nodes = NULL;
    int ret = -1;
    int64_t dl = rc_now_ms() + rc->io_timeout_ms;
    if (rconn_queue(rc, c, "INFO", "cluster", RESP_END) < 0 || rconn_queue(rc, c, "CLUSTER", "NODES", RESP_END) < 0 ||
        !(info = rconn_read(rc, c, dl)) || !(nodes = rconn_read(rc, c, dl))) goto out;
    char buf[16];
    if (info->type == RESP_ERROR && strncmp(info->str, "NOAUTH", 6) == 0)
        rc_fail_as(rc, RC_ERR_AUTH, "%s: %s (give the password with --password or --password-file)", c->name, info->str);
    else if (info->type != RESP_BULK)
        rc_fail(rc, "%s: INFO cluster: %s", c->name, info->type == RESP_ERROR ? info->str : "unexpected reply");
    else if (info_field(info->str, "cluster_enabled", buf, sizeof buf) < 0 || strcmp(buf, "1") != 0)
        rc_fail_as(rc, RC_ERR_NOT_CLUSTER, "%s: cluster mode is disabled (cluster_enabled:0): not part of a cluster", c->name);
    else if (nodes->type != RESP_BULK)
        rc_fail(rc, "%s: CLUSTER NODES: %s", c->name, nodes->type == RESP_ERROR ? nodes->str : "unexpected reply");
    else if (cview_parse(nodes->str, sdslen(nodes->str), &s->map) < 0 || !cview_myself(&s->map))
        rc_fail(rc, "%s: cannot parse its CLUSTER NODES reply", c->name);
    else ret = 0;
out:
    resp_free(info);
    resp_free(nodes);
    return ret;
}

/* Connect to the seed, learn the members from it, connect to each and ask every one
 * its view. Members that cannot be asked are kept with up = 0 and the reason. */
static void sess_read_migrations(struct session *s);

static int sess_open(struct rc *rc, struct session *s, const struct addr *seed) {
    memset(s, 0, sizeof *s);
    s->deadline = rc_deadline_in(rc->timeout);
    s->rc = rc;
    struct rconn c;
    if (rconn_open(rc, &c, seed->ip, seed->port) < 0 || sess_read_map(s, &c) < 0) {
        rconn_free(&c);
        return -1;
    }
    if (!(s->nodes = calloc((size_t)s->map.n, sizeof *s->nodes))) { rconn_free(&c); return rc_fail_oom(rc); }
    for (int i = 0; i < s->map.n; i++) {
        const struct nodeinfo *ni = &s->map.nodes[i];
        if (ni->flags & NF_HANDSHAKE) continue;
        struct snode *x = &s->nodes[s->n];
        x->c.fd = -1;
        x->line = ni;
        memcpy(x->id, ni->id, sizeof x->id);
        snprintf(x->ip, sizeof x->ip, "%s", ni->ip[0] ? ni->ip : seed->ip);
        x->port = ni->port;
        x->bus = ni->bus;
        snprintf(x->conn_ip, sizeof x->conn_ip, "%s", x->ip);
        x->conn_port = x->port;
        if (ni->flags & NF_MYSELF) {
            s->seed = s->n;
            snprintf(x->conn_ip, sizeof x->conn_ip, "%s", seed->ip);
            x->conn_port = seed->port;
            x->c = c;
            c.name = NULL; c.fd = -1; c.rbuf = c.wbuf = NULL;
            x->up = 1;
        }
        s->n++;
    }
    rconn_free(&c);
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        /* A noaddr node is a member nobody can reach (its address went to another node). */
        if (!x->up && x->line && (x->line->flags & NF_NOADDR)) { rc_fail_as(rc, RC_ERR_UNREACHABLE, "no address known (noaddr)"); snode_fail(rc, x); continue; }
        if (!x->up && rconn_open(rc, &x->c, x->conn_ip, x->conn_port) < 0) { snode_fail(rc, x); continue; }
        x->up = 1;
        if (sess_probe_queue(s, x) < 0) snode_fail(rc, x);
    }
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].up) sess_probe_read(s, &s->nodes[i]);
    sess_read_migrations(s);
    struct snode *sx = &s->nodes[s->seed];
    if (!sx->up) { rc_fail_kind_msg(rc, sx->err_kind, sdsdup(sx->err)); return -1; }
    /* A node refusing our password is a wrong password, not a dead node. */
    for (int i = 0; i < s->n; i++)
        if (!s->nodes[i].up && s->nodes[i].err_kind == RC_ERR_AUTH)
            return rc_fail_kind_msg(rc, RC_ERR_AUTH, sdsdup(s->nodes[i].err));
    return 0;
}

/* A session over nodes given by address, not yet one cluster (create): each is reached
 * and announced as written until its own view says otherwise. The first node that
 * cannot be reached is the failure. */
static int sess_open_addrs(struct rc *rc, struct session *s, const struct addr *a, int n) {
    memset(s, 0, sizeof *s);
    s->deadline = rc_deadline_in(rc->timeout);
    s->rc = rc;
    if (!(s->nodes = calloc((size_t)n, sizeof *s->nodes))) return rc_fail_oom(rc);
    for (; s->n < n; s->n++) {
        struct snode *x = &s->nodes[s->n];
        x->c.fd = -1;
        snprintf(x->ip, sizeof x->ip, "%s", a[s->n].ip);
        snprintf(x->conn_ip, sizeof x->conn_ip, "%s", a[s->n].ip);
        x->port = x->conn_port = a[s->n].port;
        x->bus = addr_bus(&a[s->n]);
    }
    for (int i = 0; i < n; i++) {
        if (rconn_open(rc, &s->nodes[i].c, a[i].ip, a[i].port) < 0) return -1;
        s->nodes[i].up = 1;
    }
    return 0;
}

/* Drop x's connection, and with it every reply it still owed, and connect again. */
static int sess_reconnect(struct session *s, struct snode *x) {
    rconn_free(&x->c);
    x->owed = 0;
    x->up = 0;
    if (rconn_open(s->rc, &x->c, x->conn_ip, x->conn_port) < 0) { snode_fail(s->rc, x); return -1; }
    x->up = 1;
    return 0;
}

/* Whether an atomic migration's state is final: Valkey success/failed/cancelled; Redis
 * completed/canceled, and failed for its source's side (op "migrate"): the destination
 * retries a 'failed' import by itself. Pure. */
static int migration_state_final(const char *state, int redis, const char *op) {
    if (redis) return !strcmp(state, "completed") || !strcmp(state, "canceled") ||
                      (!strcmp(state, "failed") && op && !strcasecmp(op, "migrate"));
    return !strcmp(state, "success") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

static const char *resp_map_str(const struct resp *map, const char *key, char *buf, size_t len);

/* Count the migrations in flight in a reply of x's (Valkey: GETSLOTMIGRATIONS; Redis:
 * MIGRATION STATUS ALL, where 'failed' is still in flight) and say the first. */
static void snode_take_migrations(const struct session *s, struct snode *x, const struct resp *r) {
    x->migrations = 0;
    x->migration[0] = 0;
    int redis = (x->caps & SRV_ATOMIC_REDIS) != 0;
    for (size_t i = 0; r && r->type == RESP_ARRAY && i < r->n; i++) {
        char b[5][64];
        const struct resp *job = r->elem[i];
        const char *state = resp_map_str(job, "state", b[0], sizeof b[0]), *op = resp_map_str(job, "operation", b[1], sizeof b[1]);
        if (!state || migration_state_final(state, redis, op)) continue;
        const char *slots = resp_map_str(job, redis ? "slots" : "slot_ranges", b[2], sizeof b[2]);
        const char *from = resp_map_str(job, redis ? "source" : "source_node", b[3], sizeof b[3]);
        const char *to = resp_map_str(job, redis ? "dest" : "target_node", b[4], sizeof b[4]);
        int pf = from ? sess_index_of(s, from) : -1, pt = to ? sess_index_of(s, to) : -1;
        if (x->migrations++) continue;
        char src[96], dst[96];
        if (pf >= 0) snprintf(src, sizeof src, "%s:%d", s->nodes[pf].ip, s->nodes[pf].port); else snprintf(src, sizeof src, "%.12s", from ? from : "?");
        if (pt >= 0) snprintf(dst, sizeof dst, "%s:%d", s->nodes[pt].ip, s->nodes[pt].port); else snprintf(dst, sizeof dst, "%.12s", to ? to : "?");
        snprintf(x->migration, sizeof x->migration, "%.16s of slots %.40s, %s -> %s (%.32s)", op ? op : "migration", slots ? slots : "?", src, dst, state);
    }
}

/* Ask every master that has atomic slot migration which of its migrations are still in
 * flight (an earlier run's, say after a SIGKILL: the servers carry on by themselves).
 * A node that cannot say has none. */
static void sess_read_migrations(struct session *s) {
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        x->migrations = 0;
        x->migration[0] = 0;
        if (!x->up || !(x->caps & (SRV_ATOMIC_VALKEY | SRV_ATOMIC_REDIS)) || !snode_is_master(x)) continue;
        int r = x->caps & SRV_ATOMIC_VALKEY ? rconn_queue(s->rc, &x->c, "CLUSTER", "GETSLOTMIGRATIONS", RESP_END)
                                            : rconn_queue(s->rc, &x->c, "CLUSTER", "MIGRATION", "STATUS", "ALL", RESP_END);
        if (r == 0) x->owed++;
    }
    if (sess_flush_all(s) < 0) return;
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        while (x->up && x->owed > 0) {
            struct resp *r = sess_reply(s, x, 0);
            if (!r) break;
            snode_take_migrations(s, x, r);
            resp_free(r);
        }
    }
}

/* Atomic migrations in flight on the reachable nodes, as last read. */
static int sess_migrations(const struct session *s) {
    int n = 0;
    for (int i = 0; i < s->n; i++) n += s->nodes[i].up ? s->nodes[i].migrations : 0;
    return n;
}

/* Ask every reachable node for its view again (after a change). */
static int sess_refresh(struct session *s) {
    unsigned char *was = calloc((size_t)s->n + 1, 1);
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (was && x->up) was[i] = 1;
        if (x->up && sess_probe_queue(s, x) < 0) snode_fail(s->rc, x);
    }
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].up) sess_probe_read(s, &s->nodes[i]);
    /* A node that dropped our connection (a master that turns replica drops its
     * clients) is asked once more on a new one. */
    for (int i = 0; was && i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (was[i] && !x->up && x->err_kind != RC_ERR_AUTH && sess_reconnect(s, x) == 0 && sess_probe_queue(s, x) == 0)
            sess_probe_read(s, x);
    }
    free(was);
    sess_read_migrations(s);
    return 0;
}

/* owner[slot] = index of the master that says it owns slot (its own line); -1 none.
 * A slot two masters claim goes to the first; judge_multiple_owners reports it. */
static void sess_owner_map(const struct session *s, int *owner) {
    for (int k = 0; k < CLUSTER_SLOTS; k++) owner[k] = -1;
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        const struct nodeinfo *ni = snode_slots(x);
        if (!snode_is_master(x) || !ni) continue;
        for (int r = 0; r < ni->nranges; r++)
            for (int k = ni->ranges[r][0]; k <= ni->ranges[r][1]; k++)
                if (owner[k] < 0) owner[k] = i;
    }
}

static int sess_count_replicas(const struct session *s, const char *master_id) {
    int c = 0;
    for (int i = 0; i < s->n; i++)
        if (!snode_is_master(&s->nodes[i]) && strcmp(snode_master_id(&s->nodes[i]), master_id) == 0) c++;
    return c;
}

/* --- Judges: read views, return findings ------------------------------------ */

enum finding_kind { FIND_UNREACHABLE = 1, FIND_STATE, FIND_FAILING, FIND_OPEN_SLOT, FIND_UNCOVERED,
                    FIND_DISAGREE, FIND_MULTI_OWNER, FIND_TIMEOUT_MISMATCH, FIND_LINK, FIND_FORMATION_LEFT,
                    FIND_NOT_EMPTY, FIND_NOT_ALONE, FIND_HAS_SLOTS, FIND_SAME_NODE, FIND_MIGRATION, FIND_PARTIAL_MEMBER };

struct finding {
    int kind;
    int node;               /* index of the node it is about, -1 when none */
    int slot;               /* -1 when none */
    int warn;               /* a warning, not a health problem */
    sds text;
    int peer;               /* FIND_OPEN_SLOT: the other node's index; FIND_FAILING: the node
                               seen failing (-1 unknown) */
    int importing;          /* FIND_OPEN_SLOT: 1 importing, 0 migrating */
};

struct findings {
    struct finding *v;
    int n;
};

static void findings_free(struct findings *f) {
    for (int i = 0; i < f->n; i++) sdsfree(f->v[i].text);
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

__attribute__((format(printf, 6, 7)))
static int findings_add(struct findings *f, int kind, int node, int slot, int warn, const char *fmt, ...) {
    struct finding *grown = realloc(f->v, (size_t)(f->n + 1) * sizeof *grown);
    if (!grown) return -1;
    f->v = grown;
    va_list ap;
    va_start(ap, fmt);
    sds t = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    if (!t) return -1;
    f->v[f->n++] = (struct finding){ kind, node, slot, warn, t, -1, 0 };
    return 0;
}

static int judge_reachable(const struct session *s, struct findings *f) {
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (!x->up && findings_add(f, FIND_UNREACHABLE, i, -1, 0, "%s:%d unreachable: %s", x->ip, x->port, x->err ? x->err : "?") < 0) return -1;
        if (x->up && strcmp(x->state, "ok") != 0 &&
            findings_add(f, FIND_STATE, i, -1, 0, "%s:%d reports cluster_state:%s", x->ip, x->port, x->state) < 0) return -1;
    }
    return 0;
}

/* Every open slot each master reports in its own line. Valkey 8 replicates SETSLOT to
 * replicas, which then show their master's open slots: those are no extra problem, and
 * closing the slot on the master closes it on them. */
static int judge_open_slots(const struct session *s, struct findings *f) {
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        for (int k = 0; x->me && k < x->me->open_slots; k++) {
            const struct nodeopen *o = &x->me->open[k];
            int p = sess_index_of(s, o->peer);
            char peer[128];
            if (p >= 0) snprintf(peer, sizeof peer, "%s:%d", s->nodes[p].ip, s->nodes[p].port);
            else snprintf(peer, sizeof peer, "unknown node %.40s", o->peer);
            if (findings_add(f, FIND_OPEN_SLOT, i, o->slot, 0, "slot %d is open on %s:%d: %s %s", o->slot, x->ip, x->port,
                             o->importing ? "importing from" : "migrating to", peer) < 0) return -1;
            f->v[f->n - 1].peer = p;
            f->v[f->n - 1].importing = o->importing;
        }
    }
    return 0;
}

/* Atomic slot migrations in flight: no failure (the servers finish them), but no
 * time to start another move. A warning. */
static int judge_migrations(const struct session *s, struct findings *f) {
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (x->up && x->migrations > 0 &&
            findings_add(f, FIND_MIGRATION, i, -1, 1, "%s:%d: atomic slot migration in progress: %s%s", x->ip, x->port, x->migration,
                         x->migrations > 1 ? " (and more)" : "") < 0) return -1;
    }
    return 0;
}

/* The slots set in bits[CLUSTER_SLOTS] as ranges, "0-450,460-912"; past max ranges
 * the rest is counted ("... and 3 more ranges"). NULL on OOM. */
static sds slots_ranges_str(const unsigned char *bits, int max) {
    sds out = sdsempty();
    int shown = 0, more = 0;
    for (int k = 0; out && k < CLUSTER_SLOTS; k++) {
        if (!bits[k]) continue;
        int e = k;
        while (e + 1 < CLUSTER_SLOTS && bits[e + 1]) e++;
        if (shown == max) more++;
        else if (e == k) out = rc_catprintf(out, "%s%d", shown++ ? "," : "", k);
        else out = rc_catprintf(out, "%s%d-%d", shown++ ? "," : "", k, e);
        k = e;
    }
    if (more) out = rc_catprintf(out, " and %d more range%s", more, more == 1 ? "" : "s");
    return out;
}

/* One finding for all the open slots (*n of them) of one node with one direction and peer:
 * "904 slots are open on A: migrating to B: 0-450,460-912". Marks them in done. */
static sds open_group_text(const struct session *s, const struct findings *f, int i, unsigned char *done, unsigned char *bits, int *n) {
    const struct finding *a = &f->v[i];
    int count = 0;
    memset(bits, 0, CLUSTER_SLOTS);
    for (int j = i; j < f->n; j++) {
        const struct finding *b = &f->v[j];
        if (done[j] || b->kind != FIND_OPEN_SLOT || b->node != a->node || b->peer != a->peer || b->importing != a->importing) continue;
        done[j] = 1;
        bits[b->slot] = 1;
        count++;
    }
    *n = count;
    if (count == 1) return sdsdup(a->text);
    const struct snode *x = &s->nodes[a->node];
    char peer[128];
    if (a->peer >= 0) snprintf(peer, sizeof peer, "%s:%d", s->nodes[a->peer].ip, s->nodes[a->peer].port);
    else snprintf(peer, sizeof peer, "an unknown node");
    sds ranges = slots_ranges_str(bits, 8);
    sds t = ranges ? rc_sprintf("%d slots are open on %s:%d: %s %s: %s", count, x->ip, x->port,
                                a->importing ? "importing from" : "migrating to", peer, ranges) : NULL;
    sdsfree(ranges);
    return t;
}

/* Open-slot findings come one per slot (a failed move leaves hundreds): for a reader
 * they become one per node, direction and peer, with the slots as ranges, in the place
 * of the group's first. Other findings stay as they are. */
static int findings_group_open(const struct session *s, struct findings *f) {
    struct findings out = { 0 };
    unsigned char *done = calloc((size_t)f->n + 1, 1), *bits = malloc(CLUSTER_SLOTS);
    int ret = done && bits ? 0 : -1;
    for (int i = 0; ret == 0 && i < f->n; i++) {
        if (done[i]) continue;
        struct finding *a = &f->v[i];
        int n = 1;
        sds t = a->kind == FIND_OPEN_SLOT ? open_group_text(s, f, i, done, bits, &n) : sdsdup(a->text);
        if (!t || findings_add(&out, a->kind, a->node, n > 1 ? -1 : a->slot, a->warn, "%s", t) < 0) ret = -1;
        else { out.v[out.n - 1].peer = a->peer; out.v[out.n - 1].importing = a->importing; }
        sdsfree(t);
    }
    free(done);
    free(bits);
    if (ret < 0) { findings_free(&out); return -1; }
    findings_free(f);
    *f = out;
    return 0;
}

static int judge_coverage(const struct session *s, struct findings *f) {
    int *owner = malloc(CLUSTER_SLOTS * sizeof *owner);
    if (!owner) return -1;
    sess_owner_map(s, owner);
    int ret = 0;
    for (int k = 0; k < CLUSTER_SLOTS && ret == 0; k++) {
        if (owner[k] >= 0) continue;
        int e = k;
        while (e + 1 < CLUSTER_SLOTS && owner[e + 1] < 0) e++;
        ret = e == k ? findings_add(f, FIND_UNCOVERED, -1, k, 0, "slot %d is not covered by any master", k)
                     : findings_add(f, FIND_UNCOVERED, -1, k, 0, "slots %d-%d are not covered by any master", k, e);
        k = e;
    }
    free(owner);
    return ret;
}

/* Slots two masters both claim in their own lines (redis-cli's multiple owners). */
static int judge_multiple_owners(const struct session *s, struct findings *f) {
    unsigned char *claims = calloc(CLUSTER_SLOTS, 1);
    if (!claims) return -1;
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (!x->me || !snode_is_master(x)) continue;
        for (int r = 0; r < x->me->nranges; r++)
            for (int k = x->me->ranges[r][0]; k <= x->me->ranges[r][1]; k++) if (claims[k] < 255) claims[k]++;
    }
    int ret = 0;
    for (int k = 0; k < CLUSTER_SLOTS && ret == 0; k++)
        if (claims[k] > 1) ret = findings_add(f, FIND_MULTI_OWNER, -1, k, 0, "slot %d is claimed by %d masters", k, claims[k]);
    free(claims);
    return ret;
}

/* Every reachable node sees the same slot map, and sees no node failing. */
static int judge_agreement(const struct session *s, struct findings *f) {
    sds sig0 = NULL;
    int ret = 0;
    for (int i = 0; i < s->n && ret == 0; i++) {
        const struct snode *x = &s->nodes[i];
        if (!x->up) continue;
        for (int j = 0; j < x->view.n && ret == 0; j++) {
            const struct nodeinfo *o = &x->view.nodes[j];
            if (!(o->flags & (NF_FAIL | NF_PFAIL))) continue;
            ret = findings_add(f, FIND_FAILING, i, -1, 0, "%s:%d sees %s:%d as %s", x->ip, x->port, o->ip, o->port,
                               (o->flags & NF_FAIL) ? "failed" : "possibly failed");
            if (ret == 0) f->v[f->n - 1].peer = sess_index_of(s, o->id);
        }
        sds sig = cview_signature(&x->view);
        if (!sig) { ret = -1; break; }
        if (!sig0) { sig0 = sig; continue; }
        if (strcmp(sig, sig0) != 0)
            ret = findings_add(f, FIND_DISAGREE, i, -1, 0, "%s:%d does not agree with the other nodes about the slot map", x->ip, x->port);
        sdsfree(sig);
    }
    sdsfree(sig0);
    return ret;
}

/* Every member is listed by every reachable node, and no node lists one the seed does
 * not know: a node only part of the cluster knows (a join or a removal left half done)
 * answers for some nodes and is a stranger to others. */
static int judge_membership(const struct session *s, struct findings *f) {
    int asked = 0;
    for (int i = 0; i < s->n; i++) asked += s->nodes[i].up && s->nodes[i].view.n > 0;
    for (int j = 0; j < s->n; j++) {
        const struct snode *m = &s->nodes[j], *miss = NULL;
        int knows = 0;
        for (int i = 0; i < s->n; i++) {
            const struct snode *x = &s->nodes[i];
            if (!x->up || x->view.n == 0) continue;
            const struct nodeinfo *ni = cview_find((struct cview *)&x->view, m->id);
            if (ni && !(ni->flags & NF_HANDSHAKE)) knows++;
            else if (!miss) miss = x;
        }
        if (miss && findings_add(f, FIND_PARTIAL_MEMBER, j, -1, 0, "%s:%d (%.8s) is known to only %d of %d nodes (not to %s:%d)",
                                 m->ip, m->port, m->id, knows, asked, miss->ip, miss->port) < 0) return -1;
    }
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        for (int k = 0; x->up && x->me && k < x->view.n; k++) {
            const struct nodeinfo *o = &x->view.nodes[k];
            if ((o->flags & NF_HANDSHAKE) || sess_index_of(s, o->id) >= 0) continue;
            if (findings_add(f, FIND_PARTIAL_MEMBER, i, -1, 0, "%s:%d lists %s:%d (%.8s), which %s:%d does not know",
                             x->ip, x->port, o->ip, o->port, o->id, s->nodes[s->seed].ip, s->nodes[s->seed].port) < 0) return -1;
            break;
        }
    }
    return 0;
}

/* Nodes of one cluster with different cluster-node-timeout values fail over unevenly. */
static int judge_node_timeout(const struct session *s, struct findings *f) {
    long first = -1;
    int fi = -1;
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (!x->up || x->node_timeout < 0) continue;
        if (fi < 0) { first = x->node_timeout; fi = i; continue; }
        if (x->node_timeout != first)
            return findings_add(f, FIND_TIMEOUT_MISMATCH, i, -1, 1, "nodes disagree on cluster-node-timeout: %s:%d has %ld ms, %s:%d has %ld ms "
                                "(rcluster set-timeout ADDR MS sets one value everywhere)", s->nodes[fi].ip, s->nodes[fi].port, first, x->ip, x->port, x->node_timeout);
    }
    return 0;
}

/* Every reachable replica has its replication link up. */
static int judge_replica_links(const struct session *s, struct findings *f) {
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (x->up && !snode_is_master(x) && strcmp(x->link, "up") != 0 &&
            findings_add(f, FIND_LINK, i, -1, 0, "%s:%d: replication link to its master is %s", x->ip, x->port, x->link[0] ? x->link : "not up") < 0)
            return -1;
    }
    return 0;
}

static int form_is_formation_timeout(long ms);

/* A replica with cluster-replica-no-failover yes, repl-diskless-sync-delay 0 and one of
 * the formation levels' cluster-node-timeouts is what create leaves when its restore
 * failed (or was cut short): it will not fail over. A warning, for the first such node. */
static int judge_formation_leftovers(const struct session *s, struct findings *f) {
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (x->up && x->no_failover == 1 && x->diskless_delay == 0 && form_is_formation_timeout(x->node_timeout))
            return findings_add(f, FIND_FORMATION_LEFT, i, -1, 1, "%s:%d still carries rcluster's formation settings (cluster-node-timeout %ld, "
                                "repl-diskless-sync-delay 0, cluster-replica-no-failover yes): it will not fail over; set them back with "
                                "CONFIG SET (or rcluster set-timeout)", x->ip, x->port, x->node_timeout);
    }
    return 0;
}

/* Can these nodes form a new cluster? Each must be empty, know no other node, own no
 * slot, and be a node of its own (two addresses of one node share its id). */
static int judge_formable(const struct session *s, struct findings *f) {
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        int r = 0;
        if (!x->me) continue;
        if (x->keys != 0)
            r = findings_add(f, FIND_NOT_EMPTY, i, -1, 0, "%s:%d: node is not empty (%lld keys); only empty nodes can form a new cluster", x->ip, x->port, x->keys);
        else if (x->view.n > 1)
            r = findings_add(f, FIND_NOT_ALONE, i, -1, 0, "%s:%d: node already knows %d other nodes (it is part of a cluster; CLUSTER RESET it first)",
                             x->ip, x->port, x->view.n - 1);
        else if (x->me->nranges > 0)
            r = findings_add(f, FIND_HAS_SLOTS, i, -1, 0, "%s:%d: node already has %d slots assigned", x->ip, x->port, nodeinfo_slot_count(x->me));
        for (int j = 0; r == 0 && j < i; j++)
            if (s->nodes[j].me && strcmp(s->nodes[j].me->id, x->me->id) == 0)
                r = findings_add(f, FIND_SAME_NODE, i, -1, 0, "%s:%d and %s:%d are the same node (id %.8s)", s->nodes[j].ip, s->nodes[j].port,
                                 x->ip, x->port, x->me->id);
        if (r < 0) return -1;
    }
    return 0;
}

/* The judges a mutating command runs before it changes anything. */
static int judge_all(const struct session *s, struct findings *f, int multi_owners) {
    if (judge_reachable(s, f) < 0 || judge_open_slots(s, f) < 0 || judge_coverage(s, f) < 0 ||
        judge_agreement(s, f) < 0 || judge_node_timeout(s, f) < 0 || judge_migrations(s, f) < 0) return -1;
    if (multi_owners && judge_multiple_owners(s, f) < 0) return -1;
    return 0;
}

/* --- Actions: queue commands, read nothing ------------------------------------ */

static int act_setslot(struct session *s, struct snode *x, int slot, const char *how, const char *id) {
    char num[16];
    snprintf(num, sizeof num, "%d", slot);
    if (!id) return sess_queue(s, x, "CLUSTER", "SETSLOT", num, how, RESP_END);
    return sess_queue(s, x, "CLUSTER", "SETSLOT", num, how, id, RESP_END);
}

static int act_forget(struct session *s, struct snode *x, const char *id) {
    return sess_queue(s, x, "CLUSTER", "FORGET", id, RESP_END);
}

static int act_replicate(struct session *s, struct snode *x, const char *master_id) {
    return sess_queue(s, x, "CLUSTER", "REPLICATE", master_id, RESP_END);
}

/* how: "SOFT" (a node leaving a cluster) or "HARD" (a new id too: undoing a formation). */
static int act_reset(struct session *s, struct snode *x, const char *how) {
    return sess_queue(s, x, "CLUSTER", "RESET", how, RESP_END);
}

static int act_meet(struct session *s, struct snode *x, const char *ip, int port, int bus) {
    char p[16], b[16];
    snprintf(p, sizeof p, "%d", port);
    snprintf(b, sizeof b, "%d", bus);
    if (bus && bus != port + CLUSTER_BUS_OFFSET) return sess_queue(s, x, "CLUSTER", "MEET", ip, p, b, RESP_END);
    return sess_queue(s, x, "CLUSTER", "MEET", ip, p, RESP_END);
}

/* cluster-replica-no-failover yes on node x, so that a node still joining cannot take
 * over its master's slots; its old value goes to was (for release_no_failover). */
static int sess_hold_no_failover(struct session *s, struct snode *x, char was[8]) {
    struct resp *old = NULL, *set = NULL;
    int ret = -1;
    if (sess_queue(s, x, "CONFIG", "GET", "cluster-replica-no-failover", RESP_END) < 0 ||
        sess_queue(s, x, "CONFIG", "SET", "cluster-replica-no-failover", "yes", RESP_END) < 0 || sess_flush_all(s) < 0 ||
        !(old = sess_reply(s, x, 0)) || !(set = sess_reply(s, x, 0))) goto out;
    if (set->type == RESP_ERROR) { rc_fail(s->rc, "%s:%d: CONFIG SET cluster-replica-no-failover yes: %s", x->ip, x->port, set->str); goto out; }
    const char *v = resp_config_value(old);
    snprintf(was, 8, "%s", v ? v : "no");
    ret = 0;
out:
    resp_free(old);
    resp_free(set);
    return ret;
}

/* Every exit path: give node ip:port (called name) its own cluster-replica-no-failover
 * back, on a connection of its own (the session may be broken by then); a failure is a
 * warning. Keeps rc->err. */
static void release_no_failover(struct rc *rc, const char *ip, int port, const char *name, const char *was) {
    struct rc_err_saved saved = rc_err_save(rc);
    struct rconn c;
    struct resp *rep = NULL;
    if (rconn_open(rc, &c, ip, port) == 0)
        rep = rconn_call(rc, &c, "CONFIG SET", "CONFIG", "SET", "cluster-replica-no-failover", was, RESP_END);
    if (!rep || rep->type == RESP_ERROR)
        rc_warn(rc, "%s: could not restore cluster-replica-no-failover %s: %s (it returns at its next restart)", name, was,
                rep ? rep->str : rc->err);
    resp_free(rep);
    rconn_free(&c);
    rc_err_restore(rc, &saved);
}

/* Slots lo-hi in one command: ADDSLOTSRANGE from Redis 7 on, else ADDSLOTS with each
 * slot (callers keep hi - lo below ADDSLOTS_BATCH then). */
#define ADDSLOTS_BATCH 1000
static int act_addslots_range(struct session *s, struct snode *x, int lo, int hi) {
    char nums[ADDSLOTS_BATCH][12];
    const char *argv[2 + ADDSLOTS_BATCH];
    int argc = 2;
    argv[0] = "CLUSTER";
    if (x->major >= 7) {
        snprintf(nums[0], sizeof nums[0], "%d", lo);
        snprintf(nums[1], sizeof nums[1], "%d", hi);
        argv[1] = "ADDSLOTSRANGE";
        argv[argc++] = nums[0];
        argv[argc++] = nums[1];
        return sess_queue_argv(s, x, argc, argv);
    }
    argv[1] = "ADDSLOTS";
    for (int k = lo; k <= hi && argc - 2 < ADDSLOTS_BATCH; k++, argc++) {
        snprintf(nums[argc - 2], sizeof nums[0], "%d", k);
        argv[argc] = nums[argc - 2];
    }
    return sess_queue_argv(s, x, argc, argv);
}

static int act_set_config_epoch(struct session *s, struct snode *x, int epoch) {
    char num[16];
    snprintf(num, sizeof num, "%d", epoch);
    return sess_queue(s, x, "CLUSTER", "SET-CONFIG-EPOCH", num, RESP_END);
}

static sds resp_cat_bulk(sds out, const char *p, size_t len) {
    out = rc_catprintf(out, "$%zu\r\n", len);
    out = rc_catlen(out, p, len);
    return rc_catlen(out, "\r\n", 2);
}

struct move_opts {
    int batch;              /* keys per GETKEYSINSLOT / MIGRATE at first */
    int batch_max;          /* a slot with many keys grows its batch up to this */
    int timeout_ms;         /* MIGRATE's own timeout */
    int replace;            /* MIGRATE ... REPLACE: overwrite keys the target already has */
    int window;             /* slots in flight at once */
    int migration;          /* MIGRATION_*: --migration auto|atomic|keys */
};

enum { MIGRATION_AUTO, MIGRATION_ATOMIC, MIGRATION_KEYS };

/* Queue MIGRATE of the keys in a GETKEYSINSLOT reply from src to dst, with AUTH/AUTH2
 * when we authenticate ourselves (the nodes of one cluster share the password). */
static int act_migrate(struct session *s, struct snode *src, const struct snode *dst, const struct move_opts *o,
                       const struct resp *keys) {
    struct rc *rc = s->rc;
    char port[16], tmo[16];
    snprintf(port, sizeof port, "%d", dst->port);
    snprintf(tmo, sizeof tmo, "%d", o->timeout_ms);
    const char *head[12];
    int nh = 0;
    head[nh++] = "MIGRATE"; head[nh++] = dst->ip; head[nh++] = port; head[nh++] = ""; head[nh++] = "0"; head[nh++] = tmo;
    if (o->replace) head[nh++] = "REPLACE";
    if (rc->password && rc->user) { head[nh++] = "AUTH2"; head[nh++] = rc->user; head[nh++] = rc->password; }
    else if (rc->password) { head[nh++] = "AUTH"; head[nh++] = rc->password; }
    head[nh++] = "KEYS";
    if (!src->c.wbuf && !(src->c.wbuf = sdsempty())) return rc_fail_oom(rc);
    sds out = rc_catprintf(src->c.wbuf, "*%zu\r\n", (size_t)nh + keys->n);
    for (int i = 0; i < nh; i++) out = resp_cat_bulk(out, head[i], strlen(head[i]));
    for (size_t i = 0; i < keys->n; i++) out = resp_cat_bulk(out, keys->elem[i]->str, sdslen(keys->elem[i]->str));
    src->c.wbuf = out;
    if (!out) return rc_fail_oom(rc);
    src->owed++;
    return 0;
}

/* --- Moving slots: one mover, two engines -------------------------------------- */

/* The mover moves a list of slots (struct move) from their sources to their targets
 * with one of two engines, picked per plan (mover_pick):
 *  - keys: SETSLOT IMPORTING/MIGRATING, MIGRATE ... KEYS in batches, SETSLOT NODE —
 *    every server; what redis-cli --cluster does, in windows of slots;
 *  - atomic: the server moves slots and keys itself — Valkey >= 9.0 (CLUSTER
 *    MIGRATESLOTS on the source) or Redis >= 8.4 (CLUSTER MIGRATION IMPORT on the
 *    destination); rcluster groups the slots into ranges, schedules the requests and
 *    follows them with the servers' status commands. */
struct move {
    int slot, src, dst;
    int importing, migrating;  /* SETSLOT accepted on dst / src */
    int touched;               /* a MIGRATE was sent: keys may be on both sides */
    int batch;                 /* keys asked for next */
    int done, failed;
    struct resp *keys;         /* the next keys to migrate (GETKEYSINSLOT's answer) */
    long long moved;
    long long count;           /* keys in the slot before the move (atomic: progress) */
    int counted;               /* count is known (reshard_check_busy counted it) */
};

struct mover;

struct move_engine {
    const char *name;                  /* "keys", "atomic" */
    const char *how;                   /* the commands, as plans say them */
    int (*run)(struct mover *m);       /* moves m->mv; -1 with rc->err when the run broke */
    void (*print_commands)(FILE *out, struct session *s, const struct move *mv, int n, const struct move_opts *o);
};

/* Connections per Valkey >= 8 node for SETSLOT (each waits for the replicas on its own,
 * so the waits overlap), and SETSLOTs pipelined on one of them per round (Valkey 9.1
 * answers 200 pipelined SETSLOTs and then stalls for seconds). Other servers get one
 * connection and the whole window at once: a node saves its config once per batch. */
#define MOVER_LANES       16
#define MOVER_LANE_DEPTH  100

struct mover {
    struct session *s;
    const struct move_opts *o;
    const struct move_engine *eng;
    struct move *mv;
    int n;
    int slots_done;
    long long keys_moved, keys_total;  /* keys_total: -1 when not counted */
    int64_t t0, last_report;
    int tty, shown_final;
    sds first_error;           /* the first slot that failed, and why */
    int64_t phase_ms[3];       /* time in open / migrate / close, for --verbose */
    struct rconn *lane;        /* keys: s->n * MOVER_LANES SETSLOT connections, fd -1 until used */
    int lanes;                 /* keys: lanes per Valkey >= 8 node, 1..MOVER_LANES (file descriptors) */
    int cancelled;             /* atomic: Ctrl-C cancelled what was in flight */
};

static void mover_fail_move(struct mover *m, struct move *mv, const char *why) {
    mv->failed = 1;
    if (!m->first_error) {
        struct snode *src = &m->s->nodes[mv->src], *dst = &m->s->nodes[mv->dst];
        m->first_error = rc_sprintf("slot %d (%s:%d -> %s:%d): %s", mv->slot, src->ip, src->port, dst->ip, dst->port, why);
    }
}

/* The share of the work done, from slots and (when counted) keys. Pure. */
static double mover_fraction(int slots_done, int n, long long keys, long long keys_total) {
    double f = n > 0 ? (double)slots_done / n : 1;
    if (keys_total > 0) f = (f + (double)(keys < keys_total ? keys : keys_total) / (double)keys_total) / 2;
    return f;
}

/* A progress bar of fraction f: MOVER_BAR characters, '#' done, '.' to do. Pure. */
#define MOVER_BAR 24
static void mover_bar(double f, char *bar) {
    int done = f <= 0 ? 0 : f >= 1 ? MOVER_BAR : (int)(f * MOVER_BAR);
    for (int i = 0; i < MOVER_BAR; i++) bar[i] = i < done ? '#' : '.';
    bar[MOVER_BAR] = 0;
}

/* One progress line (a redrawn bar on a TTY); the final line once, with the time taken. */
static void mover_progress(struct mover *m, int final) {
    struct rc *rc = m->s->rc;
    int64_t now = rc_now_ms();
    if (rc->quiet || m->shown_final || (!final && now - m->last_report < (m->tty ? 200 : 3000))) return;
    if (!final && m->slots_done == m->n) return;    /* the final line says it */
    m->last_report = now;
    m->shown_final = final;
    double secs = (double)(now - m->t0) / 1000.0;
    double rate = secs > 0 ? (double)m->keys_moved / secs : 0;
    double f = mover_fraction(m->slots_done, m->n, m->keys_moved, m->keys_total);
    char tail[48] = "";
    if (final) snprintf(tail, sizeof tail, ", took %.1f s", secs);
    else if (f > 0.05 && secs > 1 && secs * (1 - f) / f >= 1) snprintf(tail, sizeof tail, ", about %.0f s left", secs * (1 - f) / f);
    char line[256], bar[MOVER_BAR + 1];
    snprintf(line, sizeof line, "moved %d/%d slots (%d%%), %lld keys, %.0f keys/s%s", m->slots_done, m->n,
             m->n ? m->slots_done * 100 / m->n : 100, m->keys_moved, rate, tail);
    mover_bar(f, bar);
    if (m->tty) fprintf(stderr, "\r\033[K[%s] %s%s", bar, line, final ? "\n" : "");
    else fprintf(stderr, ">>> %s\n", line);
}

/* Read one reply owed by node idx for a move; a dropped connection fails the run. */
static struct resp *mover_reply(struct mover *m, int idx, int extra_ms) {
    struct resp *r = sess_reply(m->s, &m->s->nodes[idx], extra_ms);
    if (!r) rc_wrap(m->s->rc, "moving slots");
    return r;
}

/* SIGINT/SIGTERM wait while a round of requests is in flight (its replies are read
 * whole); they are taken between rounds, where the engines check rc_interrupted(). */
static void mover_hold_signals(sigset_t *old) {
    sigset_t hold;
    sigemptyset(&hold);
    sigaddset(&hold, SIGINT);
    sigaddset(&hold, SIGTERM);
    sigprocmask(SIG_BLOCK, &hold, old);
}

static void mover_release_signals(const sigset_t *old) { sigprocmask(SIG_SETMASK, old, NULL); }

/* --- The keys engine: SETSLOT, MIGRATE ... KEYS, SETSLOT NODE --------------------- */

/* Keys in flight are held in memory (GETKEYSINSLOT's answers): at most this many per
 * round across the window, which keeps the peak RSS of a big move under 16 MB. */
#define MOVER_KEY_BUDGET 48000

/* One SETSLOT of a phase and its outcome: ok, or err with the node's words. */
struct setslot {
    int node, slot;
    const char *how, *id;
    int lane, ok;
    sds err;
    int tries;                 /* NOREPLICAS answers so far */
};

static int mover_lanes_of(const struct mover *m, int node) {
    return m->s->nodes[node].caps & SRV_REPLICATED_SETSLOT ? m->lanes : 1;
}

/* Lanes per node that the open-files limit allows (raised to its hard limit first):
 * n nodes, each with its session connection, and some to spare. */
static int mover_lane_budget(int n) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return 1;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        if (want > rl.rlim_cur) { rl.rlim_cur = want; if (prlimit(0, RLIMIT_NOFILE, &rl, NULL) < 0) getrlimit(RLIMIT_NOFILE, &rl); }
    }
    long spare = (long)(rl.rlim_cur > 1000000 ? 1000000 : rl.rlim_cur) - n - 64;
    long per = n > 0 ? spare / n : MOVER_LANES;
    return per < 1 ? 1 : per > MOVER_LANES ? MOVER_LANES : (int)per;
}

/* Lane l of node, connected (and authenticated) on first use; NULL with rc->err. */
static struct rconn *mover_lane(struct mover *m, int node, int l) {
    struct rconn *c = &m->lane[(size_t)node * MOVER_LANES + (size_t)l];
    if (c->fd >= 0) return c;
    struct snode *x = &m->s->nodes[node];
    rconn_free(c);
    if (rconn_open(m->s->rc, c, x->conn_ip, x->conn_port) < 0) { rconn_free(c); c->fd = -1; return NULL; }
    return c;
}

static void setslots_free(struct setslot *v, int n) {
    for (int i = 0; i < n; i++) { sdsfree(v[i].err); v[i].err = NULL; }
}

/* Queue the SETSLOTs of v not yet done on their nodes' lanes, at most MOVER_LANE_DEPTH
 * per lane; v[i].lane = the lane, or -1 when it waits for the next round. */
static int setslots_queue(struct mover *m, struct setslot *v, int n, int *fill) {
    struct rc *rc = m->s->rc;
    int queued = 0;
    memset(fill, 0, sizeof *fill * (size_t)m->s->n * MOVER_LANES);
    for (int i = 0; i < n; i++) {
        v[i].lane = -1;
        if (v[i].ok || v[i].err) continue;
        int lanes = mover_lanes_of(m, v[i].node), *f = fill + (size_t)v[i].node * MOVER_LANES, best = 0;
        for (int l = 1; l < lanes; l++) if (f[l] < f[best]) best = l;
        if (lanes > 1 && f[best] >= MOVER_LANE_DEPTH) continue;   /* one lane: a server that answers at once */
        struct rconn *c = mover_lane(m, v[i].node, best);
        char num[16];
        snprintf(num, sizeof num, "%d", v[i].slot);
        if (!c) { v[i].err = sdsdup(rc->err); if (!v[i].err) return rc_fail_oom(rc); continue; }
        if (rconn_queue(rc, c, "CLUSTER", "SETSLOT", num, v[i].how, v[i].id, RESP_END) < 0) return -1;
        v[i].lane = best;
        f[best]++;
        queued++;
    }
    return queued;
}

/* Read the replies of the SETSLOTs queued this round, in queue order per lane. A lane
 * that drops answers its remaining SETSLOTs with its error. Returns how many go again. */
#define SETSLOT_RETRIES  30        /* NOREPLICAS answers taken as "again", 200 ms apart */

static int setslots_read(struct mover *m, struct setslot *v, int n) {
    struct rc *rc = m->s->rc;
    int64_t dl = rc_now_ms() + rc->io_timeout_ms;
    int retry = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].lane < 0) continue;
        struct rconn *c = &m->lane[(size_t)v[i].node * MOVER_LANES + (size_t)v[i].lane];
        struct resp *r = c->fd >= 0 ? rconn_read(rc, c, dl) : NULL;
        if (!r) {
            if (c->fd >= 0) rconn_close(c);
            v[i].err = rc_sprintf("%s", rc->err ? rc->err : "connection dropped");
            if (!v[i].err) return rc_fail_oom(rc);
            continue;
        }
        /* Valkey's replicated SETSLOT: a replica busy (a full sync) may miss the ack
         * window; the SETSLOT was not applied, and goes again in the next round. */
        if (r->type == RESP_ERROR && !strncmp(r->str, "NOREPLICAS", 10) && v[i].tries++ < SETSLOT_RETRIES) retry++;
        else if (r->type == RESP_ERROR) { v[i].err = sdsdup(r->str); if (!v[i].err) { resp_free(r); return rc_fail_oom(rc); } }
        else v[i].ok = 1;
        resp_free(r);
    }
    return retry;
}

/* Send every SETSLOT in v and read each outcome into v. -1 only when rcluster itself
 * fails (OOM); a node's refusal or a dropped connection is an outcome. */
static int mover_setslots(struct mover *m, struct setslot *v, int n) {
    struct rc *rc = m->s->rc;
    int *fill = malloc(sizeof *fill * (size_t)m->s->n * MOVER_LANES);
    if (!fill) return rc_fail_oom(rc);
    int ret = 0;
    for (;;) {
        int q = setslots_queue(m, v, n, fill);
        if (q <= 0) { ret = q; break; }
        int64_t dl = rc_now_ms() + rc->io_timeout_ms;
        for (int k = 0; k < m->s->n * MOVER_LANES; k++)
            if (m->lane[k].fd >= 0 && m->lane[k].wbuf && sdslen(m->lane[k].wbuf) && rconn_flush(rc, &m->lane[k], dl) < 0) rconn_close(&m->lane[k]);
        if ((ret = setslots_read(m, v, n)) < 0) break;
        if (ret > 0) rc_sleep_ms(200);
    }
    free(fill);
    return ret;
}

/* Phase 1: target IMPORTING; phase 2: source MIGRATING; then the first keys. */
static int mover_open(struct mover *m, struct move *w, int nw) {
    struct session *s = m->s;
    struct setslot *v = calloc((size_t)nw, sizeof *v);
    if (!v) return rc_fail_oom(s->rc);
    int ret = -1;
    for (int i = 0; i < nw; i++) v[i] = (struct setslot){ w[i].dst, w[i].slot, "IMPORTING", s->nodes[w[i].src].id, 0, 0, NULL, 0 };
    if (mover_setslots(m, v, nw) < 0) goto out;
    for (int i = 0; i < nw; i++) {
        if (v[i].ok) w[i].importing = 1;
        else mover_fail_move(m, &w[i], v[i].err);
    }
    setslots_free(v, nw);
    for (int i = 0; i < nw; i++)
        v[i] = (struct setslot){ w[i].src, w[i].slot, "MIGRATING", s->nodes[w[i].dst].id, 0, w[i].failed, NULL, 0 };
    if (mover_setslots(m, v, nw) < 0) goto out;
    char batch[16];
    int first = m->o->batch < MOVER_KEY_BUDGET / nw ? m->o->batch : MOVER_KEY_BUDGET / nw;
    snprintf(batch, sizeof batch, "%d", first > 10 ? first : 10);
    for (int i = 0; i < nw; i++) {
        if (w[i].failed) continue;
        if (!v[i].ok) { mover_fail_move(m, &w[i], v[i].err); continue; }
        w[i].migrating = 1;
        w[i].batch = m->o->batch;
        char num[16];
        snprintf(num, sizeof num, "%d", w[i].slot);
        if (sess_queue(s, &s->nodes[w[i].src], "CLUSTER", "GETKEYSINSLOT", num, batch, RESP_END) < 0) goto out;
    }
    if (sess_flush_all(s) < 0) goto out;
    for (int i = 0; i < nw; i++) {
        if (w[i].failed) continue;
        struct resp *k = mover_reply(m, w[i].src, 0);
        if (!k) goto out;
        if (k->type != RESP_ARRAY) mover_fail_move(m, &w[i], k->type == RESP_ERROR ? k->str : "GETKEYSINSLOT: unexpected reply");
        else { w[i].keys = k; k = NULL; }
        resp_free(k);
    }
    ret = 0;
out:
    setslots_free(v, nw);
    free(v);
    return ret;
}
/* Phase 3: MIGRATE the keys, each MIGRATE pipelined with the next GETKEYSINSLOT, until
 * every slot of the window is empty on its source. */
static int mover_migrate(struct mover *m, struct move *w, int nw) {
    struct session *s = m->s;
    for (;;) {
        int queued = 0, budget = MOVER_KEY_BUDGET;
        int64_t t0 = rc_now_ms();
        for (int i = 0; i < nw; i++) {
            if (w[i].failed || !w[i].keys || w[i].keys->n == 0) continue;
            char num[16], batch[16];
            int b = w[i].batch < budget ? w[i].batch : budget;
            budget -= b;
            snprintf(num, sizeof num, "%d", w[i].slot);
            snprintf(batch, sizeof batch, "%d", b > 10 ? b : 10);
            w[i].touched = 1;
            if (act_migrate(s, &s->nodes[w[i].src], &s->nodes[w[i].dst], m->o, w[i].keys) < 0 ||
                sess_queue(s, &s->nodes[w[i].src], "CLUSTER", "GETKEYSINSLOT", num, batch, RESP_END) < 0) return -1;
            queued++;
        }
        if (!queued) return 0;
        if (sess_flush_all(s) < 0) return -1;
        for (int i = 0; i < nw; i++) {
            if (w[i].failed || !w[i].keys || w[i].keys->n == 0) continue;
            struct resp *r = mover_reply(m, w[i].src, m->o->timeout_ms), *k = r ? mover_reply(m, w[i].src, 0) : NULL;
            if (!k) { resp_free(r); return -1; }
            if (r->type == RESP_ERROR) {
                if (strncmp(r->str, "BUSYKEY", 7) == 0) {
                    sds why = rc_sprintf("%s: a key of this slot already exists on the target; nothing was overwritten "
                                         "(use --replace to overwrite it)", r->str);
                    mover_fail_move(m, &w[i], why ? why : r->str);
                    sdsfree(why);
                } else mover_fail_move(m, &w[i], r->str);
            } else {
                long long n = (long long)w[i].keys->n;
                w[i].moved += n;
                m->keys_moved += n;
            }
            resp_free(w[i].keys);
            w[i].keys = NULL;
            if (!w[i].failed && k->type == RESP_ARRAY) { w[i].keys = k; k = NULL; }
            else if (!w[i].failed) mover_fail_move(m, &w[i], k->type == RESP_ERROR ? k->str : "GETKEYSINSLOT: unexpected reply");
            resp_free(r);
            resp_free(k);
        }
        /* Big slots: fewer, larger MIGRATEs while each round stays quick. */
        if (rc_now_ms() - t0 < 100)
            for (int i = 0; i < nw; i++) if (w[i].batch < m->o->batch_max) w[i].batch = w[i].batch * 2 < m->o->batch_max ? w[i].batch * 2 : m->o->batch_max;
    }
}

/* Phases 4 and 5: the target takes the slot first (it bumps its epoch), then the
 * source and every other master learn it at once. */
static int mover_close(struct mover *m, struct move *w, int nw) {
    struct session *s = m->s;
    struct setslot *v = calloc((size_t)nw * (size_t)(s->n + 1), sizeof *v);
    if (!v) return rc_fail_oom(s->rc);
    int ret = -1, nv = 0;
    for (int i = 0; i < nw; i++)
        v[i] = (struct setslot){ w[i].dst, w[i].slot, "NODE", s->nodes[w[i].dst].id, 0, w[i].failed, NULL, 0 };
    if (mover_setslots(m, v, nw) < 0) goto out;
    for (int i = 0; i < nw; i++) if (!w[i].failed && !v[i].ok) mover_fail_move(m, &w[i], v[i].err);
    setslots_free(v, nw);
    for (int i = 0; i < nw; i++) {
        if (w[i].failed) continue;
        for (int j = 0; j < s->n; j++)
            if (j == w[i].src || (j != w[i].dst && s->nodes[j].up && snode_is_master(&s->nodes[j])))
                v[nv++] = (struct setslot){ j, w[i].slot, "NODE", s->nodes[w[i].dst].id, 0, 0, NULL, 0 };
    }
    if (mover_setslots(m, v, nv) < 0) goto out;
    /* The target owns the slot now, with a newer epoch, and gossip tells the others. A
     * source that gave away its last slot may already be a replica, which refuses
     * SETSLOT or drops its clients: no failure; the settle wait after the moves catches
     * a slot that really stayed open. */
    for (int k = 0; k < nv && s->rc->verbose; k++)
        if (!v[k].ok) rc_warn(s->rc, "%s:%d: SETSLOT %d NODE: %s", s->nodes[v[k].node].ip, s->nodes[v[k].node].port, v[k].slot, v[k].err);
    for (int i = 0; i < nw; i++)
        if (!w[i].failed) { w[i].done = 1; m->slots_done++; }
    ret = 0;
out:
    setslots_free(v, nv > nw ? nv : nw);
    free(v);
    return ret;
}

/* A failed slot whose MIGRATEs reached no key to its target (say every RESTORE was
 * refused: a payload version the target cannot read) counts as untouched: nothing of it
 * moved, so it can be closed again. */
static void mover_untouch_empty(struct mover *m, struct move *w, int nw) {
    struct session *s = m->s;
    int asked = 0;
    for (int i = 0; i < nw; i++) {
        if (!w[i].failed || !w[i].touched) continue;
        char num[16];
        snprintf(num, sizeof num, "%d", w[i].slot);
        if (sess_queue(s, &s->nodes[w[i].dst], "CLUSTER", "COUNTKEYSINSLOT", num, RESP_END) < 0) return;
        asked++;
    }
    if (!asked || sess_flush_all(s) < 0) return;
    for (int i = 0; i < nw; i++) {
        if (!w[i].failed || !w[i].touched) continue;
        struct resp *r = sess_reply(s, &s->nodes[w[i].dst], 0);
        if (!r) return;
        if (r->type == RESP_INTEGER && r->integer == 0 && w[i].moved == 0) w[i].touched = 0;
        resp_free(r);
    }
}

/* A slot that failed before any key moved is closed again (SETSLOT STABLE on both
 * sides); one that moved keys stays open for `rcluster fix`, which finishes it. */
static void mover_undo_failed(struct mover *m, struct move *w, int nw) {
    struct setslot *v = calloc((size_t)nw * 2 + 1, sizeof *v);
    int nv = 0;
    if (!v) return;
    mover_untouch_empty(m, w, nw);
    for (int i = 0; i < nw; i++) {
        if (!w[i].failed || w[i].touched) continue;
        if (w[i].importing) v[nv++] = (struct setslot){ w[i].dst, w[i].slot, "STABLE", NULL, 0, 0, NULL, 0 };
        if (w[i].migrating) v[nv++] = (struct setslot){ w[i].src, w[i].slot, "STABLE", NULL, 0, 0, NULL, 0 };
    }
    if (nv) mover_setslots(m, v, nv);
    setslots_free(v, nv);
    free(v);
}

static int mover_window(struct mover *m, struct move *w, int nw) {
    int64_t t0 = rc_now_ms();
    int r = mover_open(m, w, nw);
    int64_t t1 = rc_now_ms();
    if (r == 0) r = mover_migrate(m, w, nw);
    int64_t t2 = rc_now_ms();
    if (r == 0) r = mover_close(m, w, nw);
    m->phase_ms[0] += t1 - t0;
    m->phase_ms[1] += t2 - t1;
    m->phase_ms[2] += rc_now_ms() - t2;
    for (int i = 0; i < nw; i++) { resp_free(w[i].keys); w[i].keys = NULL; }
    if (r == 0) mover_undo_failed(m, w, nw);
    return r;
}

/* The keys engine: windows of slots. SIGINT/SIGTERM are held while a window is in
 * flight, so an interrupt finishes the slots already started and leaves none open. */
static int keys_run(struct mover *m) {
    struct rc *rc = m->s->rc;
    const struct move_opts *o = m->o;
    sigset_t old;
    int ret = 0;
    m->lanes = mover_lane_budget(m->s->n);
    if (!(m->lane = calloc((size_t)m->s->n * MOVER_LANES, sizeof *m->lane))) return rc_fail_oom(rc);
    for (int k = 0; k < m->s->n * MOVER_LANES; k++) m->lane[k].fd = -1;
    for (int i = 0; i < m->n && ret == 0; ) {
        if (rc_interrupted()) { m->cancelled = 1; break; }
        int nw = m->n - i < o->window ? m->n - i : o->window;
        mover_hold_signals(&old);
        ret = mover_window(m, m->mv + i, nw);
        mover_release_signals(&old);
        i += nw;
        mover_progress(m, 0);
        if (ret == 0 && m->first_error) break;
    }
    for (int k = 0; k < m->s->n * MOVER_LANES; k++) rconn_free(&m->lane[k]);
    free(m->lane);
    m->lane = NULL;
    if (rc->verbose)
        rc_progress(rc, "time in SETSLOT IMPORTING/MIGRATING %lld ms, MIGRATE %lld ms, SETSLOT NODE %lld ms",
                    (long long)m->phase_ms[0], (long long)m->phase_ms[1], (long long)m->phase_ms[2]);
    return ret;
}

/* --dry-run: the commands each slot would cost, for the first slot of every run. */
static void keys_print_commands(FILE *out, struct session *s, const struct move *mv, int n, const struct move_opts *o) {
    for (int i = 0; i < n; i++) {
        if (i > 0 && mv[i].src == mv[i - 1].src && mv[i].dst == mv[i - 1].dst) continue;
        struct snode *a = &s->nodes[mv[i].src], *b = &s->nodes[mv[i].dst];
        fprintf(out, "slot %d (and the following slots of %s:%d -> %s:%d alike):\n", mv[i].slot, a->ip, a->port, b->ip, b->port);
        fprintf(out, "  %s:%d: CLUSTER SETSLOT %d IMPORTING %s\n", b->ip, b->port, mv[i].slot, a->id);
        fprintf(out, "  %s:%d: CLUSTER SETSLOT %d MIGRATING %s\n", a->ip, a->port, mv[i].slot, b->id);
        fprintf(out, "  %s:%d: CLUSTER GETKEYSINSLOT %d %d, then MIGRATE %s %d \"\" 0 %d%s%s KEYS ... until none is left\n", a->ip, a->port,
               mv[i].slot, o->batch, b->ip, b->port, o->timeout_ms, o->replace ? " REPLACE" : "", s->rc->password ? " AUTH <password>" : "");
        fprintf(out, "  %s:%d, then %s:%d and every other master: CLUSTER SETSLOT %d NODE %s\n", b->ip, b->port, a->ip, a->port, mv[i].slot, b->id);
    }
}

/* --- The atomic engines: the servers move slots and keys themselves --------------- */

/* A list of command words built at run time (slot ranges, ids). */
struct words { sds *v; int n, cap; };

static void words_free(struct words *w) {
    for (int i = 0; i < w->n; i++) sdsfree(w->v[i]);
    free(w->v);
    memset(w, 0, sizeof *w);
}

/* Append a word made with printf; -1 on OOM. */
__attribute__((format(printf, 2, 3)))
static int words_addf(struct words *w, const char *fmt, ...) {
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        sds *v = realloc(w->v, sizeof *v * (size_t)cap);
        if (!v) return -1;
        w->v = v;
        w->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    sds x = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    if (!x) return -1;
    w->v[w->n++] = x;
    return 0;
}

static int sess_queue_words(struct session *s, struct snode *x, const struct words *w) {
    const char **argv = malloc(sizeof *argv * (size_t)(w->n ? w->n : 1));
    if (!argv) return rc_fail_oom(s->rc);
    for (int i = 0; i < w->n; i++) argv[i] = w->v[i];
    int r = sess_queue_argv(s, x, w->n, argv);
    free(argv);
    return r;
}

/* One request of an atomic plan: the slots mv[first .. first+nmv) (sorted by source,
 * target, slot) from src to dst. */
struct ajob {
    int src, dst, first, nmv;
    int state;                 /* AJ_* */
    char id[64];               /* Valkey: the job's name; Redis: the task id */
    int64_t failing_since;     /* Redis: since when a retried 'failed' lasts */
    sds why;                   /* the server's words for a failure */
};
enum { AJ_PENDING, AJ_STARTING, AJ_RUNNING, AJ_DONE, AJ_FAILED };   /* STARTING: asked, reply owed */

static int move_cmp_pair(const void *a, const void *b) {
    const struct move *x = a, *y = b;
    if (x->src != y->src) return x->src - y->src;
    if (x->dst != y->dst) return x->dst - y->dst;
    return x->slot - y->slot;
}

/* Sort mv by source, target and slot, and make one job per source and target. */
static struct ajob *ajobs_make(struct move *mv, int n, int *njobs) {
    qsort(mv, (size_t)n, sizeof *mv, move_cmp_pair);
    struct ajob *j = calloc((size_t)n + 1, sizeof *j);
    *njobs = 0;
    for (int i = 0; j && i < n; i++) {
        if (i > 0 && mv[i].src == mv[i - 1].src && mv[i].dst == mv[i - 1].dst) { j[*njobs - 1].nmv++; continue; }
        j[*njobs] = (struct ajob){ mv[i].src, mv[i].dst, i, 1, AJ_PENDING, "", 0, NULL };
        (*njobs)++;
    }
    return j;
}

static void ajobs_free(struct ajob *j, int n) {
    for (int i = 0; j && i < n; i++) sdsfree(j[i].why);
    free(j);
}

/* The job's slots as ranges: "lo hi lo hi ..." words (sep NULL) or "lo-hi lo-hi" in one. */
static int ajob_ranges(const struct move *mv, const struct ajob *j, struct words *w) {
    const struct move *m = mv + j->first;
    for (int i = 0; i < j->nmv; ) {
        int k = i;
        while (k + 1 < j->nmv && m[k + 1].slot == m[k].slot + 1) k++;
        if (words_addf(w, "%d", m[i].slot) < 0 || words_addf(w, "%d", m[k].slot) < 0) return -1;
        i = k + 1;
    }
    return 0;
}

/* COUNTKEYSINSLOT of every slot on its source (one pipeline per node), for progress:
 * into mv[].count and m->keys_total. A count the node will not give stays unknown. */
static int mover_count_keys(struct mover *m) {
    struct session *s = m->s;
    int todo = 0;
    m->keys_total = 0;
    for (int i = 0; i < m->n; i++) { todo += !m->mv[i].counted; m->keys_total += m->mv[i].count; }
    if (!todo) return 0;
    for (int i = 0; i < m->n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", m->mv[i].slot);
        if (sess_queue(s, &s->nodes[m->mv[i].src], "CLUSTER", "COUNTKEYSINSLOT", num, RESP_END) < 0) return -1;
    }
    if (sess_flush_all(s) < 0) return -1;
    m->keys_total = 0;
    for (int i = 0; i < m->n; i++) {
        struct resp *r = mover_reply(m, m->mv[i].src, 0);
        if (!r) return -1;
        m->mv[i].count = r->type == RESP_INTEGER && r->integer > 0 ? r->integer : 0;
        m->keys_total += m->mv[i].count;
        resp_free(r);
    }
    return 0;
}

/* A job ended: its slots count as moved (ok) or failed with the server's words. */
static void ajob_finish(struct mover *m, struct ajob *j, int ok, const char *why) {
    j->state = ok ? AJ_DONE : AJ_FAILED;
    for (int i = j->first; i < j->first + j->nmv; i++) {
        struct move *mv = &m->mv[i];
        if (ok) { mv->done = 1; m->slots_done++; mv->moved = mv->count; m->keys_moved += mv->count; }
        else mover_fail_move(m, mv, why && *why ? why : "the server gave no reason");
    }
    if (!ok && !j->why) j->why = sdsnew(why ? why : "");
}

/* The value of field key in a map reply — RESP2 sends it flat (name, value, ...) —
 * as a string (integers printed into buf), or NULL. */
static const char *resp_map_str(const struct resp *map, const char *key, char *buf, size_t len) {
    if (!map || map->type != RESP_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct resp *k = map->elem[i], *v = map->elem[i + 1];
        if (!k->str || strcasecmp(k->str, key) != 0) continue;
        if (v->type == RESP_INTEGER) { snprintf(buf, len, "%lld", v->integer); return buf; }
        return v->str;
    }
    return NULL;
}

static int ajobs_running(const struct ajob *j, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) c += j[i].state == AJ_RUNNING;
    return c;
}

/* Status polls start quick (a small move ends in milliseconds) and back off to
 * ATOMIC_POLL_MAX_MS (Valkey lists up to 1000 jobs per answer). */
#define ATOMIC_POLL_MIN_MS 2
#define ATOMIC_POLL_MAX_MS 20
static int atomic_next_pause(int ms) { return ms * 2 < ATOMIC_POLL_MAX_MS ? ms * 2 : ATOMIC_POLL_MAX_MS; }

/* How long an atomic move may go on without finishing: generous, for big slots. */
static int64_t atomic_deadline(const struct rc *rc) {
    return rc_now_ms() + (int64_t)(rc->timeout > 600 ? rc->timeout : 600) * 1000;
}

/* After a cancel the other side ends its half a moment later: wait (10 s at most)
 * until no node lists a migration in flight, so that a check right after sees none. */
static void atomic_wait_quiet(struct mover *m) {
    int64_t until = rc_now_ms() + 10000;
    for (;;) {
        sess_read_migrations(m->s);
        if (!sess_migrations(m->s) || rc_now_ms() > until) return;
        rc_sleep_ms(50);
    }
}

/* Valkey: ask a source for its jobs (CLUSTER GETSLOTMIGRATIONS, newest first). A
 * connection that dropped is opened again once (a source that gave away its last
 * slot drops its clients as it turns replica). */
static struct resp *valkey_jobs(struct mover *m, int src) {
    struct session *s = m->s;
    struct snode *x = &s->nodes[src];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt > 0 && sess_reconnect(s, x) < 0) break;
        if (!x->up || sess_queue(s, x, "CLUSTER", "GETSLOTMIGRATIONS", RESP_END) < 0 || sess_flush_all(s) < 0) continue;
        struct resp *r = sess_reply(s, x, 0);
        if (r) return r;
    }
    rc_wrap(s->rc, "CLUSTER GETSLOTMIGRATIONS");
    return NULL;
}

/* The names of the jobs a source lists now: the ones this run starts are the others. */
static int valkey_old_jobs(struct mover *m, int src, struct words *names) {
    struct resp *r = valkey_jobs(m, src);
    if (!r) return -1;
    char buf[32];
    int ret = 0;
    for (size_t i = 0; r->type == RESP_ARRAY && i < r->n && ret == 0; i++) {
        const char *name = resp_map_str(r->elem[i], "name", buf, sizeof buf);
        if (name && words_addf(names, "%s", name) < 0) ret = rc_fail_oom(m->s->rc);
    }
    resp_free(r);
    return ret;
}

static int words_has(const struct words *w, const char *x) {
    for (int i = 0; i < w->n; i++) if (strcmp(w->v[i], x) == 0) return 1;
    return 0;
}

/* One CLUSTER MIGRATESLOTS per source, with every target of its jobs; all at once. */
static int valkey_start(struct mover *m, struct ajob *j, int nj) {
    struct session *s = m->s;
    for (int i = 0; i < nj; ) {
        struct words w = { 0 };
        int ok = words_addf(&w, "CLUSTER") == 0 && words_addf(&w, "MIGRATESLOTS") == 0, k = i;
        for (; ok && k < nj && j[k].src == j[i].src; k++)
            ok = words_addf(&w, "SLOTSRANGE") == 0 && ajob_ranges(m->mv, &j[k], &w) == 0 &&
                 words_addf(&w, "NODE") == 0 && words_addf(&w, "%s", s->nodes[j[k].dst].id) == 0;
        int r = ok ? sess_queue_words(s, &s->nodes[j[i].src], &w) : rc_fail_oom(s->rc);
        words_free(&w);
        if (r < 0) return -1;
        i = k;
    }
    if (sess_flush_all(s) < 0) return -1;
    for (int i = 0; i < nj; ) {
        int k = i;
        while (k < nj && j[k].src == j[i].src) k++;
        struct resp *r = mover_reply(m, j[i].src, 0);
        if (!r) return -1;
        for (int q = i; q < k; q++) {
            if (r->type == RESP_ERROR) ajob_finish(m, &j[q], 0, r->str);
            else j[q].state = AJ_RUNNING;
        }
        resp_free(r);
        i = k;
    }
    return 0;
}

/* Read a source's job list and finish the jobs of this run that ended. */
static int valkey_poll_source(struct mover *m, struct ajob *j, int nj, int src, const struct words *old) {
    struct resp *r = valkey_jobs(m, src);
    if (!r) return -1;
    char b1[32], b2[32], b3[32], b4[32];
    for (size_t e = 0; r->type == RESP_ARRAY && e < r->n; e++) {
        const struct resp *job = r->elem[e];
        const char *name = resp_map_str(job, "name", b1, sizeof b1), *op = resp_map_str(job, "operation", b2, sizeof b2);
        const char *target = resp_map_str(job, "target_node", b3, sizeof b3), *state = resp_map_str(job, "state", b4, sizeof b4);
        if (!name || !op || !target || !state || strcasecmp(op, "EXPORT") != 0 || words_has(old, name)) continue;
        for (int i = 0; i < nj; i++) {
            struct ajob *a = &j[i];
            if (a->src != src || a->state != AJ_RUNNING || strcmp(m->s->nodes[a->dst].id, target) != 0) continue;
            if (!a->id[0]) snprintf(a->id, sizeof a->id, "%s", name);
            if (strcmp(a->id, name) != 0) continue;
            if (!strcmp(state, "success")) ajob_finish(m, a, 1, NULL);
            else if (!strcmp(state, "failed") || !strcmp(state, "cancelled")) {
                char msg[32];
                const char *why = resp_map_str(job, "message", msg, sizeof msg);
                sds text = rc_sprintf("%s%s%s", state, why && *why ? ": " : "", why ? why : "");
                ajob_finish(m, a, 0, text ? text : state);
                sdsfree(text);
            }
        }
    }
    resp_free(r);
    return 0;
}

/* Ctrl-C: CLUSTER CANCELSLOTMIGRATIONS on every source with a job in flight. */
static void valkey_cancel(struct mover *m, struct ajob *j, int nj) {
    struct session *s = m->s;
    for (int i = 0; i < nj; i++)
        if (j[i].state == AJ_RUNNING && (i == 0 || j[i - 1].src != j[i].src))
            sess_queue(s, &s->nodes[j[i].src], "CLUSTER", "CANCELSLOTMIGRATIONS", RESP_END);
    sess_drain_all(s, "CLUSTER CANCELSLOTMIGRATIONS");
}

/* Valkey >= 9.0: every source exports to all its targets at once (each source forks
 * one snapshot at a time, different sources in parallel); poll until all ended. */
static int valkey_atomic_run(struct mover *m) {
    struct session *s = m->s;
    int nj = 0, ret = -1;
    struct ajob *j = ajobs_make(m->mv, m->n, &nj);
    struct words *old = calloc((size_t)s->n, sizeof *old);
    if (!j || !old) { rc_fail_oom(s->rc); goto out; }
    sigset_t mask;
    mover_hold_signals(&mask);
    int r = mover_count_keys(m);
    for (int i = 0; r == 0 && i < nj; i++)
        if (i == 0 || j[i - 1].src != j[i].src) r = valkey_old_jobs(m, j[i].src, &old[j[i].src]);
    if (r == 0) r = valkey_start(m, j, nj);
    mover_release_signals(&mask);
    if (r < 0) goto out;
    int64_t deadline = atomic_deadline(s->rc);
    int pause = ATOMIC_POLL_MIN_MS;
    while (ajobs_running(j, nj)) {
        if (rc_interrupted() && !m->cancelled) {
            mover_hold_signals(&mask);
            valkey_cancel(m, j, nj);
            mover_release_signals(&mask);
            m->cancelled = 1;
            deadline = rc_now_ms() + 10000;
        }
        if (rc_now_ms() > deadline) {
            for (int i = 0; i < nj; i++) if (j[i].state == AJ_RUNNING) ajob_finish(m, &j[i], 0, "did not finish in time (CLUSTER GETSLOTMIGRATIONS shows it)");
            break;
        }
        rc_sleep_ms(pause);
        pause = atomic_next_pause(pause);
        mover_hold_signals(&mask);
        for (int i = 0; r == 0 && i < nj; i++)
            if (j[i].state == AJ_RUNNING && (i == 0 || j[i - 1].src != j[i].src || j[i - 1].state != AJ_RUNNING))
                r = valkey_poll_source(m, j, nj, j[i].src, &old[j[i].src]);
        mover_release_signals(&mask);
        if (r < 0) goto out;
        mover_progress(m, 0);
    }
    if (m->cancelled) atomic_wait_quiet(m);
    ret = 0;
out:
    for (int i = 0; old && i < s->n; i++) words_free(&old[i]);
    free(old);
    ajobs_free(j, nj);
    return ret;
}

/* Print a job's slot ranges as " lo hi lo hi ...". */
static void ajob_print_ranges(FILE *out, const struct move *mv, const struct ajob *j) {
    struct words w = { 0 };
    if (ajob_ranges(mv, j, &w) == 0) for (int k = 0; k < w.n; k++) fprintf(out, " %s", w.v[k]);
    words_free(&w);
}

/* --dry-run of an atomic plan: its jobs (grouped on a copy of mv, which ajobs_make
 * sorts), each printed by print_job, then the line then. */
static void atomic_print_plan(FILE *out, struct session *s, const struct move *mv, int n, const char *then,
                              void (*print_job)(FILE *out, struct session *s, const struct move *mv, const struct ajob *j, int nj, int i)) {
    struct move *copy = malloc(sizeof *copy * (size_t)(n ? n : 1));
    int nj = 0;
    struct ajob *j = copy ? ajobs_make(memcpy(copy, mv, sizeof *copy * (size_t)n), n, &nj) : NULL;
    for (int i = 0; j && i < nj; i++) print_job(out, s, copy, j, nj, i);
    if (j) fprintf(out, "%s\n", then);
    ajobs_free(j, nj);
    free(copy);
}

/* Valkey: one MIGRATESLOTS line per source, with every target of its jobs. */
static void valkey_print_job(FILE *out, struct session *s, const struct move *mv, const struct ajob *j, int nj, int i) {
    if (i == 0 || j[i - 1].src != j[i].src) fprintf(out, "%s:%d: CLUSTER MIGRATESLOTS", s->nodes[j[i].src].ip, s->nodes[j[i].src].port);
    fprintf(out, " SLOTSRANGE");
    ajob_print_ranges(out, mv, &j[i]);
    fprintf(out, " NODE %s", s->nodes[j[i].dst].id);
    if (i + 1 == nj || j[i + 1].src != j[i].src) fprintf(out, "\n");
}

static void valkey_print_commands(FILE *out, struct session *s, const struct move *mv, int n, const struct move_opts *o) {
    (void)o;
    atomic_print_plan(out, s, mv, n, "then CLUSTER GETSLOTMIGRATIONS on each source until its jobs end", valkey_print_job);
}

/* Redis: CLUSTER MIGRATION IMPORT of a job's ranges on its destination. */
static int redis_queue_import(struct mover *m, const struct ajob *j) {
    struct words w = { 0 };
    int ok = words_addf(&w, "CLUSTER") == 0 && words_addf(&w, "MIGRATION") == 0 && words_addf(&w, "IMPORT") == 0 &&
             ajob_ranges(m->mv, j, &w) == 0;
    int r = ok ? sess_queue_words(m->s, &m->s->nodes[j->dst], &w) : rc_fail_oom(m->s->rc);
    words_free(&w);
    return r;
}

/* Start every pending job whose source and destination are idle (one task per node,
 * import or export); busy[] marks the nodes in a task. */
static int redis_start(struct mover *m, struct ajob *j, int nj, unsigned char *busy) {
    struct session *s = m->s;
    int started = 0;
    for (int i = 0; i < nj; i++) {
        if (j[i].state != AJ_PENDING || busy[j[i].src] || busy[j[i].dst]) continue;
        if (redis_queue_import(m, &j[i]) < 0) return -1;
        busy[j[i].src] = busy[j[i].dst] = 1;
        j[i].state = AJ_STARTING;
        started++;
    }
    if (!started) return 0;
    if (sess_flush_all(s) < 0) return -1;
    for (int i = 0; i < nj; i++) {
        if (j[i].state != AJ_STARTING) continue;
        struct resp *r = mover_reply(m, j[i].dst, 0);
        if (!r) return -1;
        if (r->type == RESP_ERROR || !r->str) {
            ajob_finish(m, &j[i], 0, r->str ? r->str : "CLUSTER MIGRATION IMPORT: unexpected reply");
            busy[j[i].src] = busy[j[i].dst] = 0;
        } else {
            snprintf(j[i].id, sizeof j[i].id, "%s", r->str);
            j[i].state = AJ_RUNNING;
            busy[j[i].src] = busy[j[i].dst] = 1;
        }
        resp_free(r);
    }
    return 0;
}

/* Ask each running task's destination for its state; a 'failed' is retried by the
 * server, so it only fails once it lasted past the deadline (then it is cancelled). */
static int redis_poll(struct mover *m, struct ajob *j, int nj, unsigned char *busy) {
    struct session *s = m->s;
    for (int i = 0; i < nj; i++)
        if (j[i].state == AJ_RUNNING && sess_queue(s, &s->nodes[j[i].dst], "CLUSTER", "MIGRATION", "STATUS", "ID", j[i].id, RESP_END) < 0) return -1;
    if (sess_flush_all(s) < 0) return -1;
    for (int i = 0; i < nj; i++) {
        if (j[i].state != AJ_RUNNING) continue;
        struct resp *r = mover_reply(m, j[i].dst, 0);
        if (!r) return -1;
        const struct resp *map = r->type == RESP_ARRAY && r->n > 0 && r->elem[0]->type == RESP_ARRAY ? r->elem[0] : r;
        char b1[32], b2[256];
        const char *state = resp_map_str(map, "state", b1, sizeof b1), *err = resp_map_str(map, "last_error", b2, sizeof b2);
        int64_t now = rc_now_ms();
        if (r->type == RESP_ERROR) ajob_finish(m, &j[i], 0, r->str);
        else if (state && !strcmp(state, "completed")) ajob_finish(m, &j[i], 1, NULL);
        else if (state && !strcmp(state, "canceled")) ajob_finish(m, &j[i], 0, err && *err ? err : "canceled");
        else if (state && !strcmp(state, "failed")) {
            if (!j[i].failing_since) j[i].failing_since = now;
            if (now - j[i].failing_since > (int64_t)(s->rc->timeout * 1000)) {
                sess_queue(s, &s->nodes[j[i].dst], "CLUSTER", "MIGRATION", "CANCEL", "ID", j[i].id, RESP_END);
                sess_drain(s, &s->nodes[j[i].dst], "CLUSTER MIGRATION CANCEL");
                ajob_finish(m, &j[i], 0, err && *err ? err : "failed, and kept failing");
            }
        } else j[i].failing_since = 0;
        if (j[i].state != AJ_RUNNING) busy[j[i].src] = busy[j[i].dst] = 0;
        resp_free(r);
    }
    return 0;
}

/* Ctrl-C: CLUSTER MIGRATION CANCEL on the destination of every task in flight. */
static void redis_cancel(struct mover *m, struct ajob *j, int nj) {
    for (int i = 0; i < nj; i++)
        if (j[i].state == AJ_RUNNING)
            sess_queue(m->s, &m->s->nodes[j[i].dst], "CLUSTER", "MIGRATION", "CANCEL", "ID", j[i].id, RESP_END);
    sess_drain_all(m->s, "CLUSTER MIGRATION CANCEL");
}

/* Redis >= 8.4: one task per node at a time, so tasks whose nodes are all different
 * run together, and the next starts as soon as its two nodes are free. */
static int redis_atomic_run(struct mover *m) {
    struct session *s = m->s;
    int nj = 0, ret = -1;
    struct ajob *j = ajobs_make(m->mv, m->n, &nj);
    unsigned char *busy = calloc((size_t)s->n, 1);
    if (!j || !busy) { rc_fail_oom(s->rc); goto out; }
    sigset_t mask;
    mover_hold_signals(&mask);
    int r = mover_count_keys(m);
    mover_release_signals(&mask);
    if (r < 0) goto out;
    int64_t deadline = atomic_deadline(s->rc);
    int pause = ATOMIC_POLL_MIN_MS;
    for (;;) {
        mover_hold_signals(&mask);
        if (rc_interrupted() && !m->cancelled) { redis_cancel(m, j, nj); m->cancelled = 1; deadline = rc_now_ms() + 10000; }
        if (!m->cancelled && !m->first_error) r = redis_start(m, j, nj, busy);
        mover_release_signals(&mask);
        if (r < 0) goto out;
        if (!ajobs_running(j, nj)) break;
        if (rc_now_ms() > deadline) {
            redis_cancel(m, j, nj);
            for (int i = 0; i < nj; i++) if (j[i].state == AJ_RUNNING) ajob_finish(m, &j[i], 0, "did not finish in time (CLUSTER MIGRATION STATUS shows it)");
            break;
        }
        rc_sleep_ms(pause);
        pause = atomic_next_pause(pause);
        mover_hold_signals(&mask);
        r = redis_poll(m, j, nj, busy);
        mover_release_signals(&mask);
        if (r < 0) goto out;
        mover_progress(m, 0);
    }
    if (m->cancelled) atomic_wait_quiet(m);
    ret = 0;
out:
    free(busy);
    ajobs_free(j, nj);
    return ret;
}

/* Redis: one MIGRATION IMPORT line per job, on its destination. */
static void redis_print_job(FILE *out, struct session *s, const struct move *mv, const struct ajob *j, int nj, int i) {
    (void)nj;
    fprintf(out, "%s:%d: CLUSTER MIGRATION IMPORT", s->nodes[j[i].dst].ip, s->nodes[j[i].dst].port);
    ajob_print_ranges(out, mv, &j[i]);
    fprintf(out, "   (from %s:%d)\n", s->nodes[j[i].src].ip, s->nodes[j[i].src].port);
}

static void redis_print_commands(FILE *out, struct session *s, const struct move *mv, int n, const struct move_opts *o) {
    (void)o;
    atomic_print_plan(out, s, mv, n, "one task per node at a time; then CLUSTER MIGRATION STATUS ID <id> on each destination until it completes",
                      redis_print_job);
}

/* --dry-run of a move: the engine's commands, printed, or as plan lines for --json. */
static void mover_print_plan(struct session *s, const struct move_engine *eng, const struct move *mv, int n, const struct move_opts *o) {
    if (!s->rc->json) { eng->print_commands(stdout, s, mv, n, o); return; }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    eng->print_commands(f, s, mv, n, o);
    fclose(f);
    for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        if ((nl = strchr(line, '\n'))) *nl = 0;
        rc_plan_line(s->rc, NULL, line);
    }
    free(buf);
}

/* --- Picking an engine, and running it --------------------------------------------- */

enum { MOVE_ENGINE_KEYS, MOVE_ENGINE_VALKEY, MOVE_ENGINE_REDIS };
static const struct move_engine move_engines[] = {
    { "keys", "SETSLOT IMPORTING/MIGRATING, MIGRATE ... KEYS, SETSLOT NODE", keys_run, keys_print_commands },
    { "atomic", "CLUSTER MIGRATESLOTS on each source", valkey_atomic_run, valkey_print_commands },
    { "atomic", "CLUSTER MIGRATION IMPORT on each destination", redis_atomic_run, redis_print_commands },
};

/* The engine that moves mv: atomic where every node involved offers the same atomic
 * migration and has no slot open, keys elsewhere (or as --migration says). why says
 * which and why. NULL with a usage error when --migration atomic cannot be had. */
static const struct move_engine *mover_pick(struct session *s, const struct move *mv, int n, const struct move_opts *o,
                                            char *why, size_t whylen) {
    int common = SRV_ATOMIC_VALKEY | SRV_ATOMIC_REDIS;
    const struct snode *lacks = NULL, *open = NULL;
    for (int i = 0; i < n; i++) {
        const struct snode *pair[2] = { &s->nodes[mv[i].src], &s->nodes[mv[i].dst] };
        for (int k = 0; k < 2; k++) {
            int had = common;
            common &= pair[k]->caps;
            if (had && !common && !lacks) lacks = pair[k];
            if (!open && pair[k]->me && pair[k]->me->open_slots > 0) open = pair[k];
        }
    }
    if (o->migration == MIGRATION_KEYS) {
        snprintf(why, whylen, "--migration keys");
        return &move_engines[MOVE_ENGINE_KEYS];
    }
    const char *no = NULL;
    char buf[256];
    if (lacks) { snprintf(buf, sizeof buf, "%s:%d runs %s, which has no atomic slot migration", lacks->ip, lacks->port, lacks->server); no = buf; }
    else if (open) { snprintf(buf, sizeof buf, "%s:%d has a slot open from a key-by-key move", open->ip, open->port); no = buf; }
    else if (o->replace) no = "--replace overwrites keys the target holds, which only MIGRATE ... REPLACE does";
    else if (n == 0) no = "nothing to move";
    if (no && o->migration == MIGRATION_ATOMIC) {
        rc_fail_as(s->rc, RC_ERR_USAGE, "--migration atomic: %s; nothing changed", no);
        return NULL;
    }
    if (no) { snprintf(why, whylen, "%s", no); return &move_engines[MOVE_ENGINE_KEYS]; }
    int valkey = common & SRV_ATOMIC_VALKEY;
    snprintf(why, whylen, "every node involved runs %s", valkey ? "Valkey >= 9.0" : "Redis >= 8.4");
    return &move_engines[valkey ? MOVE_ENGINE_VALKEY : MOVE_ENGINE_REDIS];
}

/* Key by key, every key goes through MIGRATE: a source whose DUMP payloads the target
 * cannot read (a newer server's) would fail on the first key of each slot. Refused before
 * anything changes; slots known to hold no key pass. */
static int mover_check_payloads(struct session *s, const struct move *mv, int n) {
    for (int i = 0; i < n; i++) {
        const struct snode *a = &s->nodes[mv[i].src], *b = &s->nodes[mv[i].dst];
        if ((mv[i].counted && mv[i].count == 0) || payload_readable(a->payload_w, b->payload_r, (b->caps & SRV_ATOMIC_VALKEY) != 0)) continue;
        return rc_fail(s->rc, "%s:%d runs %s, whose keys (DUMP payload version %d) %s:%d (%s, reads up to %d) cannot take: MIGRATE "
                       "would refuse every key of slot %d; nothing changed", a->ip, a->port, a->server, a->payload_w, b->ip, b->port,
                       b->server, b->payload_r, mv[i].slot);
    }
    return 0;
}

/* mover_pick, said as a plan line ("Engine: atomic (...): why"). */
static const struct move_engine *mover_choose(struct session *s, const struct move *mv, int n, const struct move_opts *o) {
    char why[300];
    const struct move_engine *eng = mover_pick(s, mv, n, o, why, sizeof why);
    if (eng == &move_engines[MOVE_ENGINE_KEYS] && mover_check_payloads(s, mv, n) < 0) return NULL;
    if (eng && n > 0) rc_progress(s->rc, "Engine: %s (%s): %s", eng->name, eng->how, why);
    return eng;
}

/* Move every slot in mv with eng. An interrupt ends the run early: the keys engine
 * finishes the window in flight, the atomic ones cancel what is in flight; either way
 * no slot is left open, and the error says how many moved. Moving keys is work, not
 * waiting: the session's deadline (for its waits) moves on by the time it took. */
static int mover_run(struct session *s, struct move *mv, int n, const struct move_opts *o, const struct move_engine *eng,
                     long long *keys_moved, int *slots_done) {
    struct rc *rc = s->rc;
    int64_t now = rc_now_ms();
    struct mover m = { .s = s, .o = o, .eng = eng, .mv = mv, .n = n, .keys_total = -1, .t0 = now, .last_report = now,
                       .tty = isatty(STDERR_FILENO) };
    int ret = eng->run(&m);
    mover_progress(&m, 1);
    const int keys = eng == &move_engines[MOVE_ENGINE_KEYS];
    if (ret < 0) rc_wrap(rc, "after %d of %d slots moved%s", m.slots_done, n, keys ? " (a slot left open is closed by `rcluster fix`)" : "");
    else if (m.cancelled) ret = rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted: moved %d of %d slots, %lld keys; %s; the other %d slot(s) stay where they were",
                                           m.slots_done, n, m.keys_moved, keys ? "no slot was left open" : "the migrations in flight were cancelled", n - m.slots_done);
    else if (m.first_error) ret = rc_fail(rc, "%s (moved %d of %d slots%s)", m.first_error, m.slots_done, n, keys ? "; a slot left open is closed by `rcluster fix`" : "");
    sdsfree(m.first_error);
    *keys_moved = m.keys_moved;
    *slots_done = m.slots_done;
    s->deadline.at_ms += rc_now_ms() - now;
    return ret;
}

/* ====================================================================== */
/* 7a. Formation (create on the session) and check                        */
/* ====================================================================== */

/* create forms a cluster from empty nodes with a session over their addresses: the
 * session holds the connections, the owed replies and each node's view; a judge reads
 * one node's view and says what it still lacks; the wait loop polls, judges and acts
 * (MEET, REPLICATE, a nudge of the replication offset). The policy — formation
 * settings and their levels, backing off on strain, MEET waves — is kept apart here. */

/* While forming, Redis' own delays dominate: a master keeps cluster_state:fail for its
 * rejoin delay, min(max(cluster-node-timeout, 500 ms), 5 s), and a master delays a
 * diskless full sync by repl-diskless-sync-delay. We lower both on the still-empty
 * nodes and put the original values back on every exit path. */
/* Formation adapts to what the hosts can take. It starts with the fastest settings
 * (level 0: pings every 250 ms, hz 100, MEET waves) unless the nodes all run on this
 * host and it has too few cores for them: then it starts, and stays, at a level whose
 * steady gossip the cores can carry (a formed mesh pings each pair every
 * cluster-node-timeout/2: n² pings; measured here, 100 idle nodes at 5000 ms keep 1.5 of
 * 2 cores busy, and hz 100 alone another 1.4). When the nodes show strain — a node sees
 * a peer as possibly failed, or a poll round takes too long — it backs off a level: a
 * longer cluster-node-timeout and the original hz, then no more MEET waves, then the
 * quiet level; after ENGINE_CALM_MS without strain it speeds up a level again, but not
 * back to a level that showed strain twice. At the slow levels the nodes ping each
 * other too rarely to spread news soon (a node learns a peer's slots, role and
 * replication offset only from that peer's own messages), so a node whose news is stale
 * gets a moment of short cluster-node-timeout: it pings its peers at once, and their
 * answers carry their state (engine_queue_refresh). A NULL value at a level
 * means the node's original value. Replicas never fail over while forming
 * (cluster-replica-no-failover yes), whatever the level, so strain costs time, never
 * the layout. */
#define ENGINE_LEVELS 4
static const struct { const char *name, *value[ENGINE_LEVELS]; int replicas_only; } engine_tunables[] = {
    { "cluster-node-timeout", { "500", "2000", "5000", "15000" }, 0 },
    { "repl-diskless-sync-delay", { "0", "0", "0", "0" }, 0 },
    { "hz", { "100", NULL, NULL, NULL }, 0 },
    { "repl-diskless-sync", { "no", "no", "no", "no" }, 0 },
    { "cluster-replica-no-failover", { "yes", "yes", "yes", "yes" }, 1 },
};
#define ENGINE_TUNABLES ((int)(sizeof engine_tunables / sizeof engine_tunables[0]))
#define ENGINE_WAVE_LEVELS       2      /* MEET waves go out below this level only */
#define ENGINE_FAST_PER_CORE     16     /* nodes per core the fastest level suits */
#define ENGINE_CALM_PER_CORE     32     /* above this many per core: the quiet level */
#define ENGINE_TIMEOUT_TUNABLE   0      /* engine_tunables index of cluster-node-timeout */
#define ENGINE_REFRESH_TIMEOUT   "2000" /* a refreshing node pings every peer silent for half of it */
#define ENGINE_REFRESH_HOLD_MS   250    /* ... for at least this long: two cluster crons */
#define ENGINE_REFRESH_MS        2000   /* between refreshes of one node */
#define ENGINE_REFRESH_ROUND_MS  1000   /* no refresh after a poll round this slow (busy nodes) */
#define ENGINE_SMALL_CLUSTER     24     /* one MEET wave; polled without extra pause */
#define ENGINE_WAVE              24     /* nodes that MEET every other node per wave */
#define ENGINE_WAVE_MS           100    /* between MEET waves, when not strained */
#define ENGINE_STRAIN_ROUND_MS   400    /* a poll round slower than this + 4 ms a node is strain */
#define ENGINE_CALM_MS           3000   /* no strain for this long: speed up a level */
#define ENGINE_SETTLE_MS         1000   /* after a level change, strain it left is not new */
#define ENGINE_POLL_MS           20
#define ENGINE_REMEET_MS         400
#define ENGINE_DOWN_GRACE_MS     1500

/* Whether ms is a cluster-node-timeout that formation sets (a level's, or a refresh's). */
static int form_is_formation_timeout(long ms) {
    char v[24];
    snprintf(v, sizeof v, "%ld", ms);
    for (int l = 0; l < ENGINE_LEVELS; l++)
        if (!strcmp(v, engine_tunables[ENGINE_TIMEOUT_TUNABLE].value[l])) return 1;
    return !strcmp(v, ENGINE_REFRESH_TIMEOUT);
}

struct engine_addr { sds host; int port; };

/* Formation state of one node; its connection and view are the session's node with
 * the same index. */
struct enode {
    int master_of;          /* -1 for a master, else index of its master */
    int slot_lo, slot_hi;   /* masters only */
    sds orig[8];            /* engine_tunables values to restore; NULL = not changed */
    const char *tuned[8];   /* the values set while forming */
    int sees_failing;       /* its last view flags a planned peer PFAIL/FAIL (strain) */
    int changed;            /* apply has modified this node */
    int replicated;         /* CLUSTER REPLICATE sent (and not refused) */
    int replicate_owed;     /* its reply is still to be read */
    int64_t last_nudge;     /* masters: last replication nudge (see engine_nudge_master) */
    int acks;               /* replies to discard (MEET, CONFIG SET, SET/DEL) queued before a REPLICATE */
    int acks_after;         /* the same, queued after the REPLICATE whose reply is owed */
    int healthy;
    int64_t last_meet, down_since;
    int64_t last_refresh;   /* its last refresh (engine_queue_refresh) */
    int64_t refresh_until;  /* while refreshing: when its level's timeout goes back */
    sds why;                /* what this node still lacks, for the diagnosis */
    sds slots;              /* its latest CLUSTER SLOTS answer, engine_slots_compact()'s form */
};

struct engine {
    struct rc *rc;
    const struct addr *addrs; /* the nodes as the user gave them (borrowed) */
    struct session s;       /* connections, owed replies and views, one per node */
    struct enode *nodes;
    int n, replicas, m;
    int *masters;           /* master indexes in slot order */
    sds plan_sig;           /* expected slot map signature */
    int host_cores;         /* cores of the one host all nodes run on, 0 when not known */
    sds abandon_note;       /* what a second Ctrl-C leaves behind (see rc_on_signal) */
    int level;              /* formation speed level (see engine_tunables) */
    int floor;              /* lowest level it may speed up to again */
    int strained[ENGINE_LEVELS];  /* how often each level showed strain */
    int meet_next;          /* first node whose MEET wave is still to be sent */
    int64_t last_wave, last_strain, level_since;
    int64_t last_round_ms;  /* how long the latest poll round took */
};

static void engine_free(struct engine *e) {
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        for (int k = 0; k < ENGINE_TUNABLES; k++) sdsfree(x->orig[k]);
        sdsfree(x->why);
        sdsfree(x->slots);
    }
    free(e->nodes);
    free(e->masters);
    sess_free(&e->s);
    sdsfree(e->plan_sig);
    rc_set_abandon_note(NULL);
    sdsfree(e->abandon_note);
    memset(e, 0, sizeof *e);
}

static struct snode *engine_snode(struct engine *e, const struct enode *x) { return &e->s.nodes[x - e->nodes]; }

/* "host:port" of node i as we reach it, for messages. */
static const char *engine_name(const struct engine *e, int i) {
    const struct snode *x = &e->s.nodes[i];
    return x->c.name ? x->c.name : e->addrs[i].host;
}

/* Reconnect (dropping replies still owed to us) so a node can be asked again. */
static int engine_reconnect(struct engine *e, struct enode *x) {
    x->acks = x->acks_after = 0;
    if (x->replicate_owed) x->replicated = 0; /* unknown outcome: it is safe to repeat */
    x->replicate_owed = 0;
    return sess_reconnect(&e->s, engine_snode(e, x));
}

/* Replies to discard are read in the order they were queued: before or after the one
 * REPLICATE whose reply is read for its meaning. */
static void engine_owe_acks(struct enode *x, int n) {
    if (x->replicate_owed) x->acks_after += n;
    else x->acks += n;
}

static sds engine_plan_signature(struct engine *e) {
    int owner[CLUSTER_SLOTS];
    const char **ids = malloc(((size_t)e->n + 1) * sizeof *ids);
    if (!ids) return NULL;
    for (int s = 0; s < CLUSTER_SLOTS; s++) owner[s] = -1;
    for (int i = 0; i < e->n; i++) ids[i] = e->s.nodes[i].id;
    for (int k = 0; k < e->m; k++) {
        struct enode *x = &e->nodes[e->masters[k]];
        for (int s = x->slot_lo; s <= x->slot_hi; s++) owner[s] = e->masters[k];
    }
    sds sig = slotmap_signature(owner, ids);
    free(ids);
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

/* CONFIG GET of every tunable, queued before the session's own questions. */
static int engine_queue_tunables(struct engine *e, int i) {
    for (int k = 0; k < ENGINE_TUNABLES; k++)
        if (sess_queue(&e->s, &e->s.nodes[i], "CONFIG", "GET", engine_tunables[k].name, RESP_END) < 0) return -1;
    return 0;
}

/* The tunables' values; one a node will not tell (CONFIG renamed away) stays NULL and
 * is never changed there. */
static int engine_read_tunables(struct engine *e, int i) {
    for (int k = 0; k < ENGINE_TUNABLES; k++) {
        struct resp *r = sess_reply(&e->s, &e->s.nodes[i], 0);
        if (!r) return -1;
        const char *v = resp_config_value(r);
        e->nodes[i].orig[k] = v ? sdsnew(v) : NULL;
        resp_free(r);
    }
    return 0;
}

/* A node started with cluster-announce-ip shows that address in its own line; MEET
 * must use it, because inside Docker the published address means nothing. */
static void engine_take_announced(struct snode *x) {
    memcpy(x->id, x->me->id, sizeof x->id);
    if (!x->me->ip[0] || !x->me->port) return;
    snprintf(x->ip, sizeof x->ip, "%s", x->me->ip);
    x->port = x->me->port;
    x->bus = x->me->bus ? x->me->bus : x->me->port + CLUSTER_BUS_OFFSET;
}

/* Every node answers the session's questions and its tunables in one round trip; the
 * judge then says whether they can form a new cluster at all. */
static int engine_preflight(struct engine *e) {
    struct session *s = &e->s;
    if (sess_open_addrs(e->rc, s, e->addrs, e->n) < 0) return -1;
    for (int i = 0; i < e->n; i++)
        if (engine_queue_tunables(e, i) < 0 || sess_probe_queue(s, &s->nodes[i]) < 0) return -1;
    for (int i = 0; i < e->n; i++)
        if (engine_read_tunables(e, i) < 0 || sess_probe_read(s, &s->nodes[i]) < 0) return -1;
    struct findings f = { 0 };
    int ret = judge_formable(s, &f) < 0 ? rc_fail_oom(e->rc) : f.n ? rc_fail(e->rc, "%s", f.v[0].text) : 0;
    findings_free(&f);
    for (int i = 0; ret == 0 && i < e->n; i++) engine_take_announced(&s->nodes[i]);
    return ret;
}

/* --- Plan --------------------------------------------------------------- */

static int engine_plan(struct engine *e) {
    if (e->n <= 0) return rc_fail(e->rc, "no nodes to plan");
    const char **hosts = malloc((size_t)e->n * sizeof *hosts);
    int *master_of = malloc((size_t)e->n * sizeof *master_of);
    e->masters = malloc((size_t)e->n * sizeof *e->masters);
    int *lo = malloc((size_t)e->n * sizeof *lo), *hi = malloc((size_t)e->n * sizeof *hi);
    int ret = -1;
    if (!hosts || !master_of || !e->masters || !lo || !hi) { rc_fail_oom(e->rc); goto out; }
    for (int i = 0; i < e->n; i++) hosts[i] = e->addrs[i].ip;
    e->m = cluster_plan_layout(e->n, hosts, e->replicas, master_of, e->masters);
    if (e->m < 0) { rc_fail(e->rc, "cannot lay out %d nodes with %d replica(s) per master", e->n, e->replicas); goto out; }
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

/* What the nodes run, for the plan: "Valkey 8.0.1". NULL on OOM. */
static sds sess_servers(const struct session *s) {
    const char **desc = calloc((size_t)s->n + 1, sizeof *desc);
    if (!desc) return NULL;
    for (int i = 0; i < s->n; i++) desc[i] = s->nodes[i].up ? s->nodes[i].server : NULL;
    sds out = info_servers_summary(desc, s->n);
    free(desc);
    return out;
}

static void engine_print_plan(struct engine *e) {
    struct rc *rc = e->rc;
    sds servers = sess_servers(&e->s);
    rc_progress(rc, "Plan: %d masters, %d nodes, %d replica(s) per master, %s", e->m, e->n, e->replicas,
                servers ? servers : "server unknown");
    sdsfree(servers);
    for (int k = 0; k < e->m; k++) {
        struct enode *x = &e->nodes[e->masters[k]];
        rc_progress(rc, "  master %-22s slots %d-%d (%d)", engine_name(e, e->masters[k]), x->slot_lo, x->slot_hi, x->slot_hi - x->slot_lo + 1);
        for (int i = 0; i < e->n; i++)
            if (e->nodes[i].master_of == e->masters[k])
                rc_progress(rc, "    replica %s", engine_name(e, i));
    }
}

/* --- Apply ---------------------------------------------------------------- */

/* The value tunable k has at `level` on node x: NULL at that level means its original. */
static const char *engine_tunable_value(const struct enode *x, int k, int level) {
    const char *v = engine_tunables[k].value[level];
    return v ? v : x->orig[k];
}

/* Queue CONFIG SET of every tunable whose value at `level` differs from what node x has
 * now; returns the number of replies queued, or -1. */
static int engine_queue_level(struct engine *e, struct enode *x, int level) {
    int queued = 0;
    for (int k = 0; k < ENGINE_TUNABLES; k++) {
        const char *v = x->orig[k] ? engine_tunable_value(x, k, level) : NULL;
        if (!v || (x->tuned[k] && !strcmp(x->tuned[k], v))) continue;
        if (sess_queue(&e->s, engine_snode(e, x), "CONFIG", "SET", engine_tunables[k].name, v, RESP_END) < 0) return -1;
        x->tuned[k] = v;
        queued++;
    }
    return queued;
}

/* "cluster-node-timeout 5000 -> 500, ..." for node x between its originals and level. */
static sds engine_describe_level(const struct enode *x, int level) {
    sds what = sdsempty();
    for (int k = 0; what && k < ENGINE_TUNABLES; k++)
        if (x->orig[k] && strcmp(x->orig[k], engine_tunable_value(x, k, level)) != 0)
            what = rc_catprintf(what, "%s%s %s -> %s", sdslen(what) ? ", " : "", engine_tunables[k].name,
                                x->orig[k], engine_tunable_value(x, k, level));
    return what;
}

/* CPUs this process may use (its affinity mask: taskset, cpusets); 1 when it cannot
 * tell (formation then starts at a calm level). */
static int host_cpu_count(void) {
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 ? CPU_COUNT(&set) : 1;
}

/* Whether a numeric address is this host's: loopback, or one a socket can bind to
 * (an address of an interface; getifaddrs(3) would link a netlink client). */
static int ip_is_local(const char *ip) {
    if (!strncmp(ip, "127.", 4) || !strcmp(ip, "::1")) return 1;
    struct sockaddr_in a4 = { .sin_family = AF_INET };
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
    int v6 = inet_pton(AF_INET, ip, &a4.sin_addr) != 1;
    if (v6 && inet_pton(AF_INET6, ip, &a6.sin6_addr) != 1) return 0;
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int ok = v6 ? bind(fd, (const struct sockaddr *)(const void *)&a6, sizeof a6) == 0
                : bind(fd, (const struct sockaddr *)(const void *)&a4, sizeof a4) == 0;
    close(fd);
    return ok;
}

/* The cores of the host the nodes run on when every node runs on this one, else 0:
 * rcluster cannot see a remote host's cores and relies on strain alone there. */
static int form_host_cores(const struct addr *a, int n) {
    int local = 1;
    for (int i = 0; i < n && local; i++) local = ip_is_local(a[i].ip);
    return local ? host_cpu_count() : 0;
}

/* The level formation starts at (and never speeds up beyond): the fastest, unless the
 * known cores are too few for n nodes' gossip at its settings. */
static int form_start_level(int n, int cores) {
    if (cores <= 0 || n <= ENGINE_FAST_PER_CORE * cores) return 0;
    return n <= ENGINE_CALM_PER_CORE * cores ? 2 : ENGINE_LEVELS - 1;
}

/* Set the formation settings of the starting level on every node; a tunable a node
 * refuses (an older server) is left alone there. */
static int engine_tune(struct engine *e) {
    struct rc *rc = e->rc;
    int tuned = 0;
    /* From here on any node may have been changed (a command sent whose reply was never
     * read, a MEET received from another node): a rollback resets them all, which is
     * harmless for the empty standalone nodes that preflight proved them to be. */
    for (int i = 0; i < e->n; i++) e->nodes[i].changed = 1;
    e->level = e->floor = form_start_level(e->n, e->host_cores);
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        for (int k = 0; k < ENGINE_TUNABLES; k++)
            if (engine_tunables[k].replicas_only && x->master_of < 0) { sdsfree(x->orig[k]); x->orig[k] = NULL; }
        if (engine_queue_level(e, x, e->level) < 0) return -1;
    }
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        for (int k = 0; k < ENGINE_TUNABLES; k++) {
            if (!x->orig[k] || !x->tuned[k]) continue;
            struct resp *r = sess_reply(&e->s, engine_snode(e, x), 0);
            if (!r) return -1;
            if (r->type == RESP_ERROR) { sdsfree(x->orig[k]); x->orig[k] = NULL; x->tuned[k] = NULL; }
            else tuned++;
            resp_free(r);
        }
    }
    if (!tuned) return 0;
    sds what = engine_describe_level(&e->nodes[e->n - 1], e->level);
    if (e->level == 0)
        rc_progress(rc, "While forming: the fastest settings (%s; cluster-replica-no-failover on replicas); rcluster backs off "
                        "if the nodes show strain and restores the originals at the end", what ? what : "");
    else
        rc_progress(rc, "While forming: formation level %d of %d, as %d nodes on this host's %d core(s) cannot gossip at the fastest "
                        "settings (%s; cluster-replica-no-failover on replicas); rcluster backs off further if the nodes show strain "
                        "and restores the originals at the end", e->level, ENGINE_LEVELS - 1, e->n, e->host_cores, what ? what : "");
    e->abandon_note = rc_sprintf("the nodes keep the formation settings (%s) and a partly formed cluster; set the "
                                 "originals back with CONFIG SET and run CLUSTER RESET HARD on each node before trying again",
                                 what ? what : "");
    rc_set_abandon_note(e->abandon_note);
    sdsfree(what);
    return 0;
}


/* Move every node to formation level `level`, pipelined: the CONFIG SET replies are
 * read (as acks) before the next poll answers. Says what it chose and why. */
static int engine_set_level(struct engine *e, int level, const char *why) {
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        if (!engine_snode(e, x)->up) continue;
        int q = engine_queue_level(e, x, level);
        if (q < 0) return -1;
        engine_owe_acks(x, q);
    }
    sds what = engine_describe_level(&e->nodes[0], level);
    rc_progress(e->rc, "%s: formation level %d -> %d (%s%s)", why, e->level, level, what && sdslen(what) ? what : "original settings",
                level >= ENGINE_WAVE_LEVELS && e->level < ENGINE_WAVE_LEVELS ? "; MEET waves paused" : "");
    sdsfree(what);
    e->level = level;
    e->level_since = rc_now_ms();
    return 0;
}

/* After a poll round: back off a level on strain, speed up a level after a calm spell. */
static int engine_adapt(struct engine *e, int64_t round_ms) {
    int failing = 0;
    for (int i = 0; i < e->n; i++) failing += e->nodes[i].sees_failing;
    /* Busy nodes answer slowly during the handshake storm, which is no danger by itself:
     * slowness backs off one level at most; only peers seen failing go further. */
    int slow = round_ms > ENGINE_STRAIN_ROUND_MS + 4 * (int64_t)e->n;
    if (failing || (slow && e->level == 0)) {
        e->last_strain = rc_now_ms();
        if (rc_now_ms() - e->level_since < ENGINE_SETTLE_MS) return 0;
        if (++e->strained[e->level] >= 2 && e->floor <= e->level) e->floor = e->level + 1;
        if (e->level + 1 >= ENGINE_LEVELS) return 0;
        char why[160];
        if (failing) snprintf(why, sizeof why, "Nodes show strain (%d see a peer as possibly failing)", failing);
        else snprintf(why, sizeof why, "Nodes show strain (a poll round took %lld ms)", (long long)round_ms);
        return engine_set_level(e, e->level + 1, why);
    }
    if (e->level > e->floor && rc_now_ms() - e->last_strain > ENGINE_CALM_MS) {
        e->last_strain = rc_now_ms();
        return engine_set_level(e, e->level - 1, "Strain cleared");
    }
    return 0;
}

/* Put back what engine_tune changed. Runs on every exit path and tries every node
 * even after a failure, because the node may be the very thing that broke. Returns 0,
 * or -1 with *left naming each node and the formation value still set there (caller
 * frees); rc->err is left as it was. */
static int engine_restore(struct engine *e, sds *left) {
    struct rc *rc = e->rc;
    struct rc_err_saved saved = rc_err_save(rc);
    int restored = 0, failed = 0;
    *left = sdsempty();
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        struct snode *sx = &e->s.nodes[i];
        int pending = 0;
        for (int k = 0; k < ENGINE_TUNABLES; k++) pending += x->orig[k] != NULL;
        if (!pending) continue;
        int up = !((!sx->up || sx->owed > 0) && engine_reconnect(e, x) < 0);
        for (int k = 0; k < ENGINE_TUNABLES; k++) {
            if (!x->orig[k]) continue;
            struct resp *r = up ? rconn_call(rc, &sx->c, "CONFIG SET", "CONFIG", "SET", engine_tunables[k].name, x->orig[k], RESP_END) : NULL;
            if (r) restored++;
            else {
                failed++;
                *left = rc_catprintf(*left, "\n  %s:%d: %s is still %s (was %s): %s", sx->conn_ip, sx->conn_port, engine_tunables[k].name,
                                     x->tuned[k] ? x->tuned[k] : "?", x->orig[k], rc->err ? rc->err : "no answer");
            }
            resp_free(r);
            sdsfree(x->orig[k]);
            x->orig[k] = NULL;
        }
    }
    if (restored) rc_progress(rc, "Restored the original settings on the nodes");
    rc_err_restore(rc, &saved);
    rc_set_abandon_note(NULL);
    sdsfree(e->abandon_note);
    e->abandon_note = NULL;
    return failed ? -1 : 0;
}

/* Slots to the masters (ranges from Redis 7, batches of ADDSLOTS before), then a
 * distinct config epoch to every node, all pipelined. */
static int engine_assign_slots(struct engine *e) {
    struct session *s = &e->s;
    for (int k = 0; k < e->m; k++) {
        struct enode *x = &e->nodes[e->masters[k]];
        struct snode *sx = engine_snode(e, x);
        int step = sx->major >= 7 ? CLUSTER_SLOTS : ADDSLOTS_BATCH;
        for (int lo = x->slot_lo; lo <= x->slot_hi; lo += step)
            if (act_addslots_range(s, sx, lo, lo + step - 1 < x->slot_hi ? lo + step - 1 : x->slot_hi) < 0) return -1;
    }
    for (int i = 0; i < e->n; i++)
        if (act_set_config_epoch(s, &s->nodes[i], i + 1) < 0) return -1;
    for (int i = 0; i < e->n; i++) {
        e->nodes[i].changed = 1;
        if (sess_drain(s, &s->nodes[i], "CLUSTER ADDSLOTS/SET-CONFIG-EPOCH") < 0) return -1;
    }
    rc_progress(e->rc, "Assigned slots to %d masters and a distinct config epoch to every node", e->m);
    return 0;
}

static int engine_queue_meet(struct engine *e, struct enode *from, const struct enode *to) {
    const struct snode *t = engine_snode(e, to);
    from->last_meet = rc_now_ms();
    engine_owe_acks(from, 1);
    return act_meet(&e->s, engine_snode(e, from), t->ip, t->port, t->bus);
}

/* Queue the next MEET wave: each of the next ENGINE_WAVE nodes meets every other node.
 * Replies are owed as acks (read before the next poll answers, or by engine_meet). */
static int engine_queue_wave(struct engine *e) {
    int width = e->level < ENGINE_WAVE_LEVELS ? ENGINE_WAVE : 1;   /* a slow level: one node meets all */
    int end = e->meet_next + width < e->n ? e->meet_next + width : e->n;
    for (int i = e->meet_next; i < end; i++)
        for (int j = 0; j < e->n; j++)
            if (i != j && engine_queue_meet(e, &e->nodes[i], &e->nodes[j]) < 0) return -1;
    e->meet_next = end;
    e->last_wave = rc_now_ms();
    return 0;
}

/* Every node meets every other node, in waves: waiting for gossip to spread the news
 * costs several cron rounds, and Redis drops the duplicate handshakes by itself, but a
 * whole large cluster's handshake storm at once can starve a small host. The first wave
 * (every node, in a cluster of up to ENGINE_WAVE) goes now and reaches every node; the
 * wait loop sends the rest every ENGINE_WAVE_MS while the nodes show no strain. Pairs
 * that still do not know each other are met again by the wait loop. */
static int engine_meet(struct engine *e) {
    int64_t now = rc_now_ms();
    for (int i = 0; i < e->n; i++) e->nodes[i].last_meet = now;
    e->meet_next = 0;
    if (engine_queue_wave(e) < 0) return -1;
    for (int i = 0; i < e->n; i++) {
        e->nodes[i].acks = 0;
        if (sess_drain(&e->s, &e->s.nodes[i], "CLUSTER MEET") < 0) return -1;
    }
    if (e->meet_next < e->n && e->level >= ENGINE_WAVE_LEVELS)
        rc_progress(e->rc, "Sent CLUSTER MEET from one node to all %d others; they learn of each other by gossip "
                           "(rcluster MEETs pairs that stay apart)", e->n - 1);
    else if (e->meet_next < e->n)
        rc_progress(e->rc, "Sent CLUSTER MEET from %d of %d nodes to all others; the rest follow in waves of %d", e->meet_next, e->n, ENGINE_WAVE);
    else rc_progress(e->rc, "Sent CLUSTER MEET between all %d nodes", e->n);
    return 0;
}

/* --- Wait until healthy: poll, judge, act ------------------------------------ */

/* One poll round asks every node four questions, pipelined. */
static int engine_poll_queue(struct engine *e, struct enode *x) {
    struct snode *sx = engine_snode(e, x);
    if (!sx->up && engine_reconnect(e, x) < 0) return -1;
    if (sess_queue(&e->s, sx, "CLUSTER", "NODES", RESP_END) < 0 ||
        sess_queue(&e->s, sx, "CLUSTER", "INFO", RESP_END) < 0 ||
        sess_queue(&e->s, sx, "INFO", "replication", RESP_END) < 0 ||
        sess_queue(&e->s, sx, "CLUSTER", "SLOTS", RESP_END) < 0) return -1;
    if (rconn_flush(e->rc, &sx->c, rc_now_ms() + e->rc->io_timeout_ms) == 0) return 0;
    snode_fail(e->rc, sx);
    return -1;
}

static void enode_set_why(struct enode *x, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds s = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    if (s) { sdsfree(x->why); x->why = s; }
}

/* A node's CLUSTER SLOTS answer, kept small: one line per range, "LO COUNT ID...\n"
 * (COUNT: the nodes serving it, master first; the IDs: its replicas'). The answer's
 * resp tree is ~40 KB in a 100-node cluster, this is ~4 KB: kept for every node
 * between polls, that tree was a third of create's memory. NULL on OOM. */
static sds engine_slots_compact(const struct resp *slots) {
    sds s = sdsempty();
    for (size_t i = 0; s && slots && slots->type == RESP_ARRAY && i < slots->n; i++) {
        const struct resp *ent = slots->elem[i];
        if (ent->type != RESP_ARRAY || ent->n < 3 || ent->elem[0]->type != RESP_INTEGER) continue;
        s = rc_catprintf(s, "%lld %zu", (long long)ent->elem[0]->integer, ent->n - 2);
        for (size_t q = 3; s && q < ent->n; q++) {
            const struct resp *nd = ent->elem[q];
            if (nd->type == RESP_ARRAY && nd->n >= 3 && nd->elem[2]->type == RESP_BULK) s = rc_cat(rc_cat(s, " "), nd->elem[2]->str);
        }
        s = rc_cat(s, "\n");
    }
    return s;
}

/* The line of compact slots (engine_slots_compact) for the range that starts at lo,
 * or NULL; *count gets its COUNT. */
static const char *slots_line(const char *slots, long long lo, int *count) {
    for (const char *p = slots; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        char *end;
        if (strtoll(p, &end, 10) != lo) continue;
        *count = (int)strtol(end, NULL, 10);
        return p;
    }
    return NULL;
}

/* Whether a line of compact slots lists node id among the range's replicas. */
static int slots_line_lists(const char *line, const char *id) {
    size_t n = strlen(id);
    const char *nl = strchr(line, '\n');
    for (const char *p = line; n && (p = strstr(p, id)) && (!nl || p < nl); p += n)
        if (p > line && p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n' || !p[n])) return 1;
    return 0;
}

/* Keep one node's four answers as its view (CLUSTER NODES, cluster_state, its
 * replication link and offset, CLUSTER SLOTS); -1 with x->why when they are unusable. */
static int engine_take_poll(struct engine *e, int idx, struct resp **r) {
    struct enode *x = &e->nodes[idx];
    struct snode *sx = &e->s.nodes[idx];
    char buf[32];
    x->healthy = 0;
    for (int k = 0; k < 4; k++)
        if (r[k]->type == RESP_ERROR) { enode_set_why(x, "error: %s", r[k]->str); return -1; }
    if (r[0]->type != RESP_BULK || r[1]->type != RESP_BULK || r[2]->type != RESP_BULK) {
        enode_set_why(x, "unexpected reply types");
        return -1;
    }
    cview_free(&sx->view);
    sx->me = NULL;
    if (cview_parse(r[0]->str, sdslen(r[0]->str), &sx->view) < 0) { enode_set_why(x, "unparsable CLUSTER NODES"); return -1; }
    sx->me = cview_myself(&sx->view);
    if (info_field(r[1]->str, "cluster_state", sx->state, sizeof sx->state) < 0) snprintf(sx->state, sizeof sx->state, "?");
    if (info_field(r[2]->str, "master_link_status", sx->link, sizeof sx->link) < 0) sx->link[0] = 0;
    sx->repl_offset = info_field(r[2]->str, "slave_repl_offset", buf, sizeof buf) == 0 ? strtoll(buf, NULL, 10) : -1;
    sdsfree(x->slots);
    if (!(x->slots = engine_slots_compact(r[3]))) { enode_set_why(x, "out of memory"); return -1; }
    return 0;
}

static int engine_count_replicas(struct engine *e, int master) {
    int c = 0;
    for (int i = 0; i < e->n; i++) if (e->nodes[i].master_of == master) c++;
    return c;
}

/* Does CLUSTER SLOTS list every planned replica under every master's range? */
static int engine_slots_complete(struct engine *e, const char *slots) {
    if (!slots) return 0;
    for (int k = 0; k < e->m; k++) {
        int count = 0, want = 1 + engine_count_replicas(e, e->masters[k]);
        if (!slots_line(slots, e->nodes[e->masters[k]].slot_lo, &count) || count != want) return 0;
    }
    return 1;
}

/* What one node still lacks, as its judge sees it; the wait loop acts on it. */
struct form_need {
    int healthy;
    int failing;            /* it sees a planned peer as failing: strain */
    int meet;               /* it does not know some planned peers yet */
    int missing;            /* the first of them, -1 none */
    int replicate;          /* a replica that can be told its master now */
    int nudge;              /* its master's replication offset must move */
    int lost;               /* the plan cannot be reached any more (why says how) */
    int *stale, nstale;     /* planned nodes it has stale news of: it needs a refresh */
    sds why;
};

/* Note node j as one the judged node has stale news of; -1 on OOM. */
static int need_stale(const struct engine *e, struct form_need *nd, int j) {
    if (!nd->stale && !(nd->stale = calloc((size_t)e->n, sizeof *nd->stale))) return -1;
    nd->stale[nd->nstale++] = j;
    return 0;
}

/* Whether a view's line for a node says what the node says of itself: the same
 * master (or none) and the same slot ranges. */
static int nodeinfo_current(const struct nodeinfo *seen, const struct nodeinfo *own) {
    if (strcmp(seen->master, own->master) != 0 || seen->nranges != own->nranges) return 0;
    for (int k = 0; k < own->nranges; k++)
        if (seen->ranges[k][0] != own->ranges[k][0] || seen->ranges[k][1] != own->ranges[k][1]) return 0;
    return 1;
}

/* Planned nodes whose role or slots node idx's view has otherwise than they say of
 * themselves (once a replica's REPLICATE was answered): a MEET from each carries its
 * state to idx at once, where gossip at a slow level could take many seconds. */
static int engine_judge_stale(const struct engine *e, int idx, struct form_need *nd) {
    for (int j = 0; j < e->n; j++) {
        const struct enode *o = &e->nodes[j];
        const struct snode *so = &e->s.nodes[j];
        if (j == idx || !so->me || (o->master_of >= 0 && (!o->replicated || o->replicate_owed))) continue;
        const struct nodeinfo *ni = cview_find((struct cview *)&e->s.nodes[idx].view, so->id);
        if (ni && !nodeinfo_current(ni, so->me) && need_stale(e, nd, j) < 0) return -1;
    }
    return 0;
}

/* Replicas with a replication offset that node idx's CLUSTER SLOTS leaves out: it
 * lists a replica once it has heard that offset from the replica itself. */
static int engine_judge_unlisted(const struct engine *e, int idx, struct form_need *nd) {
    const char *slots = e->nodes[idx].slots;
    for (const char *line = slots; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        long long lo = strtoll(line, NULL, 10);
        for (int j = 0; j < e->n; j++) {
            const struct enode *r = &e->nodes[j];
            if (j == idx || r->master_of < 0 || e->nodes[r->master_of].slot_lo != lo) continue;
            if (e->s.nodes[j].repl_offset > 0 && !slots_line_lists(line, e->s.nodes[j].id) && need_stale(e, nd, j) < 0) return -1;
        }
    }
    return 0;
}

__attribute__((format(printf, 2, 3)))
static int need_why(struct form_need *nd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sds s = rc_vcatprintf(sdsempty(), fmt, ap);
    va_end(ap);
    if (!s) return -1;
    sdsfree(nd->why);
    nd->why = s;
    return 0;
}

/* Say how a node's slot map differs from the plan. A planned replica owning slots
 * means a failover happened while forming: the nodes were too slow to answer within
 * cluster-node-timeout (an overloaded machine), and the layout is no longer ours. */
static int engine_explain_slot_map(const struct engine *e, int idx, struct form_need *nd) {
    struct cview *view = (struct cview *)&e->s.nodes[idx].view;
    for (int k = 0; k < e->m; k++) {
        const struct enode *mx = &e->nodes[e->masters[k]];
        const struct nodeinfo *ni = cview_find(view, e->s.nodes[e->masters[k]].id);
        if (ni && ni->nranges == 1 && ni->ranges[0][0] == mx->slot_lo && ni->ranges[0][1] == mx->slot_hi) continue;
        for (int i = 0; i < e->n; i++) {
            const struct nodeinfo *o = cview_find(view, e->s.nodes[i].id);
            if (e->nodes[i].master_of >= 0 && o && o->nranges > 0) {
                nd->lost = 1;
                return need_why(nd, "%s sees replica %s owning slots: a failover happened while the cluster was forming "
                                "(nodes answered too slowly for cluster-node-timeout; is the machine overloaded?)",
                                engine_name(e, idx), engine_name(e, i));
            }
        }
        return need_why(nd, "does not yet see slots %d-%d on %s", mx->slot_lo, mx->slot_hi, engine_name(e, e->masters[k]));
    }
    return need_why(nd, "does not agree on the slot map yet");
}

/* Judge one node from its latest view against the plan: whom it does not know yet,
 * whether it can be told its master, whether it agrees on the slot map, is ok, is
 * linked and listed. Reads only; -1 on OOM. */
static int engine_judge_node(const struct engine *e, int idx, struct form_need *nd) {
    const struct snode *sx = &e->s.nodes[idx];
    const struct enode *x = &e->nodes[idx];
    struct cview *view = (struct cview *)&sx->view;
    memset(nd, 0, sizeof *nd);
    nd->missing = -1;
    for (int j = 0; j < e->n; j++) {
        if (j == idx) continue;
        const struct nodeinfo *ni = cview_find(view, e->s.nodes[j].id);
        if (!ni || (ni->flags & (NF_HANDSHAKE | NF_NOADDR))) { if (nd->missing < 0) nd->missing = j; continue; }
        if (ni->flags & (NF_FAIL | NF_PFAIL)) { nd->failing = 1; return need_why(nd, "sees %s as failing", engine_name(e, j)); }
    }
    int handshakes = 0;
    for (int j = 0; j < view->n; j++) if (view->nodes[j].flags & NF_HANDSHAKE) handshakes++;
    if (nd->missing >= 0) {
        nd->meet = 1;
        if (need_why(nd, "does not know %s yet (%d handshake(s) in progress)", engine_name(e, nd->missing), handshakes) < 0) return -1;
    }
    if (x->master_of >= 0 && !x->replicated) {
        const struct nodeinfo *ni = cview_find(view, e->s.nodes[x->master_of].id);
        if (!ni || (ni->flags & NF_HANDSHAKE)) return nd->missing < 0 ? need_why(nd, "waiting to learn master %s", engine_name(e, x->master_of)) : 0;
        nd->replicate = 1;
        return need_why(nd, "replicating from %s", engine_name(e, x->master_of));
    }
    if (nd->missing >= 0) return 0;
    sds sig = cview_signature(view);
    if (!sig) return -1;
    int agrees = strcmp(sig, e->plan_sig) == 0;
    sdsfree(sig);
    if (!agrees) return engine_judge_stale(e, idx, nd) < 0 ? -1 : engine_explain_slot_map(e, idx, nd);
    if (strcmp(sx->state, "ok") != 0) return need_why(nd, "cluster_state:%s", sx->state);
    if (x->master_of >= 0) {
        if (strcmp(sx->link, "up") != 0)
            return need_why(nd, "replication link to %s is %s", engine_name(e, x->master_of), sx->link[0] ? sx->link : "not up");
        if (sx->repl_offset == 0) { nd->nudge = 1; return need_why(nd, "replication offset still 0"); }
    }
    if (!engine_slots_complete((struct engine *)e, x->slots))
        return engine_judge_unlisted(e, idx, nd) < 0 ? -1 : need_why(nd, "CLUSTER SLOTS does not list every replica yet");
    nd->healthy = 1;
    return need_why(nd, "ok");
}

/* Redis 7 leaves a replica out of CLUSTER SLOTS until gossip carries a non-zero
 * replication offset for it, and an idle master only moves its offset with the
 * replication PING every repl-ping-replica-period (10 s). Writing and deleting one
 * key of our own in the master's slots moves the offset at once and leaves no data. */
static int engine_nudge_master(struct engine *e, struct enode *m) {
    struct snode *sm = engine_snode(e, m);
    if (strcmp(sm->state, "ok") != 0 || !sm->up || rc_now_ms() - m->last_nudge < 200) return 0;
    char key[64];
    for (unsigned i = 0; ; i++) {
        snprintf(key, sizeof key, "rcluster:formation:{%u}", i);
        int slot = cluster_key_slot(key, strlen(key));
        if (slot >= m->slot_lo && slot <= m->slot_hi) break;
    }
    m->last_nudge = rc_now_ms();
    if (e->rc->verbose) rc_progress(e->rc, "nudging %s with key %s", sm->c.name, key);
    if (sess_queue(&e->s, sm, "SET", key, "1", RESP_END) < 0 || sess_queue(&e->s, sm, "DEL", key, RESP_END) < 0) return -1;
    engine_owe_acks(m, 2);
    return 0;
}

/* Refresh node x's news of its peers: at the slow levels a node hears a peer's slots,
 * role and replication offset only every cluster-node-timeout/2, from that peer's own
 * messages. A short cluster-node-timeout makes x ping every peer it has not heard from
 * for half of it at its next cron, and each PONG carries the peer's state; the level's
 * timeout goes back (engine_end_refreshes) long before the short one could flag a slow
 * peer. Not more often than ENGINE_REFRESH_MS a node, and not while poll rounds are slow:
 * the timeout goes back a round later, and a slow round would stretch the short one. */
static int engine_queue_refresh(struct engine *e, struct enode *x) {
    int k = ENGINE_TIMEOUT_TUNABLE;
    if (x->refresh_until || !x->orig[k] || !x->tuned[k] || rc_now_ms() - x->last_refresh < ENGINE_REFRESH_MS ||
        e->last_round_ms > ENGINE_REFRESH_ROUND_MS) return 0;
    if (sess_queue(&e->s, engine_snode(e, x), "CONFIG", "SET", engine_tunables[k].name, ENGINE_REFRESH_TIMEOUT, RESP_END) < 0) return -1;
    engine_owe_acks(x, 1);
    x->tuned[k] = ENGINE_REFRESH_TIMEOUT;
    x->last_refresh = rc_now_ms();
    x->refresh_until = x->last_refresh + ENGINE_REFRESH_HOLD_MS;
    if (e->rc->verbose) rc_progress(e->rc, "refreshing %s's news of its peers", engine_snode(e, x)->c.name);
    return 0;
}

/* Put the level's cluster-node-timeout back on every node whose refresh has run. */
static int engine_end_refreshes(struct engine *e, int64_t now) {
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        if (!x->refresh_until || now < x->refresh_until || !e->s.nodes[i].up) continue;
        x->refresh_until = 0;
        int q = engine_queue_level(e, x, e->level);
        if (q < 0) return -1;
        engine_owe_acks(x, q);
    }
    return 0;
}

/* Act on what the judge found: MEET the peers it has never heard of (not more often
 * than ENGINE_REMEET_MS), refresh its stale news, tell a replica its master, move a
 * master's offset. The
 * node's health and why are kept for the diagnosis and for engine_adapt. */
static int engine_act_node(struct engine *e, int idx, struct form_need *nd) {
    struct enode *x = &e->nodes[idx];
    struct snode *sx = &e->s.nodes[idx];
    x->healthy = nd->healthy;
    x->sees_failing = nd->failing;
    if (nd->why) { sdsfree(x->why); x->why = nd->why; nd->why = NULL; }
    /* The plan can no longer be reached: stop now instead of at --timeout. */
    if (nd->lost) return rc_fail(e->rc, "%s", x->why);
    if (nd->meet && rc_now_ms() - x->last_meet > (int64_t)ENGINE_REMEET_MS * (e->n > ENGINE_SMALL_CLUSTER ? 5 : 1))
        for (int j = 0; j < e->n; j++)
            if (j != idx && !cview_find(&sx->view, e->s.nodes[j].id) && engine_queue_meet(e, x, &e->nodes[j]) < 0) return -1;
    if (nd->nstale && e->level >= ENGINE_WAVE_LEVELS && engine_queue_refresh(e, x) < 0) return -1;
    /* Pipelined like everything else: a busy node must not stall the whole round. */
    if (nd->replicate) {
        if (act_replicate(&e->s, sx, e->s.nodes[x->master_of].id) < 0) return -1;
        x->replicate_owed = 1;
        x->replicated = 1;
    }
    return nd->nudge ? engine_nudge_master(e, &e->nodes[x->master_of]) : 0;
}

/* Read and drop *count replies owed to node x (errors only said with --verbose). */
static void engine_read_acks(struct engine *e, struct enode *x, int *count) {
    struct snode *sx = engine_snode(e, x);
    for (; *count > 0 && sx->up; (*count)--) {
        struct resp *ack = sess_reply(&e->s, sx, 0);
        if (!ack) break;
        if (ack->type == RESP_ERROR && e->rc->verbose) rc_warn(e->rc, "%s: %s", sx->c.name, ack->str);
        resp_free(ack);
    }
}

/* A node that stops answering is given a short grace period (a restart or a slow
 * fork), then the whole wait fails naming it. */
static int engine_mark_down(struct engine *e, int idx) {
    struct enode *x = &e->nodes[idx];
    if (!x->down_since) x->down_since = rc_now_ms();
    enode_set_why(x, "not answering: %s", e->rc->err);
    if (rc_now_ms() - x->down_since > ENGINE_DOWN_GRACE_MS)
        return rc_fail_as(e->rc, RC_ERR_UNREACHABLE, "%s stopped answering while the cluster was forming: %s", engine_name(e, idx), e->rc->err);
    return 0;
}

/* Read one node's owed replies in order — acks, the REPLICATE, acks, the four answers
 * — then judge it and act on the judgement. */
static int engine_poll_read(struct engine *e, int idx) {
    struct enode *x = &e->nodes[idx];
    struct snode *sx = &e->s.nodes[idx];
    struct resp *r[4] = { 0 };
    int ret = 0, k;
    engine_read_acks(e, x, &x->acks);
    if (x->replicate_owed && sx->up) {
        struct resp *rr = sess_reply(&e->s, sx, 0);
        if (rr) {
            x->replicate_owed = 0;
            /* "Unknown node" while gossip is still settling is worth another round. */
            if (rr->type == RESP_ERROR) { x->replicated = 0; enode_set_why(x, "CLUSTER REPLICATE not accepted yet: %s", rr->str); }
        }
        resp_free(rr);
    }
    engine_read_acks(e, x, &x->acks_after);
    x->acks += x->acks_after;   /* only left over when a read failed: all before the next REPLICATE */
    x->acks_after = 0;
    for (k = 0; k < 4 && sx->up; k++)
        if (!(r[k] = sess_reply(&e->s, sx, 0))) break;
    if (k == 4) {
        struct form_need nd;
        x->down_since = 0;
        if (engine_take_poll(e, idx, r) == 0) {
            ret = engine_judge_node(e, idx, &nd) < 0 ? rc_fail_oom(e->rc) : engine_act_node(e, idx, &nd);
            sdsfree(nd.why);
            free(nd.stale);
        }
    } else ret = engine_mark_down(e, idx);
    for (k = 0; k < 4; k++) resp_free(r[k]);
    return ret;
}

static sds engine_diagnosis(struct engine *e) {
    sds s = sdsempty();
    for (int i = 0; s && i < e->n; i++)
        if (!e->nodes[i].healthy)
            s = rc_catprintf(s, "\n  %s: %s", engine_name(e, i), e->nodes[i].why ? e->nodes[i].why : "no answer yet");
    return s;
}

static int engine_wait_healthy(struct engine *e, int64_t deadline) {
    struct rc *rc = e->rc;
    int64_t last_report = rc_now_ms();
    for (;;) {
        int64_t round = rc_now_ms();
        if (engine_end_refreshes(e, round) < 0) return -1;
        for (int i = 0; i < e->n; i++)
            if (engine_poll_queue(e, &e->nodes[i]) < 0 && engine_mark_down(e, i) < 0) return -1;
        int healthy = 0;
        for (int i = 0; i < e->n; i++) {
            if (!e->s.nodes[i].up) continue;
            if (engine_poll_read(e, i) < 0) return -1;
            healthy += e->nodes[i].healthy;
        }
        if (healthy == e->n) return 0;
        e->last_round_ms = rc_now_ms() - round;
        if (engine_adapt(e, e->last_round_ms) < 0) return -1;
        if (e->meet_next < e->n && e->level < ENGINE_WAVE_LEVELS && rc_now_ms() - e->last_wave >= ENGINE_WAVE_MS) {
            if (engine_queue_wave(e) < 0) return -1;
            if (rc->verbose) rc_progress(rc, "MEET wave: nodes up to %d of %d", e->meet_next, e->n);
        }
        if (rc->verbose && rc_now_ms() - last_report >= 100) {
            sds d = engine_diagnosis(e);
            rc_progress(rc, "%lld ms: %d/%d nodes ready:%s", (long long)(rc_now_ms() - rc->t0), healthy, e->n, d ? d : "");
            sdsfree(d);
            last_report = rc_now_ms();
        }
        if (rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted while waiting for the cluster to become healthy");
        if (rc_now_ms() >= deadline) {
            sds d = engine_diagnosis(e);
            rc_fail_as(rc, RC_ERR_TIMEOUT, "the cluster did not become healthy within %.0f s:%s\nhint: every node must reach every other node's cluster bus port (port+10000, or the @busport given) and its announced address",
                    rc->timeout, d ? d : "");
            sdsfree(d);
            return -1;
        }
        /* Polling a large cluster costs its nodes CPU they need for gossip: slow down. */
        int64_t interval = ENGINE_POLL_MS + (e->n > ENGINE_SMALL_CLUSTER ? e->n : 0);
        int64_t spent = rc_now_ms() - round;
        if (spent < interval) rc_sleep_ms((int)(interval - spent));
    }
}

/* --- Report ------------------------------------------------------------------ */

static void engine_print_table(struct engine *e, int64_t elapsed_ms) {
    struct rc *rc = e->rc;
    if (rc->json) {
        sds s = sdsnew("{\"ok\":true,\"nodes\":[");
        for (int i = 0; s && i < e->n; i++) {
            struct enode *x = &e->nodes[i];
            struct snode *sx = &e->s.nodes[i];
            sds slots = x->master_of < 0 ? rc_sprintf("%d-%d", x->slot_lo, x->slot_hi) : sdsempty();
            s = rc_catprintf(s, "%s{\"id\":\"%s\",\"addr\":", i ? "," : "", sx->id);
            s = rc_json_str(s, engine_name(e, i));
            s = rc_json_str(rc_cat(s, ",\"server\":"), sx->server[0] ? sx->server : NULL);
            s = s ? rc_catprintf(s, ",\"announced\":\"%s:%d@%d\",\"role\":\"%s\",\"slots\":", sx->ip, sx->port, sx->bus,
                                 x->master_of < 0 ? "master" : "replica") : NULL;
            s = rc_json_str(s, slots);
            s = s ? (x->master_of < 0 ? rc_cat(s, ",\"master\":null}") : rc_catprintf(s, ",\"master\":\"%s\"}", e->s.nodes[x->master_of].id)) : NULL;
            sdsfree(slots);
        }
        if (s) s = rc_catprintf(s, "],\"elapsed_ms\":%lld}\n", (long long)elapsed_ms);
        rc_json_out(e->rc, s);
        sdsfree(s);
        return;
    }
    printf("%-40s  %-21s  %-7s  %-11s  %s\n", "ID", "ADDRESS", "ROLE", "SLOTS", "MASTER");
    for (int i = 0; i < e->n; i++) {
        struct enode *x = &e->nodes[i];
        char slots[32] = "-";
        if (x->master_of < 0) snprintf(slots, sizeof slots, "%d-%d", x->slot_lo, x->slot_hi);
        printf("%-40s  %-21s  %-7s  %-11s  %s\n", e->s.nodes[i].id, engine_name(e, i), x->master_of < 0 ? "master" : "replica",
               slots, x->master_of < 0 ? "-" : e->s.nodes[x->master_of].id);
    }
}

/* Undo a failed formation: the nodes were empty and alone before (preflight proved
 * it), so CLUSTER RESET HARD returns them to that state. Redis refuses to reset a
 * master that holds keys, so data written meanwhile by someone else is never lost.
 * The error then lists what was reset and what still needs a hand. */
static void engine_rollback(struct engine *e) {
    struct rc *rc = e->rc;
    sds cause = rc->err ? sdsdup(rc->err) : sdsnew("unknown failure");
    sds reset = sdsempty(), stuck = sdsempty();
    int nreset = 0, nstuck = 0;
    /* Replicas first: a master with a replica attached is not reset cleanly. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < e->n; i++) {
            struct enode *x = &e->nodes[i];
            struct snode *sx = &e->s.nodes[i];
            if (!x->changed || (pass == 0) != (x->master_of >= 0)) continue;
            struct resp *r = NULL;
            if (engine_reconnect(e, x) == 0 && act_reset(&e->s, sx, "HARD") == 0) r = sess_expect(&e->s, sx, "CLUSTER RESET HARD");
            char name[300];
            snprintf(name, sizeof name, "%s:%d", sx->conn_ip, sx->conn_port);
            if (r) { reset = rc_catprintf(reset, "%s%s", nreset++ ? ", " : "", name); }
            else { stuck = rc_catprintf(stuck, "%s%s (%s)", nstuck++ ? ", " : "", name, rc->err); }
            resp_free(r);
            if (!reset || !stuck) break;
        }
    }
    /* A node reset early can be met again by one reset later (its handshake packets
     * were still in flight): once every table is empty nothing sends, so a second
     * round a moment later leaves each node alone for good. */
    if (nreset) rc_sleep_ms(200);
    for (int i = 0; nreset && i < e->n; i++) {
        struct snode *sx = &e->s.nodes[i];
        if (!e->nodes[i].changed || !sx->up || act_reset(&e->s, sx, "HARD") < 0) continue;
        resp_free(sess_reply(&e->s, sx, 0));
    }
    sds msg = sdsdup(cause);
    if (msg && nreset) msg = rc_catprintf(msg, "\nrolled back: CLUSTER RESET HARD on the %d node(s) this run changed (%s); they are empty and standalone again", nreset, reset ? reset : "");
    if (msg && nstuck) msg = rc_catprintf(msg, "\ncould NOT reset %d changed node(s): %s; run CLUSTER RESET HARD on each of them before trying again", nstuck, stuck ? stuck : "");
    if (msg) { sdsfree(rc->err); rc->err = msg; }
    sdsfree(cause);
    sdsfree(reset);
    sdsfree(stuck);
}

/* --- Entry points -------------------------------------------------------------- */

static int engine_init(struct engine *e, struct rc *rc, const struct addr *a, int n, int replicas) {
    memset(e, 0, sizeof *e);
    e->rc = rc;
    e->replicas = replicas;
    e->addrs = a;
    e->host_cores = form_host_cores(a, n);
    e->nodes = calloc((size_t)n, sizeof *e->nodes);
    if (!e->nodes) return rc_fail_oom(rc);
    e->n = n;
    for (int i = 0; i < n; i++) e->nodes[i].master_of = -1;
    return 0;
}

/* Whether engine_create_addrs asks before it changes nodes (`up` made them itself). */
enum { ENGINE_CONFIRM = 1, ENGINE_NO_CONFIRM = 0 };

/* create = preflight, plan, confirm, apply, wait, report. */
static int engine_create_addrs(struct rc *rc, const struct addr *a, int n, int replicas, int confirm) {
    int64_t t0 = rc_now_ms();
    struct engine e;
    if (replicas < 0 || replicas > 100) return rc_fail(rc, "--replicas must be between 0 and 100");
    if (engine_check_duplicates(rc, (struct addr *)a, n) < 0 || engine_check_count(rc, n, replicas) < 0) return -1;
    if (engine_init(&e, rc, a, n, replicas) < 0) return -1;
    int ret = -1;
    rc_progress(rc, "Checking %d nodes", n);
    if (engine_preflight(&e) < 0 || engine_plan(&e) < 0) goto out;
    engine_print_plan(&e);
    if (confirm && rc_confirm(rc, "Form this cluster?") < 0) goto out;
    int64_t deadline = rc_now_ms() + (int64_t)(rc->timeout * 1000);
    sds left = NULL;
    if (engine_tune(&e) < 0 || engine_assign_slots(&e) < 0 || engine_meet(&e) < 0 ||
        engine_wait_healthy(&e, deadline) < 0) {
        if (engine_restore(&e, &left) < 0) rc_fail_msg(rc, rc_sprintf("%s\nformation settings NOT restored:%s", rc->err ? rc->err : "", left));
        sdsfree(left);
        engine_rollback(&e);
        goto out;
    }
    if (engine_restore(&e, &left) < 0) {
        rc_fail(rc, "the cluster formed, but the formation settings could not be restored; set these back with CONFIG SET:%s", left);
        sdsfree(left);
        goto out;
    }
    sdsfree(left);
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
static int engine_create(struct rc *rc, struct engine_addr *addrs, int n, int replicas, int confirm) {
    if (n <= 0 || n > 1000) return rc_fail(rc, "cannot form a cluster of %d nodes", n);
    struct addr *a = calloc((size_t)n, sizeof *a);
    if (!a) return rc_fail_oom(rc);
    int ret = 0;
    for (int i = 0; i < n && ret == 0; i++) {
        snprintf(a[i].host, sizeof a[i].host, "%s", addrs[i].host);
        a[i].port = addrs[i].port;
        ret = net_resolve(rc, a[i].host, a[i].ip, sizeof a[i].ip);
    }
    if (ret == 0) ret = engine_create_addrs(rc, a, n, replicas, confirm);
    free(a);
    return ret;
}


/* Wait until host:port answers PING; NOAUTH or LOADING also mean the process is up, so
 * the PING goes without AUTH, and each try waits at most a second. */
static int engine_wait_ping(struct rc *rc, const char *host, int port, int64_t deadline_ms) {
    for (;;) {
        struct rconn c;
        int ok = rconn_connect(rc, &c, host, port, 1000);
        if (ok == 0) {
            struct resp *r = NULL;
            if (rconn_queue(rc, &c, "PING", RESP_END) == 0) r = rconn_read(rc, &c, rc_now_ms() + 1000);
            ok = r ? 0 : -1;
            resp_free(r);
        }
        rconn_free(&c);
        if (ok == 0) return 0;
        if (rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted while waiting for %s:%d", host, port);
        if (rc_now_ms() >= deadline_ms) return rc_wrap(rc, "%s:%d did not answer PING in time", host, port);
        rc_sleep_ms(ENGINE_POLL_MS);
    }
}

/* --- Check: the judges' findings about a running cluster, rendered ------------ */

/* Whether check_cluster prints its report and warnings, or only returns the verdict
 * (commands that wait for health, or print their own report). */
enum check_report { CHECK_REPORT = 0, CHECK_SILENT = 1 };

/* Every judge of a running cluster's health, in the order check reports them. */
static int judge_health(const struct session *s, struct findings *f) {
    if (judge_reachable(s, f) < 0 || judge_replica_links(s, f) < 0 || judge_agreement(s, f) < 0 ||
        judge_membership(s, f) < 0 || judge_coverage(s, f) < 0 || judge_open_slots(s, f) < 0 ||
        judge_multiple_owners(s, f) < 0 || judge_node_timeout(s, f) < 0 || judge_formation_leftovers(s, f) < 0 ||
        judge_migrations(s, f) < 0) return -1;
    return 0;
}

/* What check says after a finding's text: the command that repairs it. */
static const char *check_hint(const struct finding *fd) {
    switch (fd->kind) {
    case FIND_MULTI_OWNER: return " (rcluster fix --search-multiple-owners)";
    case FIND_OPEN_SLOT: return fd->slot < 0 ? " (rcluster fix closes them)" : " (rcluster fix closes it)";
    case FIND_UNCOVERED: return " (rcluster fix assigns them)";
    case FIND_PARTIAL_MEMBER: return " (a join or removal left half done: rcluster del-node it, then add-node it again)";
    default: return "";
    }
}

/* Node indexes in report order: masters by their first slot, each followed by its
 * replicas, like the create table (the seed's view decides). */
static int *check_order(const struct session *s) {
    long *key = malloc((size_t)s->n * sizeof *key);
    int *order = malloc((size_t)s->n * sizeof *order);
    if (!key || !order) { free(key); free(order); return NULL; }
    for (int i = 0; i < s->n; i++) {
        const struct nodeinfo *ni = s->nodes[i].line, *m = ni;
        if (ni->flags & NF_SLAVE) m = cview_find((struct cview *)&s->map, ni->master);
        long first = m && m->nranges ? m->ranges[0][0] : CLUSTER_SLOTS;
        key[i] = (first * 2 + ((ni->flags & NF_SLAVE) ? 1 : 0)) * 65536 + ni->port;
        order[i] = i;
    }
    for (int i = 1; i < s->n; i++)   /* insertion sort: a cluster has at most a few hundred nodes */
        for (int j = i; j > 0 && key[order[j - 1]] > key[order[j]]; j--) { int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t; }
    free(key);
    return order;
}

static void check_print_json(const struct session *s, const int *order, const struct findings *f, int healthy) {
    sds servers = sess_servers(s);
    sds out = rc_sprintf("{\"ok\":%s,\"healthy\":%s,\"server\":", healthy ? "true" : "false", healthy ? "true" : "false");
    out = rc_cat(rc_json_str(out, servers), ",\"nodes\":[");
    sdsfree(servers);
    for (int k = 0; out && k < s->n; k++) {
        const struct snode *x = &s->nodes[order[k]];
        const struct nodeinfo *ni = x->line;
        sds slots = nodeinfo_slots_str(ni);
        out = rc_catprintf(out, "%s{\"id\":\"%s\",\"addr\":\"%s:%d\",\"role\":\"%s\",\"slots\":", k ? "," : "", ni->id, ni->ip, ni->port,
                           (ni->flags & NF_SLAVE) ? "replica" : "master");
        out = rc_json_str(out, slots);
        if (out) out = (ni->flags & NF_SLAVE) ? rc_catprintf(out, ",\"master\":\"%s\"", ni->master) : rc_cat(out, ",\"master\":null");
        if (out) out = rc_catprintf(out, ",\"reachable\":%s,\"cluster_state\":", x->up ? "true" : "false");
        out = rc_json_str(out, x->up ? x->state : NULL);
        if (out) out = rc_cat(out, ",\"link\":");
        out = rc_json_str(out, x->up && x->link[0] ? x->link : NULL);
        out = rc_json_str(rc_cat(out, ",\"server\":"), x->up && x->server[0] ? x->server : NULL);
        if (out) out = rc_cat(out, "}");
        sdsfree(slots);
    }
    if (out) out = rc_cat(out, "],\"problems\":[");
    int first = 1;
    for (int i = 0; out && i < f->n; i++) {
        if (f->v[i].warn) continue;
        out = rc_json_str(first ? out : rc_cat(out, ","), f->v[i].text);
        first = 0;
    }
    if (out) out = rc_cat(out, "]}\n");
    rc_json_out(s->rc, out);
    sdsfree(out);
}

static void check_print_text(const struct session *s, const int *order, const struct findings *f, int healthy) {
    for (int k = 0; k < s->n; k++) {
        const struct snode *x = &s->nodes[order[k]];
        const struct nodeinfo *ni = x->line;
        if (ni->flags & NF_SLAVE) {
            printf("S: %.40s %s:%d replica of %.8s, link %s\n", ni->id, ni->ip, ni->port, ni->master,
                   x->up ? (x->link[0] ? x->link : "?") : "unknown");
            continue;
        }
        sds slots = nodeinfo_slots_str(ni);
        int reps = 0;
        for (int j = 0; j < s->map.n; j++) if (strcmp(s->map.nodes[j].master, ni->id) == 0) reps++;
        printf("M: %.40s %s:%d slots:%s (%d slots) %d replica(s)\n", ni->id, ni->ip, ni->port,
               slots && sdslen(slots) ? slots : "-", nodeinfo_slot_count(ni), reps);
        sdsfree(slots);
    }
    sds servers = sess_servers(s);
    if (servers) printf("Server: %s\n", servers);
    sdsfree(servers);
    for (int i = 0; i < f->n; i++)
        if (!f->v[i].warn) printf("[ERR] %s%s\n", f->v[i].text, check_hint(&f->v[i]));
    if (healthy)
        printf("[OK] All nodes agree about slots configuration.\n[OK] No open slots.\n[OK] All %d slots covered.\n"
               "[OK] cluster_state:ok on all %d nodes.\n[OK] All replicas linked to their masters.\n", CLUSTER_SLOTS, s->n);
    printf("%s\n", healthy ? "healthy" : "NOT healthy");
}

/* The health of a running cluster, seen from every node: open a session from the seed,
 * run the judges, render their findings. Returns 0 healthy, 1 unhealthy (rc->err says
 * why), -1 when the seed cannot be asked at all. *server, when given, gets what the
 * nodes run ("Redis 7.0.15"; caller frees; NULL when nobody could be asked). */
static int check_cluster_server(struct rc *rc, const char *host, int port, enum check_report how, sds *server) {
    struct addr seed;
    memset(&seed, 0, sizeof seed);
    snprintf(seed.host, sizeof seed.host, "%s", host);
    snprintf(seed.ip, sizeof seed.ip, "%s", host);
    seed.port = port;
    struct session s;
    struct findings f = { 0 };
    int *order = NULL, problems = 0, ret = -1;
    if (sess_open(rc, &s, &seed) < 0) goto out;
    if (judge_health(&s, &f) < 0 || findings_group_open(&s, &f) < 0 || !(order = check_order(&s))) { rc_fail_oom(rc); goto out; }
    int first = -1;
    for (int i = 0; i < f.n; i++) {
        if (f.v[i].warn) { if (how == CHECK_REPORT) rc_warn(rc, "%s", f.v[i].text); continue; }
        if (first < 0) first = i;
        problems++;
    }
    if (how == CHECK_REPORT && rc->json) check_print_json(&s, order, &f, !problems);
    else if (how == CHECK_REPORT) check_print_text(&s, order, &f, !problems);
    if (problems) rc_fail(rc, "cluster at %s:%d is not healthy: %s%s", host, port, f.v[first].text, problems > 1 ? " (and more)" : "");
    if (server) *server = sess_servers(&s);
    ret = problems ? 1 : 0;
out:
    free(order);
    findings_free(&f);
    sess_free(&s);
    return ret;
}

static int check_cluster(struct rc *rc, const char *host, int port, enum check_report how) {
    return check_cluster_server(rc, host, port, how, NULL);
}

/* ====================================================================== */
/* 7b. Shared by the commands on running nodes (section 9; scale, the     */
/*     data commands): node specs, preflight, waits                       */
/* ====================================================================== */

/* What every command on a running cluster does before and after its own steps: open a
 * session from one address, name a member by id, prefix or address, refuse a cluster
 * that is not healthy enough to change (waiting for, or cancelling, atomic slot
 * migrations in flight), wait until it has settled again; and pick the master a new
 * replica joins. The commands themselves, one subsection each, are section 9. */

/* A session over every node of the cluster the node at addr_arg (host:port) belongs to;
 * -1 with rc->err when the address is bad or nothing answers there. */
static int day2_open(struct rc *rc, struct session *s, const char *addr_arg) {
    struct addr a;
    memset(s, 0, sizeof *s);
    if (addr_parse(rc, addr_arg, &a) < 0) return -1;
    return sess_open(rc, s, &a);
}

/* The id of the node that answers at a (CLUSTER MYID, else the myself line of its
 * CLUSTER NODES: older servers) into id[41]; -1 with rc->err saying why not. */
static int node_ask_id(struct rc *rc, const struct addr *a, char id[41]) {
    struct rconn c;
    int ret = -1;
    if (rconn_open(rc, &c, a->ip, a->port) < 0) { rconn_free(&c); return -1; }
    sds v = rconn_call_str(rc, &c, "CLUSTER MYID", "CLUSTER", "MYID", RESP_END);
    if (!v || sdslen(v) != 40) {
        struct cview view = { 0 };
        sdsfree(v);
        v = rconn_call_str(rc, &c, "CLUSTER NODES", "CLUSTER", "NODES", RESP_END);
        const struct nodeinfo *me = v && cview_parse(v, sdslen(v), &view) == 0 ? cview_myself(&view) : NULL;
        if (me) { memcpy(id, me->id, 41); ret = 0; }
        else if (v) rc_fail(rc, "%s: cannot parse its CLUSTER NODES reply", c.name);
        cview_free(&view);
    } else {
        memcpy(id, v, 41);
        ret = 0;
    }
    sdsfree(v);
    rconn_free(&c);
    return ret;
}

/* A member reached at an address that is not the one it announces (a published port, a
 * hostname, another interface of it): the address we reach it by, else the node there
 * asked who it is. Returns the index; -1 (rc->err says why) when nothing answers there
 * or what answers is no member. */
static int sess_find_reached(struct session *s, const char *spec) {
    struct addr a;
    char id[41];
    if (addr_split(spec, &a) < 0) return rc_fail(s->rc, "not an address");
    if (net_resolve(s->rc, a.host, a.ip, sizeof a.ip) < 0) return -1;
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if ((!strcmp(x->conn_ip, a.ip) && x->conn_port == a.port) || (!strcmp(x->ip, a.ip) && x->port == a.port)) return i;
    }
    if (node_ask_id(s->rc, &a, id) < 0) return -1;
    int i = sess_index_of(s, id);
    if (i < 0) return rc_fail(s->rc, "the node there (%.40s) is not a member", id);
    return i;
}

/* A node spec that must name a member: the error says which and why. */
static int day2_resolve(struct session *s, const char *what, const char *spec) {
    int i = sess_find(s, spec);
    if (i == -1 && strchr(spec, ':')) {
        i = sess_find_reached(s, spec);
        if (i >= 0) return i;
        return rc_fail_as(s->rc, RC_ERR_USAGE, "%s %s: no node of this cluster answers there (%s)", what, spec, s->rc->err ? s->rc->err : "?");
    }
    if (i == -2) { return rc_fail_as(s->rc, RC_ERR_USAGE, "%s %s: matches more than one node; give more of the id", what, spec); }
    if (i < 0) { return rc_fail_as(s->rc, RC_ERR_USAGE, "%s %s: no such node in this cluster (give a node id, an id prefix or ip:port)", what, spec); }
    return i;
}

/* day2_resolve for a node that must be a reachable master (a usage error for a replica,
 * unreachable for one that does not answer). */
static int day2_resolve_master(struct session *s, const char *what, const char *spec) {
    int i = day2_resolve(s, what, spec);
    if (i < 0) return -1;
    struct snode *x = &s->nodes[i];
    if (!snode_is_master(x)) {
        return rc_fail_as(s->rc, RC_ERR_USAGE, "%s %s: %s:%d is a replica (of %.40s); give a master", what, spec, x->ip, x->port, snode_master_id(x));
    }
    if (!x->up) return rc_fail_as(s->rc, RC_ERR_UNREACHABLE, "%s %s: %s:%d is not reachable: %s", what, spec, x->ip, x->port, x->err);
    return i;
}

/* Wait until no atomic slot migration is in flight (one an earlier run started, say
 * before a SIGKILL: the servers finish it by themselves); -1 when one still is. */
static int day2_wait_migrations(struct session *s, struct rc_deadline until) {
    if (!sess_migrations(s)) return 0;
    rc_progress(s->rc, "Waiting for %d atomic slot migration(s) in progress to end", sess_migrations(s));
    while (sess_migrations(s) && !rc_deadline_passed(until) && !rc_interrupted()) {
        rc_sleep_ms(200);
        sess_refresh(s);
    }
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].up && s->nodes[i].migrations)
            return rc_fail(s->rc, "%s:%d: atomic slot migration still in progress after %.0f s: %s; wait, or cancel it with `rcluster fix`",
                           s->nodes[i].ip, s->nodes[i].port, until.seconds, s->nodes[i].migration);
    return 0;
}

/* Cancel every atomic slot migration in flight: Valkey on its source
 * (CANCELSLOTMIGRATIONS), Redis on its destination (MIGRATION CANCEL ALL); a node with
 * nothing of its own to cancel answers an error, which is no failure. */
static void sess_cancel_migrations(struct session *s) {
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (!x->up || !x->migrations) continue;
        if (x->caps & SRV_ATOMIC_VALKEY) sess_queue(s, x, "CLUSTER", "CANCELSLOTMIGRATIONS", RESP_END);
        else sess_queue(s, x, "CLUSTER", "MIGRATION", "CANCEL", "ALL", RESP_END);
    }
    sess_drain_all(s, "cancelling atomic slot migrations");
    sess_refresh(s);
}

/* Before changing anything: every master reachable (but `ignore`), every slot covered,
 * views agree, no open slot (unless allow_open). Warnings are printed, problems refuse. */
static int day2_preflight(struct session *s, int allow_open, int ignore) {
    struct rc *rc = s->rc;
    struct findings f = { 0 };
    /* A master met a moment ago (redis-cli add-node) keeps cluster_state:fail for its
     * rejoin delay, up to 5 s: give such states a little time before refusing. */
    if (!s->record && day2_wait_migrations(s, s->deadline) < 0) return -1;
    int64_t deadline = rc_deadline_within(s->deadline, 10).at_ms;
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < s->n; i++)
            if (i != ignore && s->nodes[i].up && strcmp(s->nodes[i].state, "ok") != 0) waiting++;
        if (!waiting || rc_now_ms() >= deadline || rc_interrupted()) break;
        rc_sleep_ms(200);
        sess_refresh(s);
    }
    if (judge_all(s, &f, 0) < 0) { findings_free(&f); return rc_fail_oom(rc); }
    int ret = 0;
    for (int i = 0; i < f.n && ret == 0; i++) {
        struct finding *x = &f.v[i];
        int about_ignored = x->node >= 0 && x->node == ignore;
        if (x->warn || about_ignored) { if (x->warn) rc_warn(rc, "%s", x->text); continue; }
        switch (x->kind) {
        case FIND_UNREACHABLE:
            if (snode_is_master(&s->nodes[x->node]) && snode_slot_count(&s->nodes[x->node]) > 0)
                ret = rc_fail_kind_msg(rc, s->nodes[x->node].err_kind, rc_sprintf("master %s; nothing changed", x->text));
            else rc_warn(rc, "%s", x->text);
            break;
        case FIND_FAILING:
            if (ignore < 0 || x->peer != ignore) rc_warn(rc, "%s", x->text);
            break;
        case FIND_OPEN_SLOT:
            /* Open on a replica only (Valkey replicates SETSLOT; a cut move or a replica
             * that changed masters can keep it): no move reads it, the master's next
             * SETSLOT overwrites it, and fix closes it. */
            if (x->node >= 0 && !snode_is_master(&s->nodes[x->node])) rc_warn(rc, "%s (a replica; `rcluster fix` closes it)", x->text);
            else if (!allow_open) ret = rc_fail(rc, "%s; run `rcluster fix` first; nothing changed", x->text);
            break;
        default:
            if (x->kind != FIND_OPEN_SLOT && !(allow_open && x->kind == FIND_UNCOVERED))
                ret = rc_fail(rc, "%s; nothing changed (see rcluster check)", x->text);
        }
    }
    findings_free(&f);
    return ret;
}

/* Wait until the views agree, no slot is open and every slot is covered. */
static int day2_wait_settled(struct session *s, struct rc_deadline until, int multi) {
    int pause = 10;
    for (;;) {
        sess_refresh(s);
        struct findings f = { 0 };
        if (judge_open_slots(s, &f) < 0 || judge_coverage(s, &f) < 0 || judge_agreement(s, &f) < 0 ||
            (multi && judge_multiple_owners(s, &f) < 0)) { findings_free(&f); return rc_fail_oom(s->rc); }
        int bad = 0;
        for (int i = 0; i < f.n; i++) bad += f.v[i].kind != FIND_FAILING;
        if (!bad) { findings_free(&f); return 0; }
        if (rc_interrupted() || rc_deadline_passed(until)) {
            int first = 0;
            while (first < f.n && f.v[first].kind == FIND_FAILING) first++;
            rc_fail(s->rc, "the cluster did not settle within %.0f s: %s", until.seconds, first < f.n ? f.v[first].text : "?");
            findings_free(&f);
            return -1;
        }
        findings_free(&f);
        rc_sleep_ms(pause);
        if (pause < 100) pause *= 2;
    }
}

/* The master with the fewest replicas, preferring one on another host than `host`;
 * with_empty: masters without slots count too (add-node, as redis-cli picks). */
static int sess_pick_master(const struct session *s, int skip, const char *host, int with_empty) {
    int best = -1, bestc = 0, bestfar = 0;
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (i == skip || !snode_is_master(x) || !x->up || (!with_empty && snode_slot_count(x) == 0)) continue;
        int c = sess_count_replicas(s, x->id), far = !host || strcmp(x->ip, host) != 0;
        if (best < 0 || c < bestc || (c == bestc && far > bestfar)) { best = i; bestc = c; bestfar = far; }
    }
    return best;
}

/* ====================================================================== */
/* 8. Node configs and data layout: addresses, redis.conf, directories     */
/* ====================================================================== */

/* Layout of a cluster's data directory (DIR defaults to /var/lib/rcluster/NAME as root,
 * else ~/.local/share/rcluster/NAME):
 *   DIR/.rcluster              marker naming the cluster; --purge deletes nothing without it
 *   DIR/rcluster.json          the manifest: every option that shaped the cluster (0600)
 *   DIR/node-I/.rcluster-node  marks a node directory rcluster made (undo removes only those)
 *   DIR/node-I/conf/redis.conf mounted at /etc/redis (0700 dir, 0600 file; never rewritten)
 *   DIR/node-I/data            mounted at /data: nodes.conf, appendonlydir
 * Node I (1-based) lives at host number 10+I of the subnet (gateway .1) and publishes
 * port BASE+I-1 and bus port BASE+I-1+10000. */
#define CONF_MARKER        ".rcluster"
#define CONF_MANIFEST      "rcluster.json"   /* what shaped the cluster (see up_manifest_render) */
#define CONF_ROOT_UID      999     /* uid/gid containers run as when rcluster runs as root */
#define CONF_FIRST_HOST    10

/* ---- pure helpers: names, addresses, directives ---------------------------- */

/* Docker's rule for container and network names: [a-zA-Z0-9][a-zA-Z0-9_.-]*. The
 * length bound leaves room for "-NNN" and keeps paths and labels short. */
static int conf_valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 48 || !isalnum((unsigned char)s[0])) return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-') return 0;
    return 1;
}

/* Dotted-quad IPv4 to a host-order integer; strict (no leading zeros, 4 parts). */
static int conf_parse_ipv4(const char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int part = 0; part < 4; part++) {
        if (!isdigit((unsigned char)*s)) return -1;
        unsigned n = 0;
        int digits = 0;
        while (isdigit((unsigned char)*s)) {
            if (digits && n == 0) return -1;   /* leading zero */
            n = n * 10 + (unsigned)(*s++ - '0');
            if (++digits > 3 || n > 255) return -1;
        }
        v = v << 8 | n;
        if (part < 3 && *s++ != '.') return -1;
    }
    if (*s) return -1;
    *out = v;
    return 0;
}

static void conf_format_ipv4(uint32_t a, char out[16]) {
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static uint32_t conf_mask(int prefix) { return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix); }

/* "10.38.0.0/16" -> network and prefix length. Host bits must be zero so that what
 * the user typed is exactly the network Docker will create. */
static int conf_parse_cidr(const char *s, uint32_t *net, int *prefix) {
    const char *slash = strchr(s, '/');
    if (!slash || slash - s > 15) return -1;
    char ip[16];
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = 0;
    long p;
    if (conf_parse_ipv4(ip, net) < 0 || rc_parse_int(slash + 1, 0, 32, &p) < 0) return -1;
    *prefix = (int)p;
    if (*net & ~conf_mask(*prefix)) return -1;
    return 0;
}

/* Do two IPv4 networks share any address? */
static int conf_cidr_overlap(uint32_t a, int ap, uint32_t b, int bp) {
    int p = ap < bp ? ap : bp;
    return (a & conf_mask(p)) == (b & conf_mask(p));
}

/* Is the whole network inside RFC 1918 space (10/8, 172.16/12, 192.168/16)? */
static int conf_cidr_is_private(uint32_t net, int prefix) {
    static const struct { uint32_t net; int prefix; } priv[] = {
        { 0x0a000000u, 8 }, { 0xac100000u, 12 }, { 0xc0a80000u, 16 } };
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++)
        if (prefix >= priv[i].prefix && (net & conf_mask(priv[i].prefix)) == priv[i].net) return 1;
    return 0;
}

/* Address of host number `host` in the network; -1 if it is the broadcast address or
 * beyond (or the network is too small). */
static int conf_cidr_host(uint32_t net, int prefix, uint32_t host, char out[16]) {
    uint64_t size = 1ULL << (32 - prefix);
    if (prefix > 30 || host == 0 || (uint64_t)host >= size - 1) return -1;
    conf_format_ipv4(net + host, out);
    return 0;
}

/* Directives rcluster sets itself: overriding them would break the container wiring,
 * the cluster or the password handling. appendonly and everything else may be
 * changed (a later line wins in redis.conf). */
static const char *const conf_owned[] = {
    "port", "bind", "cluster-enabled", "cluster-config-file", "cluster-port", "dir",
    "requirepass", "masterauth", "masteruser", "cluster-node-timeout", "include",
    "rename-command", "daemonize", "tls-port", "tls-cluster", "tls-replication", "aclfile", "unixsocket",
};

/* Check one --config line: "directive value" on one line, directive not owned by
 * rcluster. Returns NULL if fine, else a static reason. Pure. */
static const char *conf_check_directive(const char *line) {
    for (const char *c = line; *c; c++)
        if ((unsigned char)*c < ' ' && *c != '\t') return "must be a single line without control characters";
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    const char *name = p;
    while (*p && *p != ' ' && *p != '\t') {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') return "expected 'directive value'";
        p++;
    }
    size_t nlen = (size_t)(p - name);
    while (*p == ' ' || *p == '\t') p++;
    if (nlen == 0 || !*p) return "expected 'directive value'";
    if (nlen >= 17 && strncasecmp(name, "cluster-announce-", 17) == 0) return "cluster-announce-* is set by rcluster (see --announce)";
    for (size_t i = 0; i < sizeof conf_owned / sizeof conf_owned[0]; i++)
        if (strlen(conf_owned[i]) == nlen && strncasecmp(name, conf_owned[i], nlen) == 0) {
            if (!strcmp(conf_owned[i], "cluster-node-timeout")) return "use --node-timeout MS instead";
            if (!strcmp(conf_owned[i], "requirepass") || !strcmp(conf_owned[i], "masterauth"))
                return "use --password-file instead";
            return "is set by rcluster and cannot be overridden";
        }
    return NULL;
}

/* What one node's redis.conf says. */
struct conf_params {
    const char *announce_ip;
    int announce_port, announce_bus;
    long node_timeout_ms;
    const char *password;          /* NULL: none; pass "***" to render for display */
    const char *user;              /* ACL user replicas sync as (needs password), or NULL */
    char *const *extra;            /* validated --config lines */
    int nextra;
    int port;                      /* 0: 6379 (bridge mode); host mode: the node's host port */
    const char *bind;              /* NULL: 0.0.0.0 (bridge mode); host mode: --bind */
};

/* Render a node's redis.conf from the one template. NULL on OOM. The password must
 * not contain newlines (validated with the options). */
static sds conf_render(const struct conf_params *cp) {
    sds s = rc_sprintf(
        "# Written by rcluster " RCLUSTER_VERSION " from its template; only update and set-timeout rewrite it.\n"
        "port %d\n"
        "bind %s\n"
        "protected-mode no\n"
        "cluster-enabled yes\n"
        "cluster-config-file nodes.conf\n"
        "cluster-node-timeout %ld\n"
        "cluster-announce-ip %s\n"
        "cluster-announce-port %d\n"
        "cluster-announce-bus-port %d\n"
        "appendonly yes\n"
        "dir /data\n",
        cp->port ? cp->port : 6379, cp->bind ? cp->bind : "0.0.0.0",
        cp->node_timeout_ms, cp->announce_ip, cp->announce_port, cp->announce_bus);
    if (s && cp->password) {
        /* Quoted so that spaces or '#' survive Redis' config tokenizer. */
        sds q0 = sdsempty();
        sds q = q0 ? sdscatrepr(q0, cp->password, strlen(cp->password)) : NULL;
        if (!q) { sdsfree(q0); sdsfree(s); return NULL; }
        s = rc_catprintf(s, "requirepass %s\nmasterauth %s\n", q, q);
        sdsfree(q);
    }
    if (s && cp->password && cp->user) {
        /* The ACL user the nodes authenticate as, with the same password; replicas
         * sync as it (masteruser), so AUTH user password works everywhere. */
        sds rule = rc_sprintf(">%s", cp->password);
        sds q0 = sdsempty();
        sds q = rule && q0 ? sdscatrepr(q0, rule, sdslen(rule)) : NULL;
        if (!q) sdsfree(q0);
        s = q ? rc_catprintf(s, "user %s on %s ~* &* +@all\nmasteruser %s\n", cp->user, q, cp->user) : (sdsfree(s), NULL);
        sdsfree(q);
        sdsfree(rule);
    }
    for (int i = 0; s && i < cp->nextra; i++) s = rc_catprintf(s, "%s\n", cp->extra[i]);
    return s;
}

/* Default data directory for a cluster. NULL on OOM or without a HOME. */
static sds conf_default_data_dir(const char *name) {
    if (geteuid() == 0) return rc_sprintf("/var/lib/rcluster/%s", name);
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    return rc_sprintf("%s/.local/share/rcluster/%s", home, name);
}

/* The uid:gid containers run as: the invoking user (so a user can read and purge their
 * data), or a fixed unprivileged id when invoked as root. */
static void conf_container_ids(uid_t *uid, gid_t *gid) {
    if (geteuid() == 0) { *uid = CONF_ROOT_UID; *gid = CONF_ROOT_UID; }
    else { *uid = getuid(); *gid = getgid(); }
}

/* ---- directories: create with undo, remove trees -------------------------- */

/* What this run created, in creation order, so a failed run removes exactly that and
 * never anything that existed before: files are unlinked, directories only rmdir'ed
 * (kept when something else is in them), and only a node directory that this run made
 * and marked with CONF_NODE_MARKER is removed with everything in it. */
enum { UNDO_DIR, UNDO_FILE, UNDO_NODE_TREE };
#define CONF_NODE_MARKER ".rcluster-node"

struct conf_undo {
    sds *paths;
    int *kinds;
    int n, cap;
};

static int conf_undo_add(struct conf_undo *u, const char *path, int kind) {
    if (u->n == u->cap) {
        int cap = u->cap ? u->cap * 2 : 16;
        sds *p = realloc(u->paths, sizeof *p * (size_t)cap);
        if (!p) return -1;
        u->paths = p;
        int *k = realloc(u->kinds, sizeof *k * (size_t)cap);
        if (!k) return -1;
        u->kinds = k;
        u->cap = cap;
    }
    if (!(u->paths[u->n] = sdsnew(path))) return -1;
    u->kinds[u->n++] = kind;
    return 0;
}

static void conf_undo_free(struct conf_undo *u) {
    for (int i = 0; i < u->n; i++) sdsfree(u->paths[i]);
    free(u->paths);
    free(u->kinds);
    memset(u, 0, sizeof *u);
}

/* Index of the undo entry for exactly `path`, or -1. */
static int conf_undo_find(const struct conf_undo *u, const char *path) {
    for (int i = 0; i < u->n; i++) if (!strcmp(u->paths[i], path)) return i;
    return -1;
}

/* Remove dirfd-relative `name` and everything below it without following symlinks. */
static int conf_remove_at(int dirfd, const char *name, int depth) {
    if (depth > 64) { errno = ELOOP; return -1; }
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return -1;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *dir = fdopendir(fd);
    if (!dir) { close(fd); return -1; }
    int ret = 0;
    struct dirent *e;
    while (ret == 0 && (e = readdir(dir)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        ret = conf_remove_at(fd, e->d_name, depth + 1);
    }
    closedir(dir);
    if (ret == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) ret = -1;
    return ret;
}

/* rm -rf path (no symlink following). */
static int conf_remove_tree(struct rc *rc, const char *path) {
    if (conf_remove_at(AT_FDCWD, path, 0) < 0) return rc_fail(rc, "removing %s: %s", path, strerror(errno));
    return 0;
}

/* Is `path` inside a node tree that the undo removes as a whole? */
static int conf_undo_covered(const struct conf_undo *u, const char *path) {
    for (int i = 0; i < u->n; i++) {
        size_t len = sdslen(u->paths[i]);
        if (u->kinds[i] == UNDO_NODE_TREE && !strncmp(path, u->paths[i], len) && path[len] == '/') return 1;
    }
    return 0;
}

/* Undo one entry; -1 with rc->err set when something could not be removed. */
static int conf_undo_one(struct rc *rc, const struct conf_undo *u, int i) {
    const char *path = u->paths[i];
    if (u->kinds[i] == UNDO_FILE)
        return unlink(path) < 0 && errno != ENOENT ? rc_fail(rc, "removing %s: %s", path, strerror(errno)) : 0;
    if (u->kinds[i] == UNDO_DIR)
        return rmdir(path) < 0 && errno != ENOENT ? rc_fail(rc, "kept %s: %s", path, strerror(errno)) : 0;
    sds marker = rc_sprintf("%s/" CONF_NODE_MARKER, path);
    if (!marker) return rc_fail_oom(rc);
    int marked = access(marker, F_OK) == 0;
    sdsfree(marker);
    if (!marked) return rc_fail(rc, "kept %s: it no longer carries rcluster's " CONF_NODE_MARKER " marker", path);
    return conf_remove_tree(rc, path);
}

/* Undo: remove what this run created, newest first. Best effort; warns. */
static void conf_undo_run(struct rc *rc, struct conf_undo *u) {
    struct rc_err_saved saved = rc_err_save(rc);
    for (int i = u->n - 1; i >= 0; i--)
        if (!conf_undo_covered(u, u->paths[i]) && conf_undo_one(rc, u, i) < 0) rc_warn(rc, "%s", rc->err);
    rc_err_restore(rc, &saved);
    for (int i = 0; i < u->n; i++) sdsfree(u->paths[i]);
    u->n = 0;
}

/* mkdir -p with `mode` on the directories it creates, recording them in u. */
static int conf_mkdirs(struct rc *rc, const char *path, mode_t mode, struct conf_undo *u) {
    sds p = sdsnew(path);
    if (!p) return rc_fail_oom(rc);
    int ret = 0;
    for (size_t i = 1; ret == 0 && i <= sdslen(p); i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, mode) == 0) {
            if (chmod(p, mode) < 0 || (u && conf_undo_add(u, p, UNDO_DIR) < 0)) ret = rc_fail(rc, "creating %s: %s", p, strerror(errno));
        } else if (errno != EEXIST) {
            ret = rc_fail(rc, "creating %s: %s", p, strerror(errno));
        } else {
            struct stat st;
            if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) ret = rc_fail(rc, "creating %s: exists and is not a directory", p);
        }
        p[i] = c;
    }
    sdsfree(p);
    return ret;
}

/* ---- the cluster's data directory ---------------------------------------------- */

static sds conf_node_dir(const char *data_dir, int i, const char *sub) {
    return rc_sprintf("%s/node-%d%s%s", data_dir, i, sub ? "/" : "", sub ? sub : "");
}

/* The marker file that claims DIR and the text naming cluster `name` in it (caller
 * frees both). -1 on OOM, with both NULL. */
static int conf_marker(const char *dir, const char *name, sds *marker, sds *want) {
    *marker = rc_sprintf("%s/" CONF_MARKER, dir);
    *want = rc_sprintf("cluster=%s\n", name);
    if (*marker && *want) return 0;
    sdsfree(*marker);
    sdsfree(*want);
    *marker = *want = NULL;
    return -1;
}

/* Create DIR (recording what is new) and claim it with the marker; refuse a DIR that
 * another cluster's marker claims. */
static int conf_claim_data_dir(struct rc *rc, const char *dir, const char *name, struct conf_undo *u) {
    if (strpbrk(dir, ":,\n"))
        return rc_fail(rc, "data dir %s: ':', ',' and newlines cannot appear in a Docker bind mount path", dir);
    if (dir[0] != '/') return rc_fail(rc, "data dir %s: must be an absolute path", dir);
    if (conf_mkdirs(rc, dir, 0755, u) < 0) return rc_wrap(rc, "data dir");
    if (access(dir, W_OK | X_OK) < 0) return rc_fail(rc, "data dir %s is not writable: %s", dir, strerror(errno));
    sds marker, want;
    if (conf_marker(dir, name, &marker, &want) < 0) return rc_fail_oom(rc);
    int ret = 0;
    if (access(marker, F_OK) == 0) {
        sds have = rc_read_file(rc, marker, 4096);
        if (!have) ret = -1;
        else if (strcmp(have, want) != 0)
            ret = rc_fail(rc, "data dir %s belongs to another cluster (%s says '%.*s'); choose another --data-dir",
                          dir, marker, (int)strcspn(have, "\n"), have);
        sdsfree(have);
    } else {
        ret = rc_write_file(rc, marker, want, sdslen(want), 0644);
        if (ret == 0 && conf_undo_add(u, marker, UNDO_FILE) < 0) ret = rc_fail_oom(rc);
    }
    sdsfree(marker);
    sdsfree(want);
    return ret;
}

/* Write a file this run creates (it must not exist: nothing is ever rewritten) and
 * record it for the undo. */
static int conf_create_file(struct rc *rc, const char *path, const char *text, mode_t mode, struct conf_undo *u) {
    if (!path || !text) return rc_fail_oom(rc);
    if (access(path, F_OK) == 0) return rc_fail(rc, "not rewriting %s: it exists and this run did not create it", path);
    if (rc_write_file(rc, path, text, strlen(text), mode) < 0) return -1;
    return conf_undo_add(u, path, UNDO_FILE) < 0 ? rc_fail_oom(rc) : 0;
}

/* What a file rcluster rewrites keeps of its former self: FILE.previous. */
#define CONF_PREVIOUS ".previous"

/* Write path with text (atomically), keeping what it held as path.previous (a hard
 * link to the old file, so owner and mode stay); nothing when it already says text.
 * With `node`, the new file belongs to the user the containers run as. 1 when written,
 * 0 when it said text already, -1 on failure. */
static int conf_rewrite_file(struct rc *rc, const char *path, const char *text, int node) {
    sds old = access(path, F_OK) == 0 ? rc_read_file(rc, path, 1 << 20) : sdsempty();
    sds prev = rc_sprintf("%s" CONF_PREVIOUS, path);
    int ret = old && prev ? 0 : -1;
    if (ret == 0 && strcmp(old, text) != 0) {
        if (sdslen(old) && (unlink(prev) < 0 && errno != ENOENT)) ret = rc_fail_errno(rc, prev);
        if (ret == 0 && sdslen(old) && link(path, prev) < 0) ret = rc_fail_errno(rc, prev);
        if (ret == 0) ret = rc_write_file(rc, path, text, strlen(text), 0600);
        uid_t uid;
        gid_t gid;
        conf_container_ids(&uid, &gid);
        if (ret == 0 && node && chown(path, uid, gid) < 0 && geteuid() == 0) ret = rc_fail_errno(rc, path);
        if (ret == 0) ret = 1;
    }
    sdsfree(old);
    sdsfree(prev);
    return ret;
}

/* Does DIR/node-i/data/nodes.conf exist (the node has been part of a cluster)? */
static int conf_node_has_state(const char *data_dir, int i) {
    sds p = rc_sprintf("%s/node-%d/data/nodes.conf", data_dir, i);
    int r = p && access(p, F_OK) == 0;
    sdsfree(p);
    return r;
}

/* Create node i's conf and data directories (those missing) and its redis.conf, which
 * must not exist yet. New directories are recorded in u and given to the container's
 * uid; a node directory this run creates is marked so that only it can be removed
 * as a whole; the conf dir is 0700 and redis.conf 0600 from its first byte. */
static int conf_write_node(struct rc *rc, const char *data_dir, int i, const char *text, struct conf_undo *u) {
    uid_t uid;
    gid_t gid;
    conf_container_ids(&uid, &gid);
    sds node = conf_node_dir(data_dir, i, NULL), cdir = conf_node_dir(data_dir, i, "conf");
    sds ddir = conf_node_dir(data_dir, i, "data"), file = cdir ? rc_sprintf("%s/redis.conf", cdir) : NULL;
    if (!node || !cdir || !ddir || !file) {
        sdsfree(node); sdsfree(cdir); sdsfree(ddir); sdsfree(file);
        return rc_fail_oom(rc);
    }
    int ret = 0, first = u->n;
    if (ret == 0) ret = conf_mkdirs(rc, node, 0755, u);
    int made = ret == 0 ? conf_undo_find(u, node) : -1;
    if (made >= first) {
        sds marker = rc_sprintf("%s/" CONF_NODE_MARKER, node);
        ret = marker ? rc_write_file(rc, marker, "", 0, 0644) : rc_fail_oom(rc);
        if (ret == 0) u->kinds[made] = UNDO_NODE_TREE;
        sdsfree(marker);
    }
    if (ret == 0) ret = conf_mkdirs(rc, cdir, 0700, u);
    if (ret == 0) ret = conf_mkdirs(rc, ddir, 0700, u);
    for (int k = first; ret == 0 && k < u->n; k++)
        if (strcmp(u->paths[k], node) != 0 && chown(u->paths[k], uid, gid) < 0 && geteuid() == 0)
            ret = rc_fail(rc, "chown %s: %s", u->paths[k], strerror(errno));
    if (ret == 0) ret = conf_create_file(rc, file, text, 0600, u);
    if (ret == 0 && chown(file, uid, gid) < 0 && geteuid() == 0) ret = rc_fail(rc, "chown %s: %s", file, strerror(errno));
    sdsfree(node);
    sdsfree(cdir);
    sdsfree(ddir);
    sdsfree(file);
    return ret;
}

/* Whether a name in a data dir is a node dir that scale set aside ("node-4.removed-
 * 20261202-004152"), which only rcluster makes. Pure. */
static int conf_is_set_aside(const char *name) {
    const char *p = name;
    if (strncmp(p, "node-", 5) != 0) return 0;
    p += 5;
    if (!isdigit((unsigned char)*p)) return 0;
    while (isdigit((unsigned char)*p)) p++;
    if (strncmp(p, ".removed-", 9) != 0) return 0;
    p += 9;
    return strlen(p) == 15 && p[8] == '-' && strspn(p, "0123456789") == 8 && strspn(p + 9, "0123456789") == 6;
}

/* --purge: the node dirs that scale set aside go too. */
static int conf_purge_set_aside(struct rc *rc, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int ret = 0;
    for (struct dirent *e; ret == 0 && (e = readdir(d)); ) {
        if (!conf_is_set_aside(e->d_name)) continue;
        sds path = rc_sprintf("%s/%s", dir, e->d_name);
        ret = path ? conf_remove_tree(rc, path) : rc_fail_oom(rc);
        sdsfree(path);
    }
    closedir(d);
    return ret;
}

/* --purge: delete DIR/node-1..n, the node dirs scale set aside and the marker, then DIR
 * itself if nothing else is in it. Refuses a DIR without our marker: it may be a
 * directory the user pointed at. */
static int conf_purge(struct rc *rc, const char *dir, const char *name, int nodes) {
    sds marker, want;
    if (conf_marker(dir, name, &marker, &want) < 0) return rc_fail_oom(rc);
    int ret = 0;
    sds have = NULL;
    if (access(dir, F_OK) < 0) { rc_progress(rc, "Data dir %s does not exist; nothing to purge", dir); goto out; }
    if (!(have = rc_read_file(rc, marker, 4096)) || strcmp(have, want) != 0) {
        ret = rc_fail(rc, "not purging %s: it has no %s marker naming cluster %s", dir, CONF_MARKER, name);
        goto out;
    }
    for (int i = 1; ret == 0 && i <= nodes; i++) {
        sds node = conf_node_dir(dir, i, NULL);
        ret = node ? conf_remove_tree(rc, node) : rc_fail_oom(rc);
        sdsfree(node);
    }
    if (ret == 0) ret = conf_purge_set_aside(rc, dir);
    static const char *const manifests[] = { CONF_MANIFEST, CONF_MANIFEST CONF_PREVIOUS };   /* the one update kept */
    for (size_t k = 0; ret == 0 && k < sizeof manifests / sizeof manifests[0]; k++) {
        sds manifest = rc_sprintf("%s/%s", dir, manifests[k]);
        if (!manifest) ret = rc_fail_oom(rc);
        else if (unlink(manifest) < 0 && errno != ENOENT) ret = rc_fail(rc, "removing %s: %s", manifest, strerror(errno));
        sdsfree(manifest);
    }
    if (ret == 0 && unlink(marker) < 0) ret = rc_fail(rc, "removing %s: %s", marker, strerror(errno));
    if (ret == 0 && rmdir(dir) < 0) rc_warn(rc, "purged rcluster's files; kept %s itself: it holds files rcluster did not make (%s)", dir, strerror(errno));
    else if (ret == 0) rc_progress(rc, "Purged %s", dir);
out:
    sdsfree(have);
    sdsfree(marker);
    sdsfree(want);
    return ret;
}

/* Highest node-I directory under DIR (so --purge finds nodes even without containers). */
static int conf_count_node_dirs(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int max = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long v;
        if (strncmp(e->d_name, "node-", 5) == 0 && rc_parse_int(e->d_name + 5, 1, 100000, &v) == 0 && v > max) max = (int)v;
    }
    closedir(d);
    return max;
}

/* ====================================================================== */
/* 9. Commands on running nodes: create, check, info, call, add-node,     */
/*    del-node, reshard, rebalance, fix, set-timeout                      */
/* ====================================================================== */

/* One subsection per command, each in the order it runs: usage and option table, plan,
 * preflight, apply, wait, report. A command reads its options (left as parsed), makes
 * its plan, checks the cluster (section 7b), applies it (a dry run records the plan and
 * stops), waits until the nodes agree and fills its result, from which its one report
 * function writes the text or the --json document. The day-2 option table and parser
 * come first (scale and the data commands use them too). */

/* ---- options of the commands on running nodes (also scale's and the data commands') ---- */

/* Defined with the other option parsing in section 10: the common options, then a command's table. */
static int cmd_parse_opts(struct rc *rc, int argc, char **argv, const struct option *extra, int nextra,
                          void (*usage)(FILE *), int (*on_opt)(struct rc *, int, const char *, void *), void *ctx);

#define DAY2_MAX_WEIGHTS 64

/* Options of every day-2 command; each command lists the ones it accepts. */
struct day2_opts {
    const char *from, *to;      /* node specs: id, id prefix or ip:port; from may be "all" or a list */
    long slots;
    struct move_opts mo;
    int dry_run;
    int multi_owners;           /* --search-multiple-owners */
    int use_empty;              /* --use-empty-masters */
    double threshold;           /* --threshold PCT */
    int simulate;
    int replica;                /* add-node --replica */
    const char *master_id;
    int only_masters, only_replicas;
    int nweights;
    struct { const char *spec; double w; } weights[DAY2_MAX_WEIGHTS];
};

/* getopt codes of the day-2 options (above the common ones and create/check's). */
enum { OPT_D2_FROM = OPT_FIRST_COMMAND_OPT + 50, OPT_D2_TO, OPT_D2_SLOTS, OPT_D2_PIPELINE, OPT_D2_MIGRATE_TIMEOUT,
       OPT_D2_REPLACE, OPT_D2_DRY_RUN, OPT_D2_MULTI, OPT_D2_EMPTY, OPT_D2_THRESHOLD, OPT_D2_SIMULATE, OPT_D2_REPLICA,
       OPT_D2_MASTER_ID, OPT_D2_ONLY_MASTERS, OPT_D2_ONLY_REPLICAS, OPT_D2_WEIGHT, OPT_D2_YES, OPT_D2_WINDOW, OPT_D2_MIGRATION };

#define D2_OPT(name, arg, code) { name, arg, NULL, code }
#define D2_MOVE_OPTS \
    D2_OPT("pipeline", required_argument, OPT_D2_PIPELINE), D2_OPT("cluster-pipeline", required_argument, OPT_D2_PIPELINE), \
    D2_OPT("cluster-timeout", required_argument, OPT_D2_MIGRATE_TIMEOUT), D2_OPT("migrate-timeout", required_argument, OPT_D2_MIGRATE_TIMEOUT), \
    D2_OPT("replace", no_argument, OPT_D2_REPLACE), D2_OPT("cluster-replace", no_argument, OPT_D2_REPLACE), \
    D2_OPT("dry-run", no_argument, OPT_D2_DRY_RUN), D2_OPT("cluster-yes", no_argument, OPT_D2_YES), \
    D2_OPT("window", required_argument, OPT_D2_WINDOW), D2_OPT("migration", required_argument, OPT_D2_MIGRATION)

/* MIGRATE's --pipeline (keys per MIGRATE, pipeline=1) or --cluster-timeout (ms) into *out. */
static int parse_migrate_opt(struct rc *rc, int pipeline, const char *arg, int *out) {
    long v;
    if (pipeline && rc_parse_int(arg, 1, 100000, &v) < 0) return rc_fail(rc, "--pipeline: expected keys per MIGRATE from 1 to 100000, got '%s'", arg);
    if (!pipeline && rc_parse_int(arg, 1, 3600000, &v) < 0) return rc_fail(rc, "--cluster-timeout: expected milliseconds, got '%s'", arg);
    *out = (int)v;
    return 0;
}

/* --migration auto|atomic|keys into *out (MIGRATION_*). */
static int parse_migration(struct rc *rc, const char *arg, int *out) {
    static const char *const names[] = { "auto", "atomic", "keys" };   /* MIGRATION_* order */
    for (int i = 0; i < 3; i++) if (!strcmp(arg, names[i])) { *out = i; return 0; }
    return rc_fail(rc, "--migration: expected auto, atomic or keys, got '%s'", arg);
}

/* The defaults: redis-cli's threshold (2%), MIGRATE batches of 1000 keys growing to
 * 4000, a 60 s MIGRATE timeout, 512 slots in flight; --slots not given (-1). */
static void day2_opts_init(struct day2_opts *o) {
    memset(o, 0, sizeof *o);
    o->slots = -1;
    o->threshold = 2;
    o->mo.batch = 1000;
    o->mo.batch_max = 4000;
    o->mo.timeout_ms = 60000;
    o->mo.window = 512;
}

/* One --weight ID=W into o->weights (the ID is resolved later, against the session). */
static int day2_parse_weight(struct rc *rc, struct day2_opts *o, const char *arg) {
    const char *eq = strchr(arg, '=');
    double w;
    if (!eq || eq == arg) return rc_fail(rc, "--weight: expected ID=WEIGHT, got '%s'", arg);
    if (rc_parse_number(eq + 1, 0, 1e6, &w) < 0) return rc_fail(rc, "--weight: expected ID=WEIGHT with WEIGHT >= 0, got '%s'", arg);
    if (o->nweights == DAY2_MAX_WEIGHTS) return rc_fail(rc, "--weight: at most %d weights", DAY2_MAX_WEIGHTS);
    o->weights[o->nweights].spec = arg;
    o->weights[o->nweights++].w = w;
    return 0;
}

/* cmd_parse_opts' callback for the day-2 options: one option into the day2_opts at ctx
 * (--dry-run also starts the plan recorder). */
static int day2_on_opt(struct rc *rc, int opt, const char *arg, void *ctx) {
    struct day2_opts *o = ctx;
    long v;
    switch (opt) {
    case OPT_D2_FROM: o->from = arg; return 0;
    case OPT_D2_TO: o->to = arg; return 0;
    case OPT_D2_SLOTS:
        if (rc_parse_int(arg, 1, CLUSTER_SLOTS, &v) < 0) return rc_fail(rc, "--slots: expected a number from 1 to %d, got '%s'", CLUSTER_SLOTS, arg);
        o->slots = v;
        return 0;
    case OPT_D2_PIPELINE:
        if (parse_migrate_opt(rc, 1, arg, &o->mo.batch) < 0) return -1;
        o->mo.batch_max = o->mo.batch;
        return 0;
    case OPT_D2_MIGRATE_TIMEOUT: return parse_migrate_opt(rc, 0, arg, &o->mo.timeout_ms);
    case OPT_D2_REPLACE: o->mo.replace = 1; return 0;
    case OPT_D2_WINDOW:
        if (rc_parse_int(arg, 1, CLUSTER_SLOTS, &v) < 0) return rc_fail(rc, "--window: expected slots in flight from 1 to %d, got '%s'", CLUSTER_SLOTS, arg);
        o->mo.window = (int)v;
        return 0;
    case OPT_D2_MIGRATION: return parse_migration(rc, arg, &o->mo.migration);
    case OPT_D2_DRY_RUN: o->dry_run = 1; rc_plan_begin(rc); return 0;
    case OPT_D2_YES: rc->yes = 1; return 0;
    case OPT_D2_MULTI: o->multi_owners = 1; return 0;
    case OPT_D2_EMPTY: o->use_empty = 1; return 0;
    case OPT_D2_THRESHOLD:
        if (rc_parse_number(arg, 0, 1e6, &o->threshold) < 0) return rc_fail(rc, "--threshold: expected a percentage from 0 (redis-cli's default is 2), got '%s'", arg);
        return 0;
    case OPT_D2_SIMULATE: o->simulate = 1; return 0;
    case OPT_D2_REPLICA: o->replica = 1; return 0;
    case OPT_D2_MASTER_ID: o->master_id = arg; return 0;
    case OPT_D2_ONLY_MASTERS: o->only_masters = 1; return 0;
    case OPT_D2_ONLY_REPLICAS: o->only_replicas = 1; return 0;
    case OPT_D2_WEIGHT: return day2_parse_weight(rc, o, arg);
    }
    return rc_fail(rc, "unknown option");
}

/* redis-cli's `HOST PORT` for an address: argv[at] without a colon followed by a port
 * number becomes one "HOST:PORT" argument (kept in rc->joined[slot]). Returns argc,
 * one less when it joined. */
static int args_join_host_port(struct rc *rc, int argc, char **argv, int at, int slot) {
    long port;
    if (at + 1 >= argc || argv[at][0] == '-' || strchr(argv[at], ':') || strspn(argv[at], "0123456789") == strlen(argv[at]) ||
        rc_parse_int(argv[at + 1], 1, 65535, &port) < 0) return argc;
    sdsfree(rc->joined[slot]);
    rc->joined[slot] = rc_sprintf("%s:%ld", argv[at], port);
    if (!rc->joined[slot]) return argc;
    argv[at] = rc->joined[slot];
    memmove(&argv[at + 1], &argv[at + 2], (size_t)(argc - at - 2) * sizeof *argv);
    argv[argc - 1] = NULL;
    return argc - 1;
}

/* Parse options, then expect exactly `want` positional arguments (-1: at least one).
 * ADDR (and a second address or node of a two-argument command) may be redis-cli's
 * `HOST PORT`. */
static int day2_parse(struct rc *rc, int argc, char **argv, const struct option *opts, int nopts, void (*usage)(FILE *),
                      struct day2_opts *o, int want) {
    int r = cmd_parse_opts(rc, argc, argv, opts, nopts, usage, day2_on_opt, o);
    if (r) return r;
    argc = args_join_host_port(rc, argc, argv, optind, 0);
    if (want == 2) argc = args_join_host_port(rc, argc, argv, optind + 1, 1);
    int have = argc - optind;
    if ((want >= 0 && have != want) || (want < 0 && have < 1)) {
        return rc_fail_as(rc, RC_ERR_USAGE, "%s: expected %d argument(s), got %d (see rcluster %s --help)", argv[0], want < 0 ? 1 : want, have, argv[0]);
    }
    return 0;
}

/* A usage error (exit 2) whose message is fmt with one string argument. */
static int day2_usage_fail(struct rc *rc, const char *fmt, const char *arg) {
    return rc_fail_as(rc, RC_ERR_USAGE, fmt, arg);
}

/* ---- create ---------------------------------------------------------------------- */

static void usage_create(FILE *f) {
    fputs("usage: rcluster create [--replicas N] [--password P | --password-file F] [--user U]\n"
          "                       [--yes] [--timeout SEC] [--json] ADDR...\n"
          "       (redis-cli spellings work too: --cluster-replicas N, --cluster-yes, -a P;\n"
          "        options may come before or after the addresses)\n"
          "\n"
          "Form a Redis Cluster from running, empty, cluster-enabled nodes (like\n"
          "redis-cli --cluster create). ADDR is host:port or host:port@busport.\n"
          "\n"
          "  --replicas N        replicas per master (default 0, as redis-cli); at least 3 masters\n"
          "  --password P        AUTH password (also RCLUSTER_PASSWORD, --password-file F)\n"
          "  --user U            ACL user for AUTH (Redis 6+)\n"
          "  --yes               do not ask for confirmation (required without a TTY)\n"
          "  --timeout SEC       give up waiting for a healthy cluster after SEC (default 60)\n"
          "  --json              print the result as JSON on stdout\n"
          "\n"
          "Every node is checked before anything changes: reachable, password accepted,\n"
          "cluster_enabled:1, no keys, knows no other node. While forming, rcluster sets\n"
          "cluster-node-timeout, hz and replication delays for speed (gentler when this\n"
          "host's cores are few for its nodes, or when the nodes show strain), keeps\n"
          "replicas from failing over, and restores every setting on every exit path.\n"
          "It returns once every node reports\n"
          "cluster_state:ok, every replica is linked and every node's CLUSTER SLOTS\n"
          "lists every replica.\n", f);
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

/* create ADDR...: form a cluster of empty running nodes (redis-cli --cluster create). */
static int cmd_create(struct rc *rc, int argc, char **argv) {
    static const struct option opts[] = { { "replicas", required_argument, NULL, OPT_REPLICAS },
                                          { "cluster-replicas", required_argument, NULL, OPT_REPLICAS } };
    int replicas = 0;   /* redis-cli's default: `create A B C` makes 3 masters */
    int r = cmd_parse_opts(rc, argc, argv, opts, 2, usage_create, create_on_opt, &replicas);
    if (r) return r < 0 ? -1 : 0;
    int n = argc - optind;
    if (n <= 0) return rc_fail_as(rc, RC_ERR_USAGE, "create: no node addresses given (see rcluster create --help)");
    if (n > 1000) return rc_fail(rc, "create: at most 1000 nodes");
    struct addr *a = calloc((size_t)n, sizeof *a);
    if (!a) return rc_fail_oom(rc);
    int ret = 0;
    for (int i = 0; i < n && ret == 0; i++) ret = addr_parse(rc, argv[optind + i], &a[i]);
    if (ret == 0) ret = engine_create_addrs(rc, a, n, replicas, ENGINE_CONFIRM);
    free(a);
    return ret;
}

/* ---- check ----------------------------------------------------------------------- */

static void usage_check(FILE *f) {
    fputs("usage: rcluster check [--password P | --password-file F] [--user U] [--json] ADDR\n"
          "\n"
          "Report on the cluster that ADDR belongs to (like redis-cli --cluster check): nodes,\n"
          "roles, slots, replicas, coverage, open slots, agreement and cluster_state.\n"
          "Exit status: 0 healthy, 3 not healthy, 1 when ADDR cannot be asked.\n", f);
}

enum { OPT_MULTIPLE_OWNERS = OPT_FIRST_COMMAND_OPT + 1 };

/* check's own options; --cluster-search-multiple-owners is accepted for redis-cli
 * scripts: check always reports slots that several masters claim. */
static int check_on_opt(struct rc *rc, int opt, const char *arg, void *ctx) {
    (void)rc; (void)opt; (void)arg; (void)ctx;
    return 0;
}

/* check ADDR: the judges' findings about a running cluster; exit 3 when unhealthy. */
static int cmd_check(struct rc *rc, int argc, char **argv) {
    static const struct option opts[] = {
        { "cluster-search-multiple-owners", no_argument, NULL, OPT_MULTIPLE_OWNERS },
        { "search-multiple-owners", no_argument, NULL, OPT_MULTIPLE_OWNERS } };
    int r = cmd_parse_opts(rc, argc, argv, opts, 2, usage_check, check_on_opt, NULL);
    if (r) return r < 0 ? -1 : 0;
    argc = args_join_host_port(rc, argc, argv, optind, 0);
    if (argc - optind != 1) return rc_fail_as(rc, RC_ERR_USAGE, "check: expected exactly one ADDR (see rcluster check --help)");
    struct addr a;
    if (addr_parse(rc, argv[optind], &a) < 0) return -1;
    int h = check_cluster(rc, a.ip, a.port, CHECK_REPORT);
    return h < 0 ? -1 : h == 0 ? 0 : rc_fail_unhealthy(rc);
}

/* ---- info ------------------------------------------------------------------------ */

#define INFO_BAR 64

static void usage_info(FILE *f) {
    fputs("usage: rcluster info ADDR [--json]\n"
          "\n"
          "Per master: keys, slots (ranges), replicas and keys per slot, with a slot map bar\n"
          "(each cell 256 slots: # all owned, + some) — like redis-cli --cluster info.\n", f);
}

/* One bar per master: each cell is CLUSTER_SLOTS/INFO_BAR slots, '#' all owned, '+' some. */
static void info_bar(const struct nodeinfo *ni, char *bar) {
    int per = CLUSTER_SLOTS / INFO_BAR;
    for (int c = 0; c < INFO_BAR; c++) {
        int own = 0;
        for (int k = c * per; k < (c + 1) * per; k++) own += ni && nodeinfo_owns(ni, k);
        const char *mark = own == per ? "#" : own ? "+" : ".";
        bar[c] = mark[0];
    }
    bar[INFO_BAR] = 0;
}

/* The lowest slot x owns, CLUSTER_SLOTS when none: info's sort key. Pure. */
static int info_first_slot(const struct snode *x) {
    const struct nodeinfo *ni = snode_slots(x);
    return ni && ni->nranges ? ni->ranges[0][0] : CLUSTER_SLOTS;
}

/* One master's row of info: where it is, what it holds. */
struct info_master {
    const struct snode *x;      /* in the session, which outlives the report */
    int slots, replicas;
    sds ranges;                 /* its slots as ranges; NULL when out of memory */
    char bar[INFO_BAR + 1];
    double keys_per_slot;
};

/* What info found: the masters in slot order and the totals over them. */
struct info_result {
    struct info_master *m;
    int masters, nodes;
    long long keys;             /* on the reachable masters */
    int lost, open;             /* masters not reachable; open slots on reachable nodes */
    sds servers;                /* what the nodes run (sess_servers) */
};

static void info_result_free(struct info_result *res) {
    for (int i = 0; res->m && i < res->masters; i++) sdsfree(res->m[i].ranges);
    free(res->m);
    sdsfree(res->servers);
    memset(res, 0, sizeof *res);
}

/* The masters of s in slot order (like check), one row each, and the totals; -1 only
 * when out of memory. */
static int info_collect(struct session *s, struct info_result *res) {
    memset(res, 0, sizeof *res);
    int *order = calloc((size_t)s->n, sizeof *order);
    res->m = calloc((size_t)s->n + 1, sizeof *res->m);
    if (!order || !res->m) { free(order); return rc_fail_oom(s->rc); }
    for (int i = 0; i < s->n; i++) order[i] = i;
    for (int i = 1; i < s->n; i++)       /* masters in slot order, like check */
        for (int j = i; j > 0 && info_first_slot(&s->nodes[order[j]]) < info_first_slot(&s->nodes[order[j - 1]]); j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    for (int oi = 0; oi < s->n; oi++) {
        const struct snode *x = &s->nodes[order[oi]];
        if (!snode_is_master(x)) continue;
        struct info_master *m = &res->m[res->masters++];
        const struct nodeinfo *ni = snode_slots(x);
        m->x = x;
        m->slots = snode_slot_count(x);
        m->replicas = sess_count_replicas(s, x->id);
        m->ranges = ni ? nodeinfo_slots_str(ni) : sdsempty();
        info_bar(ni, m->bar);
        m->keys_per_slot = m->slots ? (double)x->keys / m->slots : 0;
        res->keys += x->up ? x->keys : 0;
    }
    free(order);
    res->nodes = s->n;
    res->servers = sess_servers(s);
    for (int i = 0; i < s->n; i++) {
        res->lost += snode_is_master(&s->nodes[i]) && !s->nodes[i].up;
        res->open += s->nodes[i].up && s->nodes[i].me ? s->nodes[i].me->open_slots : 0;
    }
    return 0;
}

/* info's one document: {"masters":[{id, addr, reachable, keys, slots, ranges, replicas,
 * keys_per_slot, migrations[, migration]}...], keys, nodes, server}. */
static int info_report_json(struct rc *rc, const struct info_result *res) {
    sds js = sdsnew("{\"masters\":[");
    for (int i = 0; js && i < res->masters; i++) {
        const struct info_master *m = &res->m[i];
        const struct snode *x = m->x;
        js = rc_catprintf(js, "%s{\"id\":\"%s\",\"addr\":\"%s:%d\",\"reachable\":%s,\"keys\":%lld,\"slots\":%d,\"ranges\":", i ? "," : "",
                          x->id, x->ip, x->port, x->up ? "true" : "false", x->up ? x->keys : 0, m->slots);
        js = rc_json_str(js, m->ranges ? m->ranges : "");
        js = rc_catprintf(js, ",\"replicas\":%d,\"keys_per_slot\":%.2f,\"migrations\":%d", m->replicas, m->keys_per_slot, x->migrations);
        if (x->migrations) { js = rc_cat(js, ",\"migration\":"); js = rc_json_str(js, x->migration); }
        js = rc_cat(js, "}");
    }
    js = rc_json_str(rc_catprintf(js, "],\"keys\":%lld,\"nodes\":%d,\"server\":", res->keys, res->nodes), res->servers);
    js = rc_cat(js, "}\n");
    if (!js) return rc_fail_oom(rc);
    rc_json_out(rc, js);
    sdsfree(js);
    return 0;
}

/* info's report: the --json document, or per master a line and its slot-map bar
 * (coloured on a terminal), then the server and the totals with their warnings. */
static int info_report(struct rc *rc, const struct info_result *res) {
    static const char *const colours[] = { "\033[31m", "\033[32m", "\033[33m", "\033[34m", "\033[35m", "\033[36m" };
    if (rc->json) return info_report_json(rc, res);
    int color = rc->color && isatty(STDOUT_FILENO);
    for (int i = 0; i < res->masters; i++) {
        const struct info_master *m = &res->m[i];
        const struct snode *x = m->x;
        printf("%s:%d (%.8s...) %lld keys | %d slots | %d replica(s) | %.2f keys/slot%s\n", x->ip, x->port, x->id, x->up ? x->keys : 0,
               m->slots, m->replicas, m->keys_per_slot, x->up ? "" : " | NOT reachable");
        printf("  %s[%s]%s %s\n", color ? colours[i % 6] : "", m->bar, color ? "\033[0m" : "", m->ranges && sdslen(m->ranges) ? m->ranges : "-");
        if (x->migrations) printf("  atomic slot migration in progress: %s%s\n", x->migration, x->migrations > 1 ? " (and more)" : "");
    }
    if (res->servers) printf("Server: %s\n", res->servers);
    if (res->lost) printf("[WARN] %d master(s) not reachable: their keys are not counted below.\n", res->lost);
    if (res->open) printf("[WARN] %d open slot(s) (an interrupted move): see rcluster check, repair with rcluster fix.\n", res->open);
    printf("%s %lld keys in %d masters, %.2f keys per slot on average.\n", res->lost || res->open ? "[WARN]" : "[OK]", res->keys, res->masters,
           (double)res->keys / CLUSTER_SLOTS);
    return 0;
}

/* info ADDR: keys, slots, replicas and a slot-map bar per master; atomic migrations
 * in flight; the server. Options -> session -> result -> report (nothing to apply). */
static int cmd_info(struct rc *rc, int argc, char **argv) {
    struct day2_opts o;
    day2_opts_init(&o);
    int r = day2_parse(rc, argc, argv, NULL, 0, usage_info, &o, 1);
    if (r) return r < 0 ? -1 : 0;
    struct session s;
    struct info_result res = { 0 };
    memset(&s, 0, sizeof s);
    int ret = -1;
    if (day2_open(rc, &s, argv[optind]) == 0 && info_collect(&s, &res) == 0) ret = info_report(rc, &res);
    info_result_free(&res);
    sess_free(&s);
    return ret;
}

/* ---- call ------------------------------------------------------------------------ */

static void usage_call(FILE *f) {
    fputs("usage: rcluster call ADDR [--masters|--replicas] CMD [ARG...]\n"
          "\n"
          "Run one command on every node of the cluster ADDR belongs to and print each answer\n"
          "(redis-cli --cluster call). Options go before CMD; everything from CMD on is the\n"
          "command. Aliases: --cluster-only-masters, --cluster-only-replicas.\n", f);
}

static const struct option call_opts[] = {
    D2_OPT("masters", no_argument, OPT_D2_ONLY_MASTERS), D2_OPT("cluster-only-masters", no_argument, OPT_D2_ONLY_MASTERS),
    D2_OPT("replicas", no_argument, OPT_D2_ONLY_REPLICAS), D2_OPT("cluster-only-replicas", no_argument, OPT_D2_ONLY_REPLICAS),
};

/* Where CMD starts: the second word that is not an option or an option's value (the
 * third when ADDR is redis-cli's `HOST PORT`: a word without a colon, then a port). */
static int call_split(int argc, char **argv) {
    static const char *const with_value[] = { "--password", "--password-file", "--user", "--timeout" };
    int positional = 0, first = -1;
    long port;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) return i + 1 < argc && positional == 1 ? i + 1 : -1;
        if (a[0] == '-' && a[1]) {
            for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
                if (strcmp(a, with_value[k]) == 0) i++;
            continue;
        }
        if (positional == 1 && i == first + 1 && !strchr(argv[first], ':') && rc_parse_int(a, 1, 65535, &port) == 0 &&
            i + 1 < argc) continue;   /* HOST PORT: the port is part of ADDR */
        if (++positional == 1) first = i;
        if (positional == 2) return i;
    }
    return -1;
}

/* A reply as redis-cli prints it: "(integer) 1", "(nil)", numbered array elements. */
static sds resp_format(sds out, const struct resp *r, int indent) {
    switch (r->type) {
    case RESP_STATUS: return rc_catlen(out, r->str, sdslen(r->str));
    case RESP_ERROR: out = rc_cat(out, "(error) "); return rc_catlen(out, r->str, sdslen(r->str));
    case RESP_INTEGER: return rc_catprintf(out, "(integer) %lld", r->integer);
    case RESP_BULK: return rc_catlen(out, r->str, sdslen(r->str));
    case RESP_NIL: return rc_cat(out, "(nil)");
    default:
        if (r->n == 0) return rc_cat(out, "(empty array)");
        for (size_t i = 0; out && i < r->n; i++) {
            if (i) out = rc_catprintf(out, "\n%*s", indent, "");
            out = rc_catprintf(out, "%zu) ", i + 1);
            out = resp_format(out, r->elem[i], indent + 3);
        }
        return out;
    }
}

/* A reply as JSON appended to out: strings, integers, null, arrays; an error reply as
 * {"error":"..."}. NULL when out of memory. */
static sds resp_json(sds out, const struct resp *r) {
    if (!out) return NULL;
    switch (r->type) {
    case RESP_STATUS: case RESP_BULK: return rc_json_str(out, r->str);
    case RESP_ERROR: out = rc_cat(out, "{\"error\":"); out = rc_json_str(out, r->str); return rc_cat(out, "}");
    case RESP_INTEGER: return rc_catprintf(out, "%lld", r->integer);
    case RESP_NIL: return rc_cat(out, "null");
    default:
        out = rc_cat(out, "[");
        for (size_t i = 0; out && i < r->n; i++) { if (i) out = rc_cat(out, ","); out = resp_json(out, r->elem[i]); }
        return rc_cat(out, "]");
    }
}

/* One node's answer to call: its reply, or why there is none. */
struct call_reply {
    const struct snode *x;      /* in the session, which outlives the report */
    struct resp *reply;         /* NULL: err says why */
    sds err;
};

/* What call got: one entry per selected node, in the session's order. */
struct call_result {
    struct call_reply *v;
    int n;
    int errors;                 /* error replies and nodes that did not answer */
};

static void call_result_free(struct call_result *res) {
    for (int i = 0; res->v && i < res->n; i++) { resp_free(res->v[i].reply); sdsfree(res->v[i].err); }
    free(res->v);
    memset(res, 0, sizeof *res);
}

/* Whether call's --masters / --replicas select node x. Pure. */
static int call_selects(const struct day2_opts *o, const struct snode *x) {
    int m = snode_is_master(x);
    return !((o->only_masters && !m) || (o->only_replicas && m));
}

/* Apply: CMD (argv[0..argc)) queued on every selected reachable node, flushed at once;
 * each selected node's reply (or why none) into res. -1 only when nothing could be sent. */
static int call_apply(struct session *s, const struct day2_opts *o, int argc, const char **argv, struct call_result *res) {
    struct rc *rc = s->rc;
    memset(res, 0, sizeof *res);
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (x->up && call_selects(o, x) && sess_queue_argv(s, x, argc, argv) < 0) return -1;
    }
    if (sess_flush_all(s) < 0) return -1;
    if (!(res->v = calloc((size_t)s->n + 1, sizeof *res->v))) return rc_fail_oom(rc);
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (!call_selects(o, x)) continue;
        struct call_reply *e = &res->v[res->n++];
        e->x = x;
        e->reply = x->up ? sess_reply(s, x, 0) : NULL;
        if (!e->reply) e->err = sdsnew(x->err ? x->err : rc->err ? rc->err : "");
        res->errors += !e->reply || e->reply->type == RESP_ERROR;
    }
    return 0;
}

/* call's report: each answer as redis-cli prints it ("ADDR: reply"), or the --json
 * document {"ok":true,"replies":[{node, id, reply}...]}; a node without an answer is a
 * warning (in node order, among the answers). */
static void call_report(struct rc *rc, const struct call_result *res) {
    sds js = rc->json ? sdsnew("{\"ok\":true,\"replies\":[") : NULL;
    int first = 1;
    for (int i = 0; i < res->n; i++) {
        const struct call_reply *e = &res->v[i];
        char name[128];
        snprintf(name, sizeof name, "%s:%d", e->x->ip, e->x->port);
        if (!e->reply) { rc_warn(rc, "%s: %s", name, e->err ? e->err : ""); continue; }
        if (rc->json) {
            js = rc_catprintf(js, "%s{\"node\":\"%s\",\"id\":\"%s\",\"reply\":", first ? "" : ",", name, e->x->id);
            js = resp_json(js, e->reply);
            js = rc_cat(js, "}");
        } else {
            sds t = resp_format(sdsempty(), e->reply, 0);
            printf("%s: %s\n", name, t ? t : "");
            sdsfree(t);
        }
        first = 0;
    }
    if (rc->json && js) rc_json_outf(rc, "%s]}\n", js);
    sdsfree(js);
}

/* call ADDR [filters] CMD ARG...: one command on every node (or masters/replicas);
 * everything after CMD belongs to it. Options -> session -> apply -> report; fails
 * (after the report) when a node answered with an error or not at all. */
static int cmd_call(struct rc *rc, int argc, char **argv) {
    struct day2_opts o;
    day2_opts_init(&o);
    int cmdi = call_split(argc, argv);
    int end = cmdi < 0 ? argc : cmdi;
    if (cmdi > 0 && strcmp(argv[cmdi - 1], "--") == 0) end--;
    int r = day2_parse(rc, end, argv, call_opts, 4, usage_call, &o, 1);
    if (r) return r < 0 ? -1 : 0;
    if (cmdi < 0) return day2_usage_fail(rc, "call: no command given (see rcluster call --help)%s", "");
    if (o.only_masters && o.only_replicas)
        return day2_usage_fail(rc, "call: --masters and --replicas together select no node; give one of them, or neither for every node%s", "");
    if (argc - cmdi > RCONN_MAX_ARGS * 32) return day2_usage_fail(rc, "call: too many arguments%s", "");
    struct session s;
    struct call_result res = { 0 };
    int ret = -1;
    if (day2_open(rc, &s, argv[optind]) == 0 && call_apply(&s, &o, argc - cmdi, (const char **)argv + cmdi, &res) == 0) {
        call_report(rc, &res);
        ret = res.errors ? rc_fail(rc, "call: %d node(s) answered with an error or not at all", res.errors) : 0;
    }
    call_result_free(&res);
    sess_free(&s);
    return ret;
}

/* ---- add-node (its probe and wait serve scale and scale --swarm too) ------------- */

static void usage_add_node(FILE *f) {
    fputs("usage: rcluster add-node NEW ADDR [--replica [--master-id ID]] [--dry-run] [--yes] [--json]\n"
          "\n"
          "Add the running, empty, cluster-enabled node NEW to the cluster ADDR belongs to\n"
          "(like redis-cli --cluster add-node). As --replica it replicates --master-id, or the\n"
          "master with the fewest replicas (preferring another host), holding\n"
          "cluster-replica-no-failover yes on it while it joins. Returns once every node\n"
          "knows NEW and, for a replica, its link is up and CLUSTER SLOTS lists it.\n"
          "Like redis-cli's, it does not ask for confirmation.\n"
          "Aliases: --cluster-slave, --cluster-replica, --cluster-master-id.\n", f);
}

static const struct option add_node_opts[] = {
    D2_OPT("replica", no_argument, OPT_D2_REPLICA), D2_OPT("cluster-slave", no_argument, OPT_D2_REPLICA),
    D2_OPT("cluster-replica", no_argument, OPT_D2_REPLICA), D2_OPT("slave", no_argument, OPT_D2_REPLICA),
    D2_OPT("master-id", required_argument, OPT_D2_MASTER_ID), D2_OPT("cluster-master-id", required_argument, OPT_D2_MASTER_ID),
    D2_OPT("dry-run", no_argument, OPT_D2_DRY_RUN), D2_OPT("cluster-yes", no_argument, OPT_D2_YES),
};

/* NEW must be what `create` wants of a node: reachable with our password, cluster-enabled,
 * empty, alone. It joins the session as one more node (line NULL). */
static int addnode_probe(struct session *s, const struct addr *a) {
    struct rc *rc = s->rc;
    struct snode *grown = realloc(s->nodes, (size_t)(s->n + 1) * sizeof *grown);
    if (!grown) return rc_fail_oom(rc);
    s->nodes = grown;
    struct snode *x = &s->nodes[s->n];
    memset(x, 0, sizeof *x);
    x->c.fd = -1;
    snprintf(x->conn_ip, sizeof x->conn_ip, "%s", a->ip);
    x->conn_port = a->port;
    snprintf(x->ip, sizeof x->ip, "%s", a->ip);
    x->port = a->port;
    x->bus = addr_bus(a);
    s->n++;
    struct rconn probe;
    struct resp *info = NULL;
    int ret = -1;
    if (rconn_open(rc, &probe, a->ip, a->port) < 0) { rc_wrap(rc, "new node"); rconn_free(&probe); return -1; }
    info = rconn_call(rc, &probe, "INFO cluster", "INFO", "cluster", RESP_END);
    char buf[16];
    if (!info) goto out;
    if (info->type != RESP_BULK || info_field(info->str, "cluster_enabled", buf, sizeof buf) < 0 || strcmp(buf, "1") != 0) {
        rc_fail_as(rc, RC_ERR_NOT_CLUSTER, "new node %s: cluster mode is disabled (cluster_enabled:0); start it with cluster-enabled yes", probe.name);
        goto out;
    }
    x->c = probe;
    probe.fd = -1; probe.name = NULL; probe.rbuf = probe.wbuf = NULL;
    x->up = 1;
    if (sess_probe_queue(s, x) < 0 || sess_probe_read(s, x) < 0) { rc_wrap(rc, "new node"); goto out; }
    memcpy(x->id, x->me->id, sizeof x->id);
    if (sess_index_of(s, x->id) != s->n - 1) { rc_fail(rc, "add-node: %s:%d is already a member of this cluster", a->ip, a->port); goto out; }
    if (x->me->ip[0]) { snprintf(x->ip, sizeof x->ip, "%s", x->me->ip); x->port = x->me->port; x->bus = x->me->bus; }
    if (x->keys != 0) { rc_fail(rc, "new node %s:%d is not empty (%lld keys); only an empty node can join", a->ip, a->port, x->keys); goto out; }
    if (x->view.n > 1 || nodeinfo_slot_count(x->me) > 0) {
        rc_fail(rc, "new node %s:%d already knows %d other node(s) or owns slots (it is part of a cluster; CLUSTER RESET it first)", a->ip, a->port, x->view.n - 1);
        goto out;
    }
    ret = 0;
out:
    resp_free(info);
    rconn_free(&probe);
    return ret;
}

/* NEW was a member of a cluster before when its current epoch is above 0 (CLUSTER RESET
 * SOFT, and redis-cli's del-node, keep the id): after FORGET the cluster refuses that id
 * for 60 s, so the join would hang. It is empty and alone: CLUSTER RESET HARD gives it a
 * new id first. */
static int addnode_fresh_id(struct session *s, int nx) {
    struct snode *x = &s->nodes[nx];
    if (x->current_epoch <= 0) return 0;
    rc_progress(s->rc, "%s:%d was a member of a cluster before (current epoch %lld); the cluster may still refuse its id "
                "%.8s: CLUSTER RESET HARD gives it a new one", x->ip, x->port, x->current_epoch, x->id);
    if (act_reset(s, x, "HARD") < 0 || sess_drain(s, x, "CLUSTER RESET HARD") < 0) return -1;
    if (s->record) return 0;
    if (sess_probe_queue(s, x) < 0 || sess_probe_read(s, x) < 0) return rc_wrap(s->rc, "new node after CLUSTER RESET HARD");
    memcpy(x->id, x->me->id, sizeof x->id);
    return 0;
}

/* Every node lists NEW (past the handshake); for a replica, NEW replicates its master
 * with the link up and the master's CLUSTER SLOTS lists it. */
static int addnode_ready(struct session *s, int nx, int master, sds *why) {
    struct snode *x = &s->nodes[nx];
    for (int i = 0; i < s->n; i++) {
        const struct nodeinfo *ni = s->nodes[i].up ? cview_find(&s->nodes[i].view, x->id) : NULL;
        if (s->nodes[i].up && (!ni || (ni->flags & NF_HANDSHAKE))) { *why = rc_sprintf("%s:%d does not know it yet", s->nodes[i].ip, s->nodes[i].port); return 0; }
    }
    /* A new master refuses writes (and MIGRATE's RESTOREs) until its own state is ok. */
    if (strcmp(x->state, "ok") != 0) { *why = rc_sprintf("it reports cluster_state:%s", x->state); return 0; }
    if (master < 0) return 1;
    struct snode *m = &s->nodes[master];
    /* A master without slots is in no CLUSTER SLOTS reply: its own view must list the
     * new node as its replica, with the link up. */
    if (snode_slot_count(m) == 0) {
        const struct nodeinfo *ni = m->up ? cview_find(&m->view, x->id) : NULL;
        if (!ni || strcmp(ni->master, m->id) != 0) { *why = rc_sprintf("its master %s:%d does not list it as its replica yet", m->ip, m->port); return 0; }
        if (strcmp(x->link, "up") != 0) { *why = rc_sprintf("replication link is %s", x->link[0] ? x->link : "not up"); return 0; }
        return 1;
    }
    struct resp *repl = NULL, *slots = NULL;
    int ok = 0;
    char buf[32] = "";
    if (sess_queue(s, x, "INFO", "replication", RESP_END) < 0 || sess_queue(s, m, "CLUSTER", "SLOTS", RESP_END) < 0 ||
        sess_flush_all(s) < 0 || !(repl = sess_reply(s, x, 0)) || !(slots = sess_reply(s, m, 0))) { resp_free(repl); return -1; }
    if (repl->type != RESP_BULK || info_field(repl->str, "master_link_status", buf, sizeof buf) < 0 || strcmp(buf, "up") != 0)
        *why = rc_sprintf("replication link is %s", buf[0] ? buf : "not up");
    else {
        for (size_t i = 0; slots->type == RESP_ARRAY && i < slots->n && !ok; i++) {
            const struct resp *e = slots->elem[i];
            for (size_t k = 3; e->type == RESP_ARRAY && k < e->n; k++)
                if (e->elem[k]->type == RESP_ARRAY && e->elem[k]->n >= 2 && e->elem[k]->elem[1]->type == RESP_INTEGER &&
                    e->elem[k]->elem[1]->integer == x->port) ok = 1;
        }
        if (!ok) *why = rc_sprintf("CLUSTER SLOTS of its master does not list it yet");
    }
    resp_free(repl);
    resp_free(slots);
    return ok;
}

/* Redis 7 lists a replica in CLUSTER SLOTS only once gossip carries a non-zero offset;
 * an idle master moves it only every repl-ping-replica-period. A key written and deleted
 * in the master's own slots moves it at once and leaves nothing behind. */
static int addnode_nudge(struct session *s, int master) {
    const struct nodeinfo *ni = snode_slots(&s->nodes[master]);
    char key[64];
    for (unsigned i = 0; ni && ni->nranges && i < 1000000; i++) {
        snprintf(key, sizeof key, "rcluster:nudge:{%u}", i);
        if (nodeinfo_owns(ni, cluster_key_slot(key, strlen(key)))) {
            if (sess_queue(s, &s->nodes[master], "SET", key, "1", RESP_END) < 0 || sess_queue(s, &s->nodes[master], "DEL", key, RESP_END) < 0) return -1;
            return sess_drain_all(s, "nudge");
        }
    }
    return 0;
}

/* Wait until node nx has joined (addnode_ready): REPLICATE master (-1: none) once nx
 * knows it, nudge the master's offset every 500 ms; -1 with rc->err when nx stops
 * answering or until passes. Shared by add-node, scale and scale --swarm. */
static int addnode_wait(struct session *s, int nx, int master, struct rc_deadline until) {
    int64_t last_nudge = 0;
    int replicated = master < 0;
    for (;;) {
        sess_refresh(s);
        struct snode *x = &s->nodes[nx];
        if (!x->up) return rc_fail_kind_msg(s->rc, x->err_kind, rc_sprintf("the new node stopped answering: %s", x->err));
        if (!replicated) {
            const struct nodeinfo *mi = cview_find(&x->view, s->nodes[master].id);
            if (mi && !(mi->flags & NF_HANDSHAKE)) {
                if (act_replicate(s, x, s->nodes[master].id) < 0) return -1;
                if (sess_drain(s, x, "CLUSTER REPLICATE") == 0) replicated = 1;
                else if (s->rc->verbose) rc_warn(s->rc, "%s", s->rc->err);
            }
        }
        sds why = NULL;
        int ready = replicated ? addnode_ready(s, nx, master, &why) : 0;
        if (ready < 0) { sdsfree(why); return -1; }
        if (ready) { sdsfree(why); return 0; }
        if (replicated && master >= 0 && rc_now_ms() - last_nudge > 500) { last_nudge = rc_now_ms(); if (addnode_nudge(s, master) < 0) { sdsfree(why); return -1; } }
        if (rc_interrupted() || rc_deadline_passed(until)) {
            rc_fail(s->rc, "the new node did not join within %.0f s: %s", until.seconds, why ? why : (replicated ? "?" : "it does not know its master yet"));
            sdsfree(why);
            return -1;
        }
        sdsfree(why);
        rc_sleep_ms(100);
    }
}

/* add-node's plan: NEW's address and index in the session, the master it is to
 * replicate (-1: it joins as an empty master). */
struct addnode_plan {
    struct addr na;
    int nx, master;
};

/* What add-node did: the node that joined and the master it replicates (NULL: it
 * joined as an empty master); both in the session, which outlives the report. */
struct addnode_result {
    const struct snode *node, *master;
};

/* Preflight and plan: the cluster healthy enough to change (day2_preflight), the master
 * to replicate (--master-id, else the one with the fewest replicas, another host
 * preferred), NEW probed as create probes a node (addnode_probe: it joins the session);
 * says the plan. */
static int addnode_make_plan(struct session *s, const struct day2_opts *o, struct addnode_plan *p) {
    struct rc *rc = s->rc;
    p->master = -1;
    if (day2_preflight(s, 0, -1) < 0) return -1;
    if (o->replica) {
        p->master = o->master_id ? day2_resolve_master(s, "--master-id", o->master_id) : sess_pick_master(s, -1, p->na.ip, 1);
        if (p->master < 0) return o->master_id ? -1 : rc_fail(rc, "add-node: no reachable master with slots to replicate");
    }
    if (addnode_probe(s, &p->na) < 0) return -1;
    if (!s->nodes || s->n < 1) return rc_fail(rc, "add-node: %s:%d did not join the session", p->na.ip, p->na.port);
    p->nx = s->n - 1;
    const struct snode *x = &s->nodes[p->nx], *m = p->master >= 0 ? &s->nodes[p->master] : NULL;
    if (m) rc_progress(rc, "Plan: add %s:%d as a replica of %s:%d (%.40s)", x->ip, x->port, m->ip, m->port, m->id);
    else rc_progress(rc, "Plan: add %s:%d as an empty master (move slots to it with rebalance --use-empty-masters or reshard)", x->ip, x->port);
    return 0;
}

/* Apply: a new id when NEW was a member before, cluster-replica-no-failover held on a
 * joining replica (held[] then names it: the caller gives nofail_was back with
 * release_no_failover on every path), CLUSTER MEET from NEW to the seed. A dry run
 * (s->record) records these and the REPLICATE that addnode_wait would send. */
static int addnode_apply(struct session *s, const struct day2_opts *o, const struct addnode_plan *p, char nofail_was[8], char *held, size_t heldsz) {
    if (addnode_fresh_id(s, p->nx) < 0) return -1;
    struct snode *x = &s->nodes[p->nx], *sd = &s->nodes[s->seed];
    /* A joining replica must not fail over while it forms (its own value comes back at the end). */
    if (p->master >= 0 && o->dry_run && sess_queue(s, x, "CONFIG", "SET", "cluster-replica-no-failover", "yes", RESP_END) < 0) return -1;
    if (p->master >= 0 && !o->dry_run) {
        if (sess_hold_no_failover(s, x, nofail_was) < 0) return -1;
        snprintf(held, heldsz, "%s:%d", p->na.ip, p->na.port);
    }
    if (act_meet(s, x, sd->ip, sd->port, sd->bus) < 0 || sess_drain_all(s, "CLUSTER MEET") < 0) return -1;
    if (o->dry_run && p->master >= 0) act_replicate(s, x, s->nodes[p->master].id);
    return 0;
}

/* add-node's report: the --json document {ok, command, id, role, master} or one line. */
static void addnode_report(struct rc *rc, const struct addnode_result *res) {
    const struct snode *x = res->node, *m = res->master;
    if (rc->json) rc_json_outf(rc, "{\"ok\":true,\"command\":\"add-node\",\"id\":\"%s\",\"role\":\"%s\",\"master\":%s%s%s}\n", x->id, m ? "replica" : "master",
                               m ? "\"" : "", m ? m->id : "null", m ? "\"" : "");
    else printf("add-node: %s:%d (%.40s) joined as %s\n", x->ip, x->port, x->id, m ? "a replica" : "an empty master");
}

/* add-node NEW ADDR [--replica [--master-id ID]]: check the new node like create,
 * MEET it, make it a replica if asked, wait until every node knows it. Options ->
 * plan (with the preflight) -> apply -> wait -> report; never asks, like redis-cli. */
static int cmd_add_node(struct rc *rc, int argc, char **argv) {
    struct day2_opts o;
    day2_opts_init(&o);
    int r = day2_parse(rc, argc, argv, add_node_opts, (int)(sizeof add_node_opts / sizeof add_node_opts[0]), usage_add_node, &o, 2);
    if (r) return r < 0 ? -1 : 0;
    if (o.master_id && !o.replica) return day2_usage_fail(rc, "add-node: --master-id %s needs --replica", o.master_id);
    struct session s;
    struct addnode_plan p = { .master = -1 };
    int ret = -1;
    char nofail_was[8] = "", held[300] = "";
    memset(&s, 0, sizeof s);
    if (addr_parse(rc, argv[optind], &p.na) < 0 || day2_open(rc, &s, argv[optind + 1]) < 0 || addnode_make_plan(&s, &o, &p) < 0) goto out;
    s.record = o.dry_run;   /* redis-cli's add-node never asks: neither does this */
    if (addnode_apply(&s, &o, &p, nofail_was, held, sizeof held) < 0) goto out;
    if (!o.dry_run) {
        if (addnode_wait(&s, p.nx, p.master, s.deadline) < 0) goto out;
        struct addnode_result res = { &s.nodes[p.nx], p.master >= 0 ? &s.nodes[p.master] : NULL };
        addnode_report(rc, &res);
    }
    ret = 0;
out:
    if (held[0]) release_no_failover(rc, p.na.ip, p.na.port, held, nofail_was);
    sess_free(&s);
    return ret;
}

/* ---- del-node (its removal serves scale and scale --swarm too) ------------------- */

static void usage_del_node(FILE *f) {
    fputs("usage: rcluster del-node ADDR NODE_ID [--dry-run] [--yes] [--json]\n"
          "\n"
          "Remove a node from the cluster ADDR belongs to, also when it is dead or unreachable:\n"
          "its replicas move to another master, every other node gets CLUSTER FORGET until\n"
          "none lists it, then, if it answers, CLUSTER RESET so it cannot rejoin. A master\n"
          "that still owns slots is refused (empty it with rebalance --weight ID=0 first).\n"
          "NODE_ID may be an id, a unique id prefix or any address that reaches the node.\n"
          "Like redis-cli's, it does not ask for confirmation.\n", f);
}

static const struct option del_node_opts[] = {
    D2_OPT("dry-run", no_argument, OPT_D2_DRY_RUN), D2_OPT("cluster-yes", no_argument, OPT_D2_YES),
};

/* How many reachable nodes but skip still list node id in their view. */
static int sess_knows(const struct session *s, int skip, const char *id) {
    int c = 0;
    for (int i = 0; i < s->n; i++)
        if (i != skip && s->nodes[i].up && cview_find((struct cview *)&s->nodes[i].view, id)) c++;
    return c;
}

/* FORGET on every node that still lists the node, until none does: a node that has
 * not heard yet would otherwise teach the others again through gossip. */
static int delnode_forget(struct session *s, int victim, struct rc_deadline until) {
    const char *id = s->nodes[victim].id;
    for (int round = 0; ; round++) {
        for (int i = 0; i < s->n; i++)
            if (i != victim && s->nodes[i].up && cview_find(&s->nodes[i].view, id) && act_forget(s, &s->nodes[i], id) < 0) return -1;
        if (sess_flush_all(s) < 0) return -1;
        for (int i = 0; i < s->n; i++)
            while (s->nodes[i].up && s->nodes[i].owed > 0) {
                struct resp *r = sess_reply(s, &s->nodes[i], 0);
                if (!r) break;
                if (r->type == RESP_ERROR && s->rc->verbose) rc_warn(s->rc, "%s:%d: CLUSTER FORGET: %s", s->nodes[i].ip, s->nodes[i].port, r->str);
                resp_free(r);
            }
        sess_refresh(s);
        int left = sess_knows(s, victim, id);
        if (!left) return 0;
        if (rc_interrupted() || rc_deadline_passed(until))
            return rc_fail(s->rc, "%d node(s) still list %.40s after %d FORGET round(s)", left, id, round + 1);
        rc_sleep_ms(100);
    }
}

/* The replicas of victim REPLICATE another master (the one with the fewest replicas,
 * another host preferred); -1 when there is none. */
static int delnode_replicas(struct session *s, int victim) {
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (i == victim || !x->up || snode_is_master(x) || strcmp(snode_master_id(x), s->nodes[victim].id) != 0) continue;
        int m = sess_pick_master(s, victim, x->ip, 0);
        if (m < 0) return rc_fail(s->rc, "no other master for replica %s:%d", x->ip, x->port);
        rc_progress(s->rc, "Replica %s:%d now replicates %s:%d", x->ip, x->port, s->nodes[m].ip, s->nodes[m].port);
        if (act_replicate(s, x, s->nodes[m].id) < 0) return -1;
    }
    return sess_drain_all(s, "CLUSTER REPLICATE");
}

/* Take node v out of the cluster: its replicas to other masters, FORGET everywhere
 * until no node lists it, then CLUSTER RESET HARD on it when it answers (*reset says
 * so). HARD gives it a new id: the others refuse the forgotten one for 60 s, so a node
 * that kept it could not be added again at once. v must own no slots. Shared by
 * del-node and scale. */
static int delnode_remove(struct session *s, int v, struct rc_deadline until, int *reset) {
    struct snode *x = &s->nodes[v];
    *reset = 0;
    if (delnode_replicas(s, v) < 0 || delnode_forget(s, v, until) < 0) return -1;
    if (x->up) {
        if (act_reset(s, x, "HARD") == 0 && sess_drain(s, x, "CLUSTER RESET HARD") == 0) *reset = 1;
        else rc_warn(s->rc, "could not CLUSTER RESET %s:%d: %s", x->ip, x->port, s->rc->err);
    }
    return 0;
}

/* What del-node did: the node it removed (in the session, which outlives the report)
 * and whether CLUSTER RESET HARD reached it. */
struct delnode_result {
    const struct snode *node;
    int reset;
};

/* del-node's preflight: NODE names a member other than the one at ADDR, owns no slots
 * in any reachable node's view, and the rest of the cluster is healthy enough to change
 * (day2_preflight, NODE ignored). Returns NODE's index, -1 with rc->err. */
static int delnode_preflight(struct session *s, const char *addr_arg, const char *spec) {
    struct rc *rc = s->rc;
    int v = day2_resolve(s, "del-node", spec);
    if (v < 0) return -1;
    struct snode *x = &s->nodes[v];
    if (v == s->seed) return rc_fail_as(rc, RC_ERR_USAGE, "del-node: %s:%d is the node given as ADDR; give the address of another node of the cluster", x->ip, x->port);
    int owned = snode_slot_count(x);
    for (int i = 0; i < s->n && owned == 0; i++)
        if (s->nodes[i].up) { const struct nodeinfo *ni = cview_find(&s->nodes[i].view, x->id); if (ni) owned = nodeinfo_slot_count(ni); }
    if (owned > 0)
        return rc_fail(rc, "del-node: %s:%d still owns %d slot(s); nothing changed. Empty it first: rcluster rebalance %s --weight %.40s=0 --yes "
                       "(or rcluster reshard %s --from %.40s --to OTHER --slots %d)", x->ip, x->port, owned, addr_arg, x->id, addr_arg, x->id, owned);
    if (day2_preflight(s, 1, v) < 0) return -1;
    return v;
}

/* del-node's plan, said: FORGET everywhere, then RESET HARD on it when it answers; a
 * dry run (s->record) records those commands. */
static void delnode_plan(struct session *s, int v) {
    struct snode *x = &s->nodes[v];
    rc_progress(s->rc, "Plan: remove %s:%d (%.40s, %s%s): FORGET on %d node(s)%s", x->ip, x->port, x->id, snode_is_master(x) ? "master" : "replica",
                x->up ? "" : ", not reachable", s->n - 1, x->up ? ", then CLUSTER RESET HARD on it (a new id)" : "");
    if (!s->record) return;
    for (int i = 0; i < s->n; i++) if (i != v) act_forget(s, &s->nodes[i], x->id);
    if (x->up) act_reset(s, x, "HARD");
}

/* del-node's report: the --json document {ok, command, id, reset} or one line. */
static void delnode_report(struct rc *rc, const struct delnode_result *res) {
    const struct snode *x = res->node;
    if (rc->json) rc_json_outf(rc, "{\"ok\":true,\"command\":\"del-node\",\"id\":\"%s\",\"reset\":%s}\n", x->id, res->reset ? "true" : "false");
    else printf("del-node: %s:%d (%.40s) removed; no node lists it%s\n", x->ip, x->port, x->id, res->reset ? "; it was CLUSTER RESET HARD (new id: it can be added again at once)" : "");
}

/* del-node ADDR NODE: move a slotless node's replicas away, FORGET it everywhere until
 * no node lists it, then CLUSTER RESET HARD it (a dead node too). Options -> preflight
 * -> plan -> apply and wait (delnode_remove) -> report; never asks, like redis-cli. */
static int cmd_del_node(struct rc *rc, int argc, char **argv) {
    struct day2_opts o;
    day2_opts_init(&o);
    int r = day2_parse(rc, argc, argv, del_node_opts, 2, usage_del_node, &o, 2);
    if (r) return r < 0 ? -1 : 0;
    struct session s;
    int ret = -1, v;
    if (day2_open(rc, &s, argv[optind]) < 0 || (v = delnode_preflight(&s, argv[optind], argv[optind + 1])) < 0) goto out;
    s.record = o.dry_run;   /* redis-cli's del-node never asks: neither does this */
    delnode_plan(&s, v);
    if (!o.dry_run) {
        struct delnode_result res = { &s.nodes[v], 0 };
        if (delnode_remove(&s, v, s.deadline, &res.reset) < 0) goto out;
        delnode_report(rc, &res);
    }
    ret = 0;
out:
    sess_free(&s);
    return ret;
}

/* ---- moving slots: plan, BUSYKEY preflight, apply, report (reshard, rebalance, scale) ---- */

/* The first n slots of node src (ascending) not yet taken, appended to mv. */
static int plan_take_slots(struct session *s, int src, int dst, int n, unsigned char *taken, struct move *mv, int *nmv) {
    const struct nodeinfo *ni = snode_slots(&s->nodes[src]);
    int c = 0;
    for (int r = 0; ni && r < ni->nranges && c < n; r++)
        for (int k = ni->ranges[r][0]; k <= ni->ranges[r][1] && c < n; k++) {
            if (taken[k]) continue;
            taken[k] = 1;
            memset(&mv[*nmv], 0, sizeof mv[*nmv]);
            mv[*nmv].slot = k;
            mv[*nmv].src = src;
            mv[*nmv].dst = dst;
            (*nmv)++;
            c++;
        }
    return c;
}

/* A target holding keys of a slot it does not own would make MIGRATE fail with
 * BUSYKEY halfway: count them first (one pipeline) and refuse before any change. The
 * same round counts each slot's keys on its source (mv[].count: the mover's progress). */
static int reshard_check_busy(struct session *s, struct move *mv, int n) {
    for (int i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", mv[i].slot);
        if (sess_queue(s, &s->nodes[mv[i].dst], "CLUSTER", "COUNTKEYSINSLOT", num, RESP_END) < 0 ||
            sess_queue(s, &s->nodes[mv[i].src], "CLUSTER", "COUNTKEYSINSLOT", num, RESP_END) < 0) return -1;
    }
    if (sess_flush_all(s) < 0) return -1;
    int bad = -1;
    long long count = 0;
    for (int i = 0; i < n; i++) {
        struct resp *r = sess_reply(s, &s->nodes[mv[i].dst], 0), *k = r ? sess_reply(s, &s->nodes[mv[i].src], 0) : NULL;
        if (!k) { resp_free(r); return rc_wrap(s->rc, "CLUSTER COUNTKEYSINSLOT"); }
        if (r->type == RESP_INTEGER && r->integer > 0 && bad < 0) { bad = i; count = r->integer; }
        mv[i].count = k->type == RESP_INTEGER && k->integer > 0 ? k->integer : 0;
        mv[i].counted = 1;
        resp_free(r);
        resp_free(k);
    }
    if (bad < 0) return 0;
    struct snode *d = &s->nodes[mv[bad].dst];
    return rc_fail(s->rc, "target %s:%d already holds %lld key(s) of slot %d, which it does not own; moving them would fail with BUSYKEY. "
                   "Nothing changed; use --replace to overwrite them with the source's keys", d->ip, d->port, count, mv[bad].slot);
}

/* The planned moves as progress lines, runs of consecutive slots between the same
 * two nodes as one line. */
static void moves_print(struct session *s, const struct move *mv, int n) {
    struct rc *rc = s->rc;
    for (int i = 0; i < n; ) {
        int j = i;
        while (j + 1 < n && mv[j + 1].src == mv[i].src && mv[j + 1].dst == mv[i].dst && mv[j + 1].slot == mv[j].slot + 1) j++;
        struct snode *a = &s->nodes[mv[i].src], *b = &s->nodes[mv[i].dst];
        if (j == i) rc_progress(rc, "  slot %d: %s:%d -> %s:%d", mv[i].slot, a->ip, a->port, b->ip, b->port);
        else rc_progress(rc, "  slots %d-%d (%d): %s:%d -> %s:%d", mv[i].slot, mv[j].slot, j - i + 1, a->ip, a->port, b->ip, b->port);
        i = j + 1;
    }
}

/* Reorder moves round-robin by source (each source's own order kept), so that every
 * window holds slots of every source and the sources MIGRATE at the same time. */
static int moves_interleave(struct rc *rc, struct move *mv, int n) {
    int nsrc = 1;
    for (int i = 0; i < n; i++) if (mv[i].src + 1 > nsrc) nsrc = mv[i].src + 1;
    struct move *by_src = malloc((size_t)(n ? n : 1) * sizeof *by_src);
    int *count = calloc((size_t)nsrc, sizeof *count), *start = calloc((size_t)nsrc, sizeof *start);
    int *fill = calloc((size_t)nsrc, sizeof *fill), *order = calloc((size_t)nsrc, sizeof *order);
    int ret = -1, norder = 0, rounds = 0;
    if (!by_src || !count || !start || !fill || !order) { rc_fail_oom(rc); goto out; }
    for (int i = 0; i < n; i++) if (count[mv[i].src]++ == 0) order[norder++] = mv[i].src;
    for (int k = 1; k < nsrc; k++) start[k] = start[k - 1] + count[k - 1];
    for (int i = 0; i < n; i++) by_src[start[mv[i].src] + fill[mv[i].src]++] = mv[i];
    for (int k = 0; k < nsrc; k++) if (count[k] > rounds) rounds = count[k];
    int out_i = 0;
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < norder; k++)
            if (r < count[order[k]]) mv[out_i++] = by_src[start[order[k]] + r];
    ret = 0;
out:
    free(by_src); free(count); free(start); free(fill); free(order);
    return ret;
}

/* Masters that gave away their last slot: Redis 7 turns such a master into a replica
 * of the node that took it (cluster-allow-replica-migration). Say so; it is no failure. */
static void day2_report_emptied(struct session *s, const struct move *mv, int n) {
    sess_refresh(s);
    for (int i = 0; i < n; i++) {
        if (i > 0 && mv[i].src == mv[i - 1].src) continue;
        struct snode *x = &s->nodes[mv[i].src];
        if (!x->up || snode_slot_count(x) > 0) continue;
        int dup = 0;
        for (int j = 0; j < i; j++) dup |= mv[j].src == mv[i].src;
        if (dup) continue;
        if (!snode_is_master(x)) rc_progress(s->rc, "%s:%d gave away its last slot and is now a replica of %.40s (Redis' replica migration)", x->ip, x->port, snode_master_id(x));
        else rc_progress(s->rc, "%s:%d now owns no slots (an empty master; Redis 7 may turn it into a replica)", x->ip, x->port);
    }
}

/* What a move of slots did (reshard, rebalance): the engine, the slots moved of those
 * planned, the keys moved and the time it took. */
struct move_result {
    const char *command;        /* "reshard", "rebalance" */
    const char *engine;         /* "keys", "atomic"; "none" when nothing needed moving */
    int slots, planned;
    long long keys;
    int64_t ms;
};

/* The report of reshard and rebalance: the --json document {ok, command, engine,
 * slots_moved, slots_planned, keys_moved, elapsed_ms} or one line. */
static void move_report(struct rc *rc, const struct move_result *res) {
    if (rc->json) rc_json_outf(rc, "{\"ok\":true,\"command\":\"%s\",\"engine\":\"%s\",\"slots_moved\":%d,\"slots_planned\":%d,\"keys_moved\":%lld,\"elapsed_ms\":%lld}\n",
                               res->command, res->engine, res->slots, res->planned, res->keys, (long long)res->ms);
    else printf("%s: moved %d slot(s) and %lld key(s) in %.1f s\n", res->command, res->slots, res->keys, (double)res->ms / 1000.0);
}

/* Apply and wait, shared by reshard and rebalance: the engine chosen for the planned
 * moves (dry: the plan printed with it, and nothing else), asked unless !ask or --yes,
 * moved, waited for until the nodes agree, emptied masters said; res filled for
 * move_report (res->command is the caller's). resume says how to move what an
 * interrupt left (a printf format taking the slots left). */
static int moves_apply(struct session *s, const char *resume, struct move *mv, int n, const struct move_opts *mo, int dry, int ask,
                       struct move_result *res) {
    struct rc *rc = s->rc;
    const struct move_engine *eng = mover_choose(s, mv, n, mo);
    if (!eng) return -1;
    if (dry) { mover_print_plan(s, eng, mv, n, mo); return 0; }
    char q[64];
    snprintf(q, sizeof q, "Move %d slot(s)?", n);
    if ((ask && rc_confirm(rc, q) < 0) || (eng == &move_engines[MOVE_ENGINE_KEYS] && moves_interleave(rc, mv, n) < 0)) return -1;
    s->deadline = rc_deadline_in(rc->timeout);   /* the moves' own: the time a prompt took is not the cluster's */
    int64_t t0 = rc_now_ms();
    res->engine = eng->name;
    res->planned = n;
    res->keys = 0;
    res->slots = 0;
    int r = mover_run(s, mv, n, mo, eng, &res->keys, &res->slots);
    if (r < 0 && rc->err_kind == RC_ERR_INTERRUPTED) {
        sds how = rc_sprintf(resume, n - res->slots);
        rc_fail_as(rc, RC_ERR_INTERRUPTED, "%s; %s", rc->err, how ? how : "");
        sdsfree(how);
    }
    if (r == 0) r = day2_wait_settled(s, s->deadline, 0);
    if (r == 0) day2_report_emptied(s, mv, n);
    res->ms = rc_now_ms() - t0;
    return r;
}

/* ---- reshard --------------------------------------------------------------------- */

static void usage_reshard(FILE *f) {
    fputs("usage: rcluster reshard ADDR --from ID[,ID...]|all --to ID --slots N [--pipeline K]\n"
          "                        [--cluster-timeout MS] [--replace] [--dry-run] [--yes] [--json]\n"
          "\n"
          "Move N slots with their keys to the master --to, taken from the --from masters as\n"
          "redis-cli --cluster reshard takes them. ID is a node id, a unique id prefix or\n"
          "ip:port. Slots move in windows: SETSLOT IMPORTING on the target, MIGRATING on the\n"
          "source, MIGRATE ... KEYS in batches of K keys (default 1000; AUTH/AUTH2 with\n"
          "--password/--user), then SETSLOT NODE on the target, the source and every master.\n"
          "\n"
          "  --replace           overwrite keys the target already has (MIGRATE REPLACE);\n"
          "                      without it such keys refuse the move before anything changes\n"
          "  --cluster-timeout MS  MIGRATE's timeout (default 60000)\n"
          "  --pipeline K        keys per MIGRATE (default: 1000, growing to 4000 while quick)\n"
          "  --window N          slots in flight at once (default 512)\n"
          "  --migration MODE    auto (default): atomic where every node involved has it, else\n"
          "                      keys; atomic: the servers move slots and keys themselves\n"
          "                      (Valkey >= 9.0 CLUSTER MIGRATESLOTS, Redis >= 8.4 CLUSTER\n"
          "                      MIGRATION IMPORT), refused before any change where a node\n"
          "                      lacks it; keys: SETSLOT + MIGRATE key by key, every server\n"
          "  --verbose           also say where the time went\n"
          "  --dry-run           print the plan and the commands, change nothing\n"
          "\n"
          "The plan says which engine moves the slots and why. Ctrl-C: key by key finishes the\n"
          "slots in flight and leaves no slot open; atomic cancels the migrations in flight.\n"
          "Either way it says how many moved. After a SIGKILL, atomic migrations go on by\n"
          "themselves: check and info show them, and the next reshard or fix waits for them.\n"
          "Aliases: --cluster-from, --cluster-to, --cluster-slots, --cluster-pipeline,\n"
          "--cluster-replace, --cluster-yes.\n", f);
}

static const struct option reshard_opts[] = {
    D2_OPT("from", required_argument, OPT_D2_FROM), D2_OPT("cluster-from", required_argument, OPT_D2_FROM),
    D2_OPT("to", required_argument, OPT_D2_TO), D2_OPT("cluster-to", required_argument, OPT_D2_TO),
    D2_OPT("slots", required_argument, OPT_D2_SLOTS), D2_OPT("cluster-slots", required_argument, OPT_D2_SLOTS),
    D2_MOVE_OPTS,
};

/* The --from list as master indexes (all: every master with slots but the target). */
static int reshard_sources(struct session *s, const char *from, int dst, int *src, int *nsrc) {
    *nsrc = 0;
    if (strcmp(from, "all") == 0) {
        for (int i = 0; i < s->n; i++)
            if (i != dst && snode_is_master(&s->nodes[i]) && snode_slot_count(&s->nodes[i]) > 0) src[(*nsrc)++] = i;
        return 0;
    }
    sds list = sdsnew(from);
    if (!list) return rc_fail_oom(s->rc);
    int ret = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && ret == 0; tok = strtok_r(NULL, ",", &save)) {
        int i = day2_resolve_master(s, "--from", tok);
        if (i < 0) ret = -1;
        else if (i == dst) { ret = rc_fail_as(s->rc, RC_ERR_USAGE, "--from %s: is also the --to node", tok); }
        else {
            int dup = 0;
            for (int k = 0; k < *nsrc; k++) dup |= src[k] == i;
            if (!dup) src[(*nsrc)++] = i;
        }
    }
    sdsfree(list);
    return ret;
}

/* redis-cli's reshard table: sources by slot count, descending; each gives its share
 * of n (the first rounded up, the others down), taking its lowest slots first. */
static int reshard_plan(struct session *s, int *src, int nsrc, int dst, int n, struct move *mv, int *nmv) {
    unsigned char *taken = calloc(CLUSTER_SLOTS, 1);
    if (!taken) return rc_fail_oom(s->rc);
    for (int i = 1; i < nsrc; i++)      /* by slot count, descending; stable */
        for (int j = i; j > 0 && snode_slot_count(&s->nodes[src[j]]) > snode_slot_count(&s->nodes[src[j - 1]]); j--) {
            int t = src[j]; src[j] = src[j - 1]; src[j - 1] = t;
        }
    long total = 0;
    for (int i = 0; i < nsrc; i++) total += snode_slot_count(&s->nodes[src[i]]);
    *nmv = 0;
    for (int i = 0; i < nsrc && *nmv < n; i++) {
        double share = (double)n / (double)total * snode_slot_count(&s->nodes[src[i]]);
        int k = (int)share;
        if (i == 0 && (double)k < share) k++;       /* the first rounds up, the others down */
        if (k > n - *nmv) k = n - *nmv;
        plan_take_slots(s, src[i], dst, k, taken, mv, nmv);
    }
    /* Shares rounded down can leave a few: the sources in the same order give them. */
    for (int i = 0; i < nsrc && *nmv < n; i++) plan_take_slots(s, src[i], dst, n - *nmv, taken, mv, nmv);
    free(taken);
    return 0;
}

/* reshard's plan and preflight: the --to master and the --from sources resolved, the
 * cluster healthy enough to change, N slots taken from the sources as redis-cli takes
 * them into mv (CLUSTER_SLOTS entries), refused when the target holds keys of one
 * (BUSYKEY; not with --replace); the plan said. */
static int reshard_make_plan(struct session *s, const struct day2_opts *o, struct move *mv, int *nmv) {
    struct rc *rc = s->rc;
    int *src = NULL, nsrc = 0, ret = -1;
    int dst = day2_resolve_master(s, "--to", o->to);
    if (dst < 0 || !(src = calloc((size_t)s->n, sizeof *src)) || reshard_sources(s, o->from, dst, src, &nsrc) < 0) goto out;
    if (day2_preflight(s, 0, -1) < 0) goto out;
    long have = 0;
    for (int i = 0; i < nsrc; i++) have += snode_slot_count(&s->nodes[src[i]]);
    if (nsrc == 0 || have < o->slots) {
        rc_fail_as(rc, RC_ERR_USAGE, "reshard: asked to move %ld slots but the source masters hold only %ld; nothing changed", o->slots, have);
        goto out;
    }
    if (reshard_plan(s, src, nsrc, dst, (int)o->slots, mv, nmv) < 0) goto out;
    if (!o->mo.replace && reshard_check_busy(s, mv, *nmv) < 0) goto out;
    rc_progress(rc, "Plan: move %d slot(s) to %s:%d (%.40s)", *nmv, s->nodes[dst].ip, s->nodes[dst].port, s->nodes[dst].id);
    moves_print(s, mv, *nmv);
    ret = 0;
out:
    free(src);
    return ret;
}

/* reshard ADDR --from --to --slots: move N slots with their keys to one master.
 * Options -> plan (with the preflight) -> apply and wait (moves_apply: engine,
 * confirm, move, the nodes agree) -> report. */
static int cmd_reshard(struct rc *rc, int argc, char **argv) {
    struct day2_opts o;
    day2_opts_init(&o);
    int r = day2_parse(rc, argc, argv, reshard_opts, (int)(sizeof reshard_opts / sizeof reshard_opts[0]), usage_reshard, &o, 1);
    if (r) return r < 0 ? -1 : 0;
    if (!o.from) return day2_usage_fail(rc, "reshard: --from is required (ids, or all)%s", "");
    if (!o.to) return day2_usage_fail(rc, "reshard: --to is required%s", "");
    if (o.slots < 0) return day2_usage_fail(rc, "reshard: --slots is required%s", "");
    struct session s;
    struct move *mv = NULL;
    struct move_result res = { .command = "reshard" };
    int nmv = 0, ret = -1;
    if (day2_open(rc, &s, argv[optind]) < 0) goto out;   /* a dry run stops in moves_apply */
    if (!(mv = calloc(CLUSTER_SLOTS, sizeof *mv))) { rc_fail_oom(rc); goto out; }
    if (reshard_make_plan(&s, &o, mv, &nmv) < 0) goto out;
    ret = moves_apply(&s, "the same reshard with --slots %d moves them", mv, nmv, &o.mo, o.dry_run, 1, &res);
    if (ret == 0 && !o.dry_run) move_report(rc, &res);
out:
    free(mv);
    sess_free(&s);
    return ret;
}

/* ---- rebalance (its plan serves scale too) --------------------------------------- */

static void usage_rebalance(FILE *f) {
    fputs("usage: rcluster rebalance ADDR [--weight ID=W]... [--use-empty-masters] [--threshold PCT]\n"
          "                          [--simulate] [--pipeline K] [--replace] [--dry-run] [--yes] [--json]\n"
          "\n"
          "Even out slots between masters by weight (default 1) with the fewest moves, as\n"
          "redis-cli --cluster rebalance computes it. --weight ID=0 empties a master (then\n"
          "del-node it). Masters without slots take part only with --use-empty-masters.\n"
          "Nothing moves while no master is off by more than --threshold percent (default 2).\n"
          "--simulate (or --dry-run) prints the moves without making them. Like redis-cli's,\n"
          "it does not ask for confirmation (--yes is accepted and changes nothing). Moves as\n"
          "reshard does: --migration auto|atomic|keys, --pipeline, --window (see reshard --help).\n"
          "Aliases: --cluster-weight, --cluster-use-empty-masters, --cluster-use-empty-primaries,\n"
          "--cluster-threshold, --cluster-simulate, --cluster-pipeline, --cluster-replace.\n", f);
}

static const struct option rebalance_opts[] = {
    D2_OPT("weight", required_argument, OPT_D2_WEIGHT), D2_OPT("cluster-weight", required_argument, OPT_D2_WEIGHT),
    D2_OPT("use-empty-masters", no_argument, OPT_D2_EMPTY), D2_OPT("cluster-use-empty-masters", no_argument, OPT_D2_EMPTY),
    D2_OPT("use-empty-primaries", no_argument, OPT_D2_EMPTY), D2_OPT("cluster-use-empty-primaries", no_argument, OPT_D2_EMPTY),
    D2_OPT("threshold", required_argument, OPT_D2_THRESHOLD), D2_OPT("cluster-threshold", required_argument, OPT_D2_THRESHOLD),
    D2_OPT("simulate", no_argument, OPT_D2_SIMULATE), D2_OPT("cluster-simulate", no_argument, OPT_D2_SIMULATE),
    D2_MOVE_OPTS,
};

/* A master taking part in rebalance: its index, weight and balance (slots it holds
 * minus its share: > 0 gives, < 0 takes). */
struct rb_node { int idx; double weight; int balance; };

/* qsort order of rb_node: the most slots to take first, the most to give last. */
static int rb_cmp(const void *a, const void *b) {
    return ((const struct rb_node *)a)->balance - ((const struct rb_node *)b)->balance;
}

/* The masters taking part and their weights (--weight ID=W; default 1). Masters
 * without slots take part only with --use-empty-masters. */
static int rebalance_weights(struct session *s, const struct day2_opts *o, struct rb_node *rb, int *nrb) {
    double *w = calloc((size_t)s->n, sizeof *w);
    if (!w) return rc_fail_oom(s->rc);
    for (int i = 0; i < s->n; i++) w[i] = 1;
    for (int k = 0; k < o->nweights; k++) {
        sds spec = sdsnewlen(o->weights[k].spec, (size_t)(strchr(o->weights[k].spec, '=') - o->weights[k].spec));
        int i = spec ? day2_resolve_master(s, "--weight", spec) : rc_fail_oom(s->rc);
        sdsfree(spec);
        if (i < 0) { free(w); return -1; }
        w[i] = o->weights[k].w;
    }
    *nrb = 0;
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (!snode_is_master(x) || (!o->use_empty && snode_slot_count(x) == 0 && w[i] > 0)) continue;
        if (!x->up) { free(w); return rc_fail_as(s->rc, RC_ERR_UNREACHABLE, "master %s:%d is not reachable: %s; nothing changed", x->ip, x->port, x->err); }
        rb[*nrb].idx = i;
        rb[(*nrb)++].weight = w[i];
    }
    free(w);
    return 0;
}

/* redis-cli's rebalance: expected slots per master from its weight, stop when no
 * master is off by more than the threshold, fix the rounding, then pair the master
 * that needs the most with the one that has the most to give. */
static int rebalance_plan(struct session *s, const struct day2_opts *o, struct move *mv, int *nmv) {
    struct rc *rc = s->rc;
    struct rb_node *rb = calloc((size_t)s->n, sizeof *rb);
    unsigned char *taken = calloc(CLUSTER_SLOTS, 1);
    int nrb = 0, ret = -1;
    *nmv = 0;
    if (!rb || !taken) { rc_fail_oom(rc); goto out; }
    if (rebalance_weights(s, o, rb, &nrb) < 0) goto out;
    double total = 0;
    for (int i = 0; i < nrb; i++) total += rb[i].weight;
    if (nrb == 0 || total <= 0) { rc_fail(rc, "rebalance: no master with a weight above 0"); goto out; }
    int over = 0, total_balance = 0;
    for (int i = 0; i < nrb; i++) {
        int have = snode_slot_count(&s->nodes[rb[i].idx]);
        int expected = (int)((double)CLUSTER_SLOTS / total * rb[i].weight);
        rb[i].balance = have - expected;
        total_balance += rb[i].balance;
        double off = expected ? (double)(expected - have) / expected * 100 : 0;
        if (expected == 0 ? have > 0 : (off < 0 ? -off : off) > o->threshold) over = 1;
    }
    if (!over) { ret = 0; goto out; }
    /* The rounding's spare slots go to masters that are to hold slots: never to one of
     * weight 0, which is being emptied (or is a replica-to-be that scale has just met). */
    for (int i = 0; total_balance > 0; i = (i + 1) % nrb)
        if (rb[i].balance <= 0 && rb[i].weight > 0) { rb[i].balance--; total_balance--; }
    qsort(rb, (size_t)nrb, sizeof *rb, rb_cmp);
    for (int d = 0, sidx = nrb - 1; d < sidx; ) {
        int need = -rb[d].balance, give = rb[sidx].balance;
        int k = need < give ? need : give;
        if (k > 0) {
            plan_take_slots(s, rb[sidx].idx, rb[d].idx, k, taken, mv, nmv);
            rb[d].balance += k;
            rb[sidx].balance -= k;
        }
        if (rb[d].balance >= 0) d++;
        if (rb[sidx].balance <= 0) sidx--;
    }
    ret = 0;
out:
    free(rb);
    free(taken);
    return ret;
}

/* rebalance ADDR: even out slots by weight with the fewest moves (redis-cli's plan).
 * Options -> preflight -> plan -> apply and wait (moves_apply) -> report;
 * --simulate/--dry-run print the plan; never asks (redis-cli's rebalance does not;
 * only create, reshard and fix do). */
static int cmd_rebalance(struct rc *rc, int argc, char **argv) {
    struct day2_opts o;
    day2_opts_init(&o);
    int r = day2_parse(rc, argc, argv, rebalance_opts, (int)(sizeof rebalance_opts / sizeof rebalance_opts[0]), usage_rebalance, &o, 1);
    if (r) return r < 0 ? -1 : 0;
    struct session s;
    struct move *mv = NULL;
    struct move_result res = { .command = "rebalance", .engine = "none" };
    int nmv = 0, ret = -1, dry = o.dry_run || o.simulate;
    if (day2_open(rc, &s, argv[optind]) < 0) goto out;
    if (day2_preflight(&s, 0, -1) < 0) goto out;
    if (!(mv = calloc(CLUSTER_SLOTS, sizeof *mv))) { rc_fail_oom(rc); goto out; }
    if (rebalance_plan(&s, &o, mv, &nmv) < 0) goto out;
    if (nmv == 0) {
        rc_progress(rc, "No rebalance needed: every master is within %.2f%% of its share", o.threshold);
        move_report(rc, &res);
        ret = 0;
        goto out;
    }
    rc_progress(rc, "Plan: move %d slot(s)", nmv);
    moves_print(&s, mv, nmv);
    if (!o.mo.replace && reshard_check_busy(&s, mv, nmv) < 0) goto out;
    ret = moves_apply(&s, "running the same rebalance again moves them (%d slots)", mv, nmv, &o.mo, dry, 0, &res);
    if (ret == 0 && !dry) move_report(rc, &res);
out:
    free(mv);
    sess_free(&s);
    return ret;
}

/* ---- fix (its plan and repair serve scale too) ----------------------------------- */

static void usage_fix(FILE *f) {
    fputs("usage: rcluster fix ADDR [--search-multiple-owners] [--replace] [--dry-run] [--yes] [--json]\n"
          "\n"
          "Repair what an interrupted move leaves (like redis-cli --cluster fix): an open\n"
          "(migrating/importing) slot is finished when its target already holds keys of it and\n"
          "rolled back when it holds none; an uncovered slot goes to the master holding its\n"
          "keys, else to the master with the fewest slots. --search-multiple-owners also\n"
          "settles slots two masters claim (kept by the one with the keys). Shows the plan first.\n"
          "Atomic slot migrations still in flight (Valkey >= 9.0, Redis >= 8.4; say after a\n"
          "SIGKILL) are waited for, and cancelled after --timeout. Slots left open on replicas\n"
          "only (Valkey replicates SETSLOT) are closed through their master.\n", f);
}

static const struct option fix_opts[] = {
    D2_OPT("search-multiple-owners", no_argument, OPT_D2_MULTI), D2_OPT("cluster-search-multiple-owners", no_argument, OPT_D2_MULTI),
    D2_MOVE_OPTS,
};

enum { FIX_FINISH = 1, FIX_ROLLBACK, FIX_CLOSE, FIX_ASSIGN, FIX_DROP_CLAIMS, FIX_MANUAL };

/* What fix does with one slot. */
struct fix_item {
    int slot, action;
    int owner, target;      /* node indexes, -1 when none */
    long long keys_owner, keys_target;
    sds why;                /* for FIX_MANUAL */
};

struct fix_plan {
    struct fix_item *v;
    int n;
};

static void fix_plan_free(struct fix_plan *p) {
    for (int i = 0; i < p->n; i++) sdsfree(p->v[i].why);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* A new item for slot with action (no owner or target yet); NULL when out of memory. */
static struct fix_item *fix_plan_add(struct fix_plan *p, int slot, int action) {
    struct fix_item *g = realloc(p->v, (size_t)(p->n + 1) * sizeof *g);
    if (!g) return NULL;
    p->v = g;
    memset(&g[p->n], 0, sizeof g[p->n]);
    g[p->n].slot = slot;
    g[p->n].action = action;
    g[p->n].owner = g[p->n].target = -1;
    return &g[p->n++];
}

/* COUNTKEYSINSLOT slot on every reachable master, pipelined; counts[i] = -1 if unknown. */
static int fix_count_keys(struct session *s, int slot, long long *counts) {
    char num[16];
    snprintf(num, sizeof num, "%d", slot);
    for (int i = 0; i < s->n; i++) {
        counts[i] = -1;
        if (s->nodes[i].up && snode_is_master(&s->nodes[i]) && sess_queue(s, &s->nodes[i], "CLUSTER", "COUNTKEYSINSLOT", num, RESP_END) < 0) return -1;
    }
    if (sess_flush_all(s) < 0) return -1;
    for (int i = 0; i < s->n; i++) {
        if (!s->nodes[i].up || !snode_is_master(&s->nodes[i])) continue;
        struct resp *r = sess_reply(s, &s->nodes[i], 0);
        if (!r) return rc_wrap(s->rc, "CLUSTER COUNTKEYSINSLOT");
        if (r->type == RESP_INTEGER) counts[i] = r->integer;
        resp_free(r);
    }
    return 0;
}

/* Nodes that have `slot` open: the first importing one and the first migrating one. */
static void fix_find_open(const struct session *s, int slot, int *importer, int *migrator, int *peer) {
    *importer = *migrator = *peer = -1;
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        for (int k = 0; x->me && snode_is_master(x) && k < x->me->open_slots; k++) {
            if (x->me->open[k].slot != slot) continue;
            if (x->me->open[k].importing && *importer < 0) *importer = i;
            if (!x->me->open[k].importing && *migrator < 0) { *migrator = i; *peer = sess_index_of(s, x->me->open[k].peer); }
        }
    }
}

/* An interrupted move: finish it when the target already holds keys of the slot (some
 * moved, or clients wrote there through ASK), roll it back when it holds none. */
static int fix_plan_open(struct session *s, int slot, const int *owner, long long *counts, struct fix_plan *p) {
    int imp, mig, peer;
    fix_find_open(s, slot, &imp, &mig, &peer);
    int o = owner[slot], t = imp >= 0 ? imp : peer;
    if (fix_count_keys(s, slot, counts) < 0) return -1;
    struct fix_item *it = fix_plan_add(p, slot, FIX_ROLLBACK);
    if (!it) return rc_fail_oom(s->rc);
    it->owner = o;
    it->target = t;
    it->keys_owner = o >= 0 ? counts[o] : 0;
    it->keys_target = t >= 0 ? counts[t] : 0;
    for (int i = 0; i < s->n; i++)
        if (counts[i] > 0 && i != o && i != t) { it->action = FIX_MANUAL; it->why = rc_sprintf("keys of slot %d are on a third node %s:%d", slot, s->nodes[i].ip, s->nodes[i].port); return 0; }
    if (o < 0) { it->action = FIX_MANUAL; it->why = rc_sprintf("slot %d is open but no master owns it", slot); }
    else if (t < 0 || t == o) {
        it->action = FIX_CLOSE;
        if (mig >= 0 && mig != o && counts[mig] > 0) { it->action = FIX_MANUAL; it->why = rc_sprintf("slot %d: %s:%d still holds keys but no longer owns it", slot, s->nodes[mig].ip, s->nodes[mig].port); }
    }
    else if (it->keys_target > 0) it->action = FIX_FINISH;
    return 0;
}

/* A slot nobody owns goes to the one master holding its keys, or, when none does, to
 * the master with the fewest slots. */
static int fix_plan_uncovered(struct session *s, int slot, long long *counts, int *nslots, struct fix_plan *p) {
    if (fix_count_keys(s, slot, counts) < 0) return -1;
    int holder = -1, holders = 0, least = -1;
    for (int i = 0; i < s->n; i++) {
        if (counts[i] > 0) { holder = i; holders++; }
        if (s->nodes[i].up && snode_is_master(&s->nodes[i]) && (least < 0 || nslots[i] < nslots[least])) least = i;
    }
    struct fix_item *it = fix_plan_add(p, slot, FIX_ASSIGN);
    if (!it) return rc_fail_oom(s->rc);
    if (holders > 1) { it->action = FIX_MANUAL; it->why = rc_sprintf("uncovered slot %d has keys on %d masters", slot, holders); return 0; }
    it->owner = holders ? holder : least;
    if (it->owner < 0) { it->action = FIX_MANUAL; it->why = rc_sprintf("no reachable master for slot %d", slot); return 0; }
    nslots[it->owner]++;
    return 0;
}

/* A slot two masters claim stays with the one holding the most keys; the others drop
 * their claim (only when they hold none of its keys). */
static int fix_plan_multi(struct session *s, int slot, long long *counts, struct fix_plan *p) {
    if (fix_count_keys(s, slot, counts) < 0) return -1;
    int best = -1;
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (!x->me || !snode_is_master(x) || !nodeinfo_owns(x->me, slot)) continue;
        if (best < 0 || counts[i] > counts[best]) best = i;
    }
    struct fix_item *it = fix_plan_add(p, slot, FIX_DROP_CLAIMS);
    if (!it) return rc_fail_oom(s->rc);
    it->owner = best;
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        if (i != best && x->me && snode_is_master(x) && nodeinfo_owns(x->me, slot) && counts[i] > 0) {
            it->action = FIX_MANUAL;
            it->why = rc_sprintf("slot %d is claimed by %s:%d and %s:%d and both hold keys", slot, s->nodes[best].ip, s->nodes[best].port, x->ip, x->port);
        }
    }
    return 0;
}

/* fix's plan into p: every open slot (fix_plan_open), every uncovered one
 * (fix_plan_uncovered), and with multi every slot two masters claim (fix_plan_multi). */
static int fix_plan_make(struct session *s, int multi, struct fix_plan *p) {
    struct rc *rc = s->rc;
    int *owner = malloc(CLUSTER_SLOTS * sizeof *owner);
    long long *counts = calloc((size_t)s->n, sizeof *counts);
    int *nslots = calloc((size_t)s->n, sizeof *nslots);
    unsigned char *seen = calloc(CLUSTER_SLOTS, 1);
    int ret = -1;
    if (!owner || !counts || !nslots || !seen) { rc_fail_oom(rc); goto out; }
    sess_owner_map(s, owner);
    for (int i = 0; i < s->n; i++) nslots[i] = snode_slot_count(&s->nodes[i]);
    for (int i = 0; i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        for (int k = 0; x->me && k < x->me->open_slots; k++) {
            int slot = x->me->open[k].slot;
            if (seen[slot]) continue;
            seen[slot] = 1;
            if (fix_plan_open(s, slot, owner, counts, p) < 0) goto out;
        }
    }
    for (int k = 0; k < CLUSTER_SLOTS; k++)
        if (owner[k] < 0 && !seen[k] && fix_plan_uncovered(s, k, counts, nslots, p) < 0) goto out;
    if (multi) {
        struct findings f = { 0 };
        if (judge_multiple_owners(s, &f) < 0) { findings_free(&f); rc_fail_oom(rc); goto out; }
        for (int i = 0; i < f.n; i++)
            if (!seen[f.v[i].slot] && fix_plan_multi(s, f.v[i].slot, counts, p) < 0) { findings_free(&f); goto out; }
        findings_free(&f);
    }
    ret = 0;
out:
    free(owner); free(counts); free(nslots); free(seen);
    return ret;
}

/* The run of items from i on with item i's action, owner and target: their slots
 * into bits, their key counts summed into *keys_owner / *keys_target. Returns the end. */
static int fix_plan_run(const struct fix_plan *p, int i, unsigned char *bits, long long *keys_owner, long long *keys_target) {
    const struct fix_item *a = &p->v[i];
    int e = i;
    memset(bits, 0, CLUSTER_SLOTS);
    *keys_owner = *keys_target = 0;
    for (; e < p->n && p->v[e].action == a->action && p->v[e].owner == a->owner && p->v[e].target == a->target; e++) {
        bits[p->v[e].slot] = 1;
        *keys_owner += p->v[e].keys_owner;
        *keys_target += p->v[e].keys_target;
    }
    return e;
}

/* The plan, one line per action, owner and target with the slots as ranges (a failed
 * move leaves hundreds of slots to repair); what cannot be fixed stays one per slot. */
static void fix_plan_print(struct session *s, const struct fix_plan *p) {
    static const char *const names[] = { "", "finish the move", "roll back the move", "close", "assign", "drop extra claims", "cannot fix" };
    unsigned char *bits = malloc(CLUSTER_SLOTS);
    for (int i = 0, e; bits && i < p->n; i = e) {
        const struct fix_item *it = &p->v[i];
        const struct snode *o = it->owner >= 0 ? &s->nodes[it->owner] : NULL, *t = it->target >= 0 ? &s->nodes[it->target] : NULL;
        if (it->action == FIX_MANUAL) { rc_warn(s->rc, "slot %d: %s", it->slot, it->why ? it->why : "cannot fix automatically"); e = i + 1; continue; }
        long long ko, kt;
        e = fix_plan_run(p, i, bits, &ko, &kt);
        sds r = slots_ranges_str(bits, 8);
        char what[32];
        if (e - i == 1) snprintf(what, sizeof what, "slot %d", it->slot);
        else snprintf(what, sizeof what, "%d slots", e - i);
        if (it->action == FIX_FINISH || it->action == FIX_ROLLBACK)
            rc_progress(s->rc, "  %s: %s %s:%d -> %s:%d (keys: %lld on the target, %lld on the owner)%s%s", what, names[it->action],
                        o ? o->ip : "?", o ? o->port : 0, t ? t->ip : "?", t ? t->port : 0, kt, ko, e - i > 1 ? ": " : "", e - i > 1 && r ? r : "");
        else rc_progress(s->rc, "  %s: %s%s%s:%d%s%s", what, names[it->action], it->action == FIX_CLOSE ? " on its owner " : " to ",
                         o ? o->ip : "?", o ? o->port : 0, e - i > 1 ? ": " : "", e - i > 1 && r ? r : "");
        sdsfree(r);
    }
    free(bits);
}

/* SETSLOT STABLE on every master with slot open, and on the master of every replica
 * with it open (Valkey >= 8 replicates SETSLOT: a move cut short may have left the state
 * on the replicas only; the master's STABLE reaches them). */
static int fix_queue_stable(struct session *s, int slot) {
    unsigned char *sent = calloc((size_t)s->n + 1, 1);
    if (!sent) return rc_fail_oom(s->rc);
    int ret = 0;
    for (int i = 0; i < s->n && ret == 0; i++) {
        struct snode *x = &s->nodes[i];
        for (int k = 0; x->up && x->me && k < x->me->open_slots; k++) {
            if (x->me->open[k].slot != slot) continue;
            int m = snode_is_master(x) ? i : sess_index_of(s, snode_master_id(x));
            if (m >= 0 && !sent[m] && s->nodes[m].up) { sent[m] = 1; ret = act_setslot(s, &s->nodes[m], slot, "STABLE", NULL); }
            break;
        }
    }
    free(sent);
    return ret;
}

/* Apply fix's plan: STABLE for rollbacks and closes, ADDSLOTS(RANGE) for uncovered runs,
 * DELSLOTS + BUMPEPOCH for extra claims; then the moves to finish, by the mover. A dry
 * run (s->record) records all but the moves. Shared by fix and scale. */
static int fix_apply(struct session *s, const struct fix_plan *p, const struct day2_opts *o) {
    struct move *mv = calloc((size_t)p->n + 1, sizeof *mv);
    int nmv = 0;
    if (!mv) return rc_fail_oom(s->rc);
    for (int i = 0; i < p->n; i++) {
        const struct fix_item *it = &p->v[i];
        int r = 0;
        if (it->action == FIX_ROLLBACK || it->action == FIX_CLOSE) r = fix_queue_stable(s, it->slot);
        else if (it->action == FIX_ASSIGN) {   /* a run of slots for one owner: one range */
            int last = i;
            while (last + 1 < p->n && p->v[last + 1].action == FIX_ASSIGN && p->v[last + 1].owner == it->owner &&
                   p->v[last + 1].slot == p->v[last].slot + 1) last++;
            int step = s->nodes[it->owner].major >= 7 ? CLUSTER_SLOTS : ADDSLOTS_BATCH;
            for (int lo = it->slot; r == 0 && lo <= p->v[last].slot; lo += step)
                r = act_addslots_range(s, &s->nodes[it->owner], lo, lo + step - 1 < p->v[last].slot ? lo + step - 1 : p->v[last].slot);
            i = last;
        }
        else if (it->action == FIX_DROP_CLAIMS) {
            char num[16];
            snprintf(num, sizeof num, "%d", it->slot);
            for (int j = 0; j < s->n && r == 0; j++)
                if (j != it->owner && s->nodes[j].me && snode_is_master(&s->nodes[j]) && nodeinfo_owns(s->nodes[j].me, it->slot))
                    r = sess_queue(s, &s->nodes[j], "CLUSTER", "DELSLOTS", num, RESP_END);
            if (r == 0) r = sess_queue(s, &s->nodes[it->owner], "CLUSTER", "BUMPEPOCH", RESP_END);
        } else if (it->action == FIX_FINISH) {
            mv[nmv].slot = it->slot;
            mv[nmv].src = it->owner;
            mv[nmv++].dst = it->target;
        }
        if (r < 0) { free(mv); return -1; }
    }
    int ret = sess_drain_all(s, "fix");
    if (ret == 0 && nmv > 0 && !s->record) {
        long long keys = 0;
        int done = 0;
        const struct move_engine *eng = mover_choose(s, mv, nmv, &o->mo);
        ret = eng ? mover_run(s, mv, nmv, &o->mo, eng, &keys, &done) : -1;
        if (ret == 0) rc_progress(s->rc, "Finished %d interrupted move(s), %lld key(s) moved", done, keys);
    }
    free(mv);
    return ret;
}

/* What fix did: the slots it repaired; nothing: the cluster needed no repair. */
struct fix_result {
    int fixed, nothing;
    int multi;                  /* --search-multiple-owners: said in the "nothing" line */
};

/* fix's preflight: every master that owns slots answers (fix changes what they own);
 * atomic migrations of an earlier run (they finish by themselves) waited for, and what
 * is still in flight after --timeout cancelled. A dry run does not wait. */
static int fix_preflight(struct session *s, const struct day2_opts *o) {
    struct rc *rc = s->rc;
    for (int i = 0; i < s->n; i++)
        if (!s->nodes[i].up && snode_is_master(&s->nodes[i]) && snode_slot_count(&s->nodes[i]) > 0)
            return rc_fail_kind_msg(rc, s->nodes[i].err_kind, rc_sprintf("master %s:%d is not reachable: %s; fix needs every master with slots",
                                                                       s->nodes[i].ip, s->nodes[i].port, s->nodes[i].err));
    if (sess_migrations(s) && !o->dry_run && day2_wait_migrations(s, s->deadline) < 0) {
        rc_progress(rc, "Cancelling: %s", rc->err);
        sess_cancel_migrations(s);
        if (day2_wait_migrations(s, rc_deadline_within(s->deadline, 10)) < 0) return -1;
    }
    return 0;
}

/* fix's plan: a repair for every open, uncovered (and with --search-multiple-owners
 * doubly owned) slot, refused before any change when --migration atomic meets a
 * key-by-key move only MIGRATE finishes; said. */
static int fix_make_plan(struct session *s, const struct day2_opts *o, struct fix_plan *p) {
    if (fix_plan_make(s, o->multi_owners, p) < 0) return -1;
    for (int i = 0; o->mo.migration == MIGRATION_ATOMIC && i < p->n; i++)
        if (p->v[i].action == FIX_FINISH)
            return rc_fail_as(s->rc, RC_ERR_USAGE, "--migration atomic: slot %d is open from a key-by-key move, which only MIGRATE finishes; "
                              "nothing changed (run fix without --migration)", p->v[i].slot);
    rc_progress(s->rc, "Plan: %d slot(s) to repair", p->n);
    fix_plan_print(s, p);
    return 0;
}

/* fix's report: "Nothing to fix" said, or one line; or the --json document {ok,
 * command, fixed}. */
static void fix_report(struct rc *rc, const struct fix_result *res) {
    if (res->nothing) rc_progress(rc, "Nothing to fix: no open slot, all %d slots covered%s", CLUSTER_SLOTS, res->multi ? ", no slot with two owners" : "");
    if (rc->json) rc_json_outf(rc, "{\"ok\":true,\"command\":\"fix\",\"fixed\":%d}\n", res->fixed);
    else if (!res->nothing) printf("fix: repaired %d slot(s); no open slot, all %d slots covered\n", res->fixed, CLUSTER_SLOTS);
}

/* fix ADDR: wait for (or cancel) atomic migrations in flight, then close open slots,
 * cover uncovered ones and settle double owners; asks unless --yes. Options ->
 * preflight -> plan -> confirm, apply -> wait -> report; fails after the repair when
 * some slot needs a hand. */
static int cmd_fix(struct rc *rc, int argc, char **argv) {
    struct day2_opts o;
    day2_opts_init(&o);
    int r = day2_parse(rc, argc, argv, fix_opts, (int)(sizeof fix_opts / sizeof fix_opts[0]), usage_fix, &o, 1);
    if (r) return r < 0 ? -1 : 0;
    struct session s;
    struct fix_plan p = { 0 };
    struct fix_result res = { .multi = o.multi_owners };
    int ret = -1;
    if (day2_open(rc, &s, argv[optind]) < 0 || fix_preflight(&s, &o) < 0) goto out;
    /* Right after a kill the nodes may still be exchanging the last epochs: let them. */
    if (day2_wait_settled(&s, rc_deadline_within(s.deadline, 2), o.multi_owners) == 0) {
        res.nothing = 1;
        fix_report(rc, &res);
        ret = 0;
        goto out;
    }
    if (fix_make_plan(&s, &o, &p) < 0) goto out;
    int manual = 0;
    for (int i = 0; i < p.n; i++) manual += p.v[i].action == FIX_MANUAL;
    s.record = o.dry_run;
    if (!o.dry_run && rc_confirm(rc, "Repair these slots?") < 0) goto out;
    s.deadline = rc_deadline_in(rc->timeout);   /* the repair's own, from the answer on */
    if (fix_apply(&s, &p, &o) < 0 || o.dry_run) { ret = o.dry_run ? 0 : -1; goto out; }
    if (day2_wait_settled(&s, s.deadline, o.multi_owners) < 0 && !manual) goto out;
    if (manual) { rc_fail(rc, "fixed %d slot(s); %d need a hand (see the warnings above)", p.n - manual, manual); goto out; }
    res.fixed = p.n;
    fix_report(rc, &res);
    ret = 0;
out:
    fix_plan_free(&p);
    sess_free(&s);
    return ret;
}

/* ---- set-timeout ----------------------------------------------------------------- */

static void usage_set_timeout(FILE *f) {
    fputs("usage: rcluster set-timeout ADDR MS [--dry-run] [--yes] [--json]\n"
          "\n"
          "Set cluster-node-timeout to MS milliseconds on every node (CONFIG SET) and persist\n"
          "it (CONFIG REWRITE). A node started without a config file keeps it until restart;\n"
          "that is reported as a warning.\n", f);
}

static const struct option set_timeout_opts[] = {
    D2_OPT("dry-run", no_argument, OPT_D2_DRY_RUN), D2_OPT("cluster-yes", no_argument, OPT_D2_YES),
};

/* Whether container c (an entry of GET /containers/json) is where the cluster reaches
 * x: x's address is one of its network IPs, or a port it publishes on x's IP. Pure. */
static int container_serves(const json_value_s *c, const struct snode *x) {
    const json_value_s *nets = json_get(json_get(c, "NetworkSettings"), "Networks");
    for (size_t i = 0; i < json_length(nets); i++) {
        const char *ip = json_string(json_get(json_member_value(nets, i), "IPAddress"));
        if (ip && *ip && !strcmp(ip, x->ip)) return 1;
    }
    const json_value_s *ports = json_get(c, "Ports");
    for (size_t i = 0; i < json_length(ports); i++) {
        const json_value_s *p = json_at(ports, i);
        const char *ip = json_string(json_get(p, "IP"));
        if (ip && (!strcmp(ip, x->ip) || !strcmp(ip, "0.0.0.0")) && (int)json_number(json_get(p, "PublicPort"), -1) == x->port) return 1;
    }
    const json_value_s *labels = json_get(c, "Labels");
    const char *hip = json_string(json_get(labels, LABEL_HOST_IP)), *hport = json_string(json_get(labels, LABEL_HOST_PORT));
    long port;
    return hip && hport && !strcmp(hip, x->ip) && rc_parse_int(hport, 1, 65535, &port) == 0 && port == x->port;
}

/* mine[i] = 1 for the nodes of s that run in a container `rcluster up` made (labelled
 * io.rcluster.cluster): their redis.conf is rcluster's own; *data_dir (when given)
 * gets their cluster's data dir (caller frees). Without a Docker daemon
 * that answers, none; rc->err is left as it was. */
static void sess_find_up_nodes(struct rc *rc, struct session *s, unsigned char *mine, sds *data_dir) {
    struct docker d;
    json_value_s *all = NULL;
    struct rc_err_saved saved = rc_err_save(rc);
    docker_init_closed(&d, rc);
    if (docker_open(rc, &d) == 0 && docker_list_by_label(&d, "containers", LABEL_CLUSTER, NULL, &all) == 0)
        for (size_t k = 0; k < json_length(all); k++)
            for (int i = 0; i < s->n; i++) {
                if (!container_serves(json_at(all, k), &s->nodes[i])) continue;
                mine[i] = 1;
                const char *dir = docker_label(json_at(all, k), LABEL_DATA_DIR);
                if (data_dir && !*data_dir && dir && dir[0] == '/') *data_dir = sdsnew(dir);
            }
    json_free(all);
    docker_free(&d);
    rc_err_restore(rc, &saved);
}

/* Defined in section 9a (up's files: the nodes' redis.conf and the manifest). */
static int up_persist_node_timeout(struct rc *rc, const char *dir, long ms);

/* What set-timeout did: the timeout, on how many of the nodes it is set and persisted. */
struct settimeout_result {
    long ms;
    int nodes, set, persisted;
};

/* Apply and wait: CONFIG SET cluster-node-timeout on every reachable node, and CONFIG
 * REWRITE on those not in rcluster's own containers (mine[i]: their redis.conf is up's,
 * rewritten by settimeout_persist_ours instead); a dry run (s->record) records them and
 * stops. Each answer counted into res; a refusal or a node not reachable is a warning. */
static int settimeout_apply(struct session *s, const char *ms_arg, const unsigned char *mine, struct settimeout_result *res) {
    struct rc *rc = s->rc;
    for (int i = 0; i < s->n; i++) {
        if (!s->nodes[i].up) { rc_warn(rc, "%s:%d not reachable: %s", s->nodes[i].ip, s->nodes[i].port, s->nodes[i].err); continue; }
        if (sess_queue(s, &s->nodes[i], "CONFIG", "SET", "cluster-node-timeout", ms_arg, RESP_END) < 0 ||
            (!mine[i] && sess_queue(s, &s->nodes[i], "CONFIG", "REWRITE", RESP_END) < 0)) return -1;
    }
    if (s->record) return 0;
    if (sess_flush_all(s) < 0) return -1;
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (!x->up) continue;
        struct resp *a = sess_reply(s, x, 0), *b = a && !mine[i] ? sess_reply(s, x, 0) : NULL;
        if (!a || (!b && !mine[i])) { rc_warn(rc, "%s:%d: %s", x->ip, x->port, rc->err); resp_free(a); continue; }
        if (a->type == RESP_ERROR) rc_warn(rc, "%s:%d: CONFIG SET cluster-node-timeout: %s", x->ip, x->port, a->str);
        else res->set++;
        if (b && b->type == RESP_ERROR) rc_warn(rc, "%s:%d: not persisted: CONFIG REWRITE: %s", x->ip, x->port, b->str);
        else if (b) res->persisted++;
        resp_free(a);
        resp_free(b);
    }
    return 0;
}

/* The timeout persisted on the `ours` nodes in containers made by up: their redis.conf
 * and the manifest under dir rewritten (a warning when they cannot be: a restart would
 * go back to the recorded timeout). */
static void settimeout_persist_ours(struct rc *rc, int ours, const char *dir, struct settimeout_result *res) {
    if (ours && dir && up_persist_node_timeout(rc, dir, res->ms) == 0) res->persisted += ours;
    else if (ours) rc_warn(rc, "%d node(s) run in containers made by `rcluster up`: set now, but their redis.conf and the "
                               "manifest could not be rewritten (a restart goes back to the recorded timeout): %s", ours,
                           rc->err ? rc->err : "no data dir label");
}

/* set-timeout's report: the --json document {ok (set on every node), command,
 * timeout_ms, nodes, set, persisted} or one line. */
static void settimeout_report(struct rc *rc, const struct settimeout_result *res) {
    if (rc->json) rc_json_outf(rc, "{\"ok\":%s,\"command\":\"set-timeout\",\"timeout_ms\":%ld,\"nodes\":%d,\"set\":%d,\"persisted\":%d}\n",
                               res->set == res->nodes ? "true" : "false", res->ms, res->nodes, res->set, res->persisted);
    else printf("set-timeout: cluster-node-timeout %ld ms set on %d of %d node(s), persisted on %d\n", res->ms, res->set, res->nodes, res->persisted);
    rc->json_done = rc->json;
}

/* set-timeout ADDR MS: cluster-node-timeout on every node (CONFIG SET, persisted with
 * CONFIG REWRITE; on nodes in containers made by up, in their redis.conf and manifest).
 * Options -> plan (which nodes are up's) -> apply and wait -> persist -> report; fails
 * (after the report) unless every node took it. */
static int cmd_set_timeout(struct rc *rc, int argc, char **argv) {
    struct day2_opts o;
    day2_opts_init(&o);
    int r = day2_parse(rc, argc, argv, set_timeout_opts, 2, usage_set_timeout, &o, 2);
    if (r) return r < 0 ? -1 : 0;
    struct settimeout_result res = { 0 };
    if (rc_parse_int(argv[optind + 1], 100, 86400000L, &res.ms) < 0) return day2_usage_fail(rc, "set-timeout: expected milliseconds from 100 to 86400000, got '%s'", argv[optind + 1]);
    struct session s;
    unsigned char *mine = NULL;
    sds dir = NULL;
    int ret = -1, ours = 0;
    if (day2_open(rc, &s, argv[optind]) < 0) goto out;
    if (!(mine = calloc((size_t)s.n + 1, 1))) { rc_fail_oom(rc); goto out; }
    sess_find_up_nodes(rc, &s, mine, &dir);
    for (int i = 0; i < s.n; i++) ours += mine[i];
    res.nodes = s.n;
    s.record = o.dry_run;
    if (settimeout_apply(&s, argv[optind + 1], mine, &res) < 0) goto out;
    if (o.dry_run) { ret = 0; goto out; }
    settimeout_persist_ours(rc, ours, dir, &res);
    settimeout_report(rc, &res);
    ret = res.set == res.nodes ? 0 : rc_fail(rc, "cluster-node-timeout set on only %d of %d node(s)", res.set, res.nodes);
out:
    sdsfree(dir);
    free(mine);
    sess_free(&s);
    return ret;
}

/* ====================================================================== */
/* 9a. Clusters rcluster runs: up, down, status, scale, written once over */
/*     struct placement (where nodes run), and its Docker implementation: */
/*     containers, a network, redis.conf files in a data dir              */
/* ====================================================================== */

#define UP_MAX_NODES   200

static void usage_up(FILE *f) {
    fputs("usage: rcluster up [--name NAME] [--nodes N] [--replicas R] [--subnet CIDR] [--image IMAGE]\n"
          "                   [--port BASE] [--publish-ip IP] [--data-dir DIR] [--password-file F]\n"
          "                   [--node-timeout MS] [--config 'directive value']... [--announce container|IP]\n"
          "                   [--insecure] [--server redis|valkey] [--network bridge|host] [--bind IP]\n"
          "                   [--restore DIR|FILE.rdb] [--dry-run] [--timeout SEC] [--json] [--yes] [--swarm]\n"
          "\n"
          "Create a Docker network, one redis.conf per node and N containers, then form a healthy\n"
          "Redis Cluster. Re-running it on a healthy cluster changes nothing; on a partial one it\n"
          "recreates missing containers and starts stopped ones. A failed run removes what it created.\n"
          "\n"
          "  --name NAME         cluster name (default redis): network NAME, containers NAME-1..NAME-N\n"
          "  --nodes N           number of nodes (default 6)\n"
          "  --replicas R        replicas per master (default 1)\n"
          "  --subnet CIDR       network subnet (default 10.38.0.0/16); node I gets host address .(10+I)\n"
          "  --image IMAGE       Redis or Valkey image (default redis:7.2-alpine; pulled when missing;\n"
          "                      without a registry the default is replaced by rcluster/SERVER:local,\n"
          "                      built from this host's redis-server or valkey-server; an --image\n"
          "                      that cannot be had is an error: see rcluster image build / load)\n"
          "  --server redis|valkey  what the image runs (default: read from its Entrypoint/Cmd/Env)\n"
          "  --port BASE         published ports BASE..BASE+N-1 and bus ports +10000 (default 6371)\n"
          "  --publish-ip IP     host address for published ports (default 127.0.0.1); any other than\n"
          "                      loopback needs a password or --insecure\n"
          "  --data-dir DIR      DIR/node-I/conf/redis.conf and DIR/node-I/data (default\n"
          "                      /var/lib/rcluster/NAME as root, else ~/.local/share/rcluster/NAME)\n"
          "  --password-file F   require this password (also --password P, RCLUSTER_PASSWORD); it is\n"
          "                      written only to the 0600 redis.conf files, never shown\n"
          "  --node-timeout MS   cluster-node-timeout (default 5000)\n"
          "  --config 'D V'      extra redis.conf line; not: port, bind, dir, cluster-enabled,\n"
          "                      cluster-config-file, cluster-port, cluster-announce-*, cluster-node-timeout,\n"
          "                      requirepass, masterauth, masteruser, include, rename-command, daemonize,\n"
          "                      tls-*, aclfile, unixsocket (appendonly may be overridden)\n"
          "  --announce MODE     container (default): nodes announce their container address; IP:\n"
          "                      they announce IP (an address of this host that containers reach)\n"
          "                      with the published ports, which are then published on IP unless\n"
          "                      --publish-ip says otherwise; for clients off this host\n"
          "  --network host      no Docker network: containers share the host's network; node I\n"
          "                      listens on BIND:BASE+I-1 (bus +10000) and announces --announce IP,\n"
          "                      else BIND; --subnet and --publish-ip do not apply\n"
          "  --bind IP           host mode: the address the nodes listen on (default 127.0.0.1); any\n"
          "                      other needs a password or --insecure; 0.0.0.0 needs --announce IP\n"
          "  --restore PATH      fill the new cluster from a backup (a DIR of `rcluster backup`, or\n"
          "                      RDB files): every file is read and checked first, and each value\n"
          "                      against the image's server version (its Env, else a run of\n"
          "                      `SERVER --version` in a throw-away container); a corrupt file or\n"
          "                      a value that server cannot hold is refused with nothing created.\n"
          "                      Only for a cluster that does not exist yet. Should the restore\n"
          "                      fail once the cluster is made, the cluster stays: retry with\n"
          "                      `rcluster restore ADDR PATH`\n"
          "  --dry-run           print the configs and the Engine API requests; change nothing\n"
          "  --swarm             on a Docker Swarm manager: one service NAME-I per node, pinned to one\n"
          "                      Swarm node (masters on distinct ones, no replica beside its master;\n"
          "                      fewer Swarm nodes than that needs --yes); an attachable overlay\n"
          "                      network (--subnet), redis.conf as a Swarm config, the password as a\n"
          "                      secret, data in the volume NAME-I-data; ports published in host mode\n"
          "                      on each Swarm node; nodes announce that node's address, or their\n"
          "                      overlay address with --announce container. The image must be on every\n"
          "                      Swarm node: there run DOCKER_HOST=... rcluster image build --tag T.\n"
          "                      What it decided is recorded in the Swarm config NAME-manifest-G; a\n"
          "                      re-run with other options is refused. A re-run re-homes a node whose\n"
          "                      Swarm node is down (once failed over) on a live one, as a replica\n"
          "\n"
          "Containers run as uid 999 when rcluster runs as root, else as the invoking user.\n", f);
}

static void usage_down(FILE *f) {
    fputs("usage: rcluster down [--name NAME] [--purge] [--data-dir DIR] [--yes] [--swarm]\n"
          "\n"
          "Stop and remove the cluster's containers and network (found by the label\n"
          LABEL_CLUSTER "=NAME). Data is kept, so `rcluster up` brings the same cluster back,\n"
          "unless --purge, which deletes DIR/node-* (asks on a TTY unless --yes).\n"
          "--swarm (on the manager): remove the services, configs, secret and overlay network;\n"
          "--purge also the manifest config and the volumes on this Swarm node; volumes on the\n"
          "other Swarm nodes are removed by `DOCKER_HOST=<that node> rcluster down --swarm --purge`\n"
          "there.\n", f);
}

static void usage_status(FILE *f) {
    fputs("usage: rcluster status [--name NAME] [--password-file F] [--json] [--swarm]\n"
          "\n"
          "Show the cluster's containers (state, address, ports) and its health.\n"
          "--swarm: its services, the Swarm node each is pinned to and whether that host is up;\n"
          "a lost host is named, with what became of its Redis nodes (failed over or not).\n"
          "Exit status: 0 healthy, 3 not healthy, 1 when it cannot be asked.\n", f);
}

static void usage_image(FILE *f) {
    fputs("usage: rcluster image build [--from PATH] [--tag TAG] [--dry-run]\n"
          "       rcluster image load FILE\n"
          "\n"
          "For hosts without registry access.\n"
          "  build   pack the host's redis-server, or valkey-server when there is no redis-server\n"
          "          (--from PATH: that one), and exactly the shared libraries it needs (from its\n"
          "          ELF headers) into an image TAG (default rcluster/redis:local, or\n"
          "          rcluster/valkey:local for Valkey); then: rcluster up --image TAG\n"
          "          --dry-run prints the import request and sends nothing\n"
          "  load    import a `docker save` archive\n"
          "On a Docker Swarm each node has its own image store and the manager cannot reach the\n"
          "others' daemons: run build/load on each node with DOCKER_HOST=<that node's daemon>\n"
          "(--all-nodes says so); `up --swarm` checks every node and names those that lack it.\n", f);
}

/* ---- options ------------------------------------------------------------------- */

enum { OPT_UP_NAME = OPT_FIRST_COMMAND_OPT + 20, OPT_UP_NODES, OPT_UP_REPLICAS, OPT_UP_SUBNET, OPT_UP_IMAGE,
       OPT_UP_PORT, OPT_UP_PUBLISH_IP, OPT_UP_DATA_DIR, OPT_UP_NODE_TIMEOUT, OPT_UP_CONFIG, OPT_UP_ANNOUNCE,
       OPT_UP_INSECURE, OPT_UP_DRY_RUN, OPT_UP_PURGE, OPT_UP_FROM, OPT_UP_TAG, OPT_UP_SERVER,
       OPT_UP_NETWORK, OPT_UP_BIND, OPT_UP_SWARM, OPT_UP_ALL_NODES, OPT_UP_RESTORE };

/* Options that shape a cluster, as bits of up_opts.given: which ones the user typed. */
enum { UPG_NODES = 1 << 0, UPG_REPLICAS = 1 << 1, UPG_SUBNET = 1 << 2, UPG_PORT = 1 << 3, UPG_PUBLISH_IP = 1 << 4,
       UPG_ANNOUNCE = 1 << 5, UPG_IMAGE = 1 << 6, UPG_NODE_TIMEOUT = 1 << 7, UPG_CONFIG = 1 << 8,
       UPG_NETWORK = 1 << 9, UPG_BIND = 1 << 10, UPG_SERVER = 1 << 11 };

struct up_opts {
    const char *name, *subnet, *image, *publish_ip, *data_dir, *announce, *from, *tag;
    unsigned given;           /* UPG_* bits of the shaping options on the command line */
    int publish_ip_set;       /* --publish-ip given (else it follows --announce IP) */
    int nodes, replicas, port, insecure, purge, subnet_given;
    int node_timeout;
    const char *server;       /* --server redis|valkey, or NULL: read it from the image */
    const char *network;      /* --network bridge (default) | host */
    const char *bind;         /* --bind IP: host mode's listening address (default 127.0.0.1) */
    int tag_set, image_set;   /* --tag / --image given (else defaults that may change) */
    int swarm;                /* --swarm: services on a Docker Swarm (section 9b) */
    int dry_run;              /* --dry-run: the Docker handle records instead of sending */
    const char *restore;      /* --restore DIR|FILE.rdb: fill the new cluster from a backup */
    char **configs;           /* pointers into argv */
    int nconfigs;
};

static int up_on_opt(struct rc *rc, int opt, const char *arg, void *ctx) {
    struct up_opts *o = ctx;
    long v;
    static const struct { int opt; unsigned bit; } shaping[] = {
        { OPT_UP_NODES, UPG_NODES }, { OPT_UP_REPLICAS, UPG_REPLICAS }, { OPT_UP_SUBNET, UPG_SUBNET },
        { OPT_UP_PORT, UPG_PORT }, { OPT_UP_PUBLISH_IP, UPG_PUBLISH_IP }, { OPT_UP_ANNOUNCE, UPG_ANNOUNCE },
        { OPT_UP_IMAGE, UPG_IMAGE }, { OPT_UP_NODE_TIMEOUT, UPG_NODE_TIMEOUT }, { OPT_UP_CONFIG, UPG_CONFIG },
        { OPT_UP_NETWORK, UPG_NETWORK }, { OPT_UP_BIND, UPG_BIND }, { OPT_UP_SERVER, UPG_SERVER } };
    for (size_t k = 0; k < sizeof shaping / sizeof shaping[0]; k++)
        if (shaping[k].opt == opt) o->given |= shaping[k].bit;
    switch (opt) {
    case OPT_UP_NAME: o->name = arg; return 0;
    case OPT_UP_SUBNET: o->subnet = arg; o->subnet_given = 1; return 0;
    case OPT_UP_IMAGE: o->image = arg; o->image_set = 1; return 0;
    case OPT_UP_PUBLISH_IP: o->publish_ip = arg; o->publish_ip_set = 1; return 0;
    case OPT_UP_DATA_DIR: o->data_dir = arg; return 0;
    case OPT_UP_ANNOUNCE: o->announce = arg; return 0;
    case OPT_UP_INSECURE: o->insecure = 1; return 0;
    case OPT_UP_DRY_RUN: o->dry_run = 1; rc_plan_begin(rc); return 0;
    case OPT_UP_PURGE: o->purge = 1; return 0;
    case OPT_UP_FROM: o->from = arg; return 0;
    case OPT_UP_TAG: o->tag = arg; o->tag_set = 1; return 0;
    case OPT_UP_NETWORK:
        if (strcmp(arg, "bridge") != 0 && strcmp(arg, "host") != 0) return rc_fail(rc, "--network: expected bridge or host, got '%s'", arg);
        o->network = arg;
        return 0;
    case OPT_UP_BIND: o->bind = arg; return 0;
    case OPT_UP_SWARM: o->swarm = 1; return 0;
    case OPT_UP_RESTORE: o->restore = arg; return 0;
    case OPT_UP_ALL_NODES:
        return rc_fail(rc, "image --all-nodes: a Swarm manager cannot reach the other nodes' daemons, so rcluster cannot put "
                           "an image there from here; on each Swarm node run `DOCKER_HOST=<that node's daemon> rcluster image "
                           "build --tag T` (or `image load FILE`); `up --swarm --image T` then checks every node and names "
                           "those that lack it");
    case OPT_UP_SERVER:
        if (strcmp(arg, "redis") != 0 && strcmp(arg, "valkey") != 0) return rc_fail(rc, "--server: expected redis or valkey, got '%s'", arg);
        o->server = arg;
        return 0;
    case OPT_UP_NODES:
        if (rc_parse_int(arg, 3, UP_MAX_NODES, &v) < 0) return rc_fail(rc, "--nodes: expected 3 to %d, got '%s'", UP_MAX_NODES, arg);
        o->nodes = (int)v;
        return 0;
    case OPT_UP_REPLICAS:
        if (rc_parse_int(arg, 0, 10, &v) < 0) return rc_fail(rc, "--replicas: expected 0 to 10, got '%s'", arg);
        o->replicas = (int)v;
        return 0;
    case OPT_UP_PORT:
        if (rc_parse_int(arg, 1, 65535, &v) < 0) return rc_fail(rc, "--port: expected a port number, got '%s'", arg);
        o->port = (int)v;
        return 0;
    case OPT_UP_NODE_TIMEOUT:
        if (rc_parse_int(arg, 100, 3600000, &v) < 0) return rc_fail(rc, "--node-timeout: expected 100 to 3600000 ms, got '%s'", arg);
        o->node_timeout = (int)v;
        return 0;
    case OPT_UP_CONFIG: {
        const char *why = conf_check_directive(arg);
        if (why) return rc_fail(rc, "--config '%s': %s", arg, why);
        char **c = realloc(o->configs, sizeof *c * (size_t)(o->nconfigs + 1));
        if (!c) return rc_fail_oom(rc);
        o->configs = c;
        o->configs[o->nconfigs++] = (char *)arg;
        return 0;
    }
    }
    return rc_fail(rc, "unknown option");
}

static void up_opts_defaults(struct up_opts *o) {
    memset(o, 0, sizeof *o);
    o->name = "redis";
    o->nodes = 6;
    o->replicas = 1;
    o->subnet = "10.38.0.0/16";
    o->image = "redis:7.2-alpine";
    o->port = 6371;
    o->publish_ip = "127.0.0.1";
    o->announce = "container";
    o->node_timeout = 5000;
    o->tag = "rcluster/redis:local";
    o->network = "bridge";
}

static const struct option up_longopts[] = {
    { "name", required_argument, NULL, OPT_UP_NAME }, { "nodes", required_argument, NULL, OPT_UP_NODES },
    { "replicas", required_argument, NULL, OPT_UP_REPLICAS }, { "subnet", required_argument, NULL, OPT_UP_SUBNET },
    { "image", required_argument, NULL, OPT_UP_IMAGE }, { "port", required_argument, NULL, OPT_UP_PORT },
    { "publish-ip", required_argument, NULL, OPT_UP_PUBLISH_IP }, { "data-dir", required_argument, NULL, OPT_UP_DATA_DIR },
    { "node-timeout", required_argument, NULL, OPT_UP_NODE_TIMEOUT }, { "config", required_argument, NULL, OPT_UP_CONFIG },
    { "announce", required_argument, NULL, OPT_UP_ANNOUNCE }, { "insecure", no_argument, NULL, OPT_UP_INSECURE },
    { "dry-run", no_argument, NULL, OPT_UP_DRY_RUN }, { "server", required_argument, NULL, OPT_UP_SERVER },
    { "network", required_argument, NULL, OPT_UP_NETWORK }, { "bind", required_argument, NULL, OPT_UP_BIND },
    { "swarm", no_argument, NULL, OPT_UP_SWARM }, { "restore", required_argument, NULL, OPT_UP_RESTORE },
};
static const struct option down_longopts[] = {
    { "name", required_argument, NULL, OPT_UP_NAME }, { "swarm", no_argument, NULL, OPT_UP_SWARM },
    { "purge", no_argument, NULL, OPT_UP_PURGE }, { "data-dir", required_argument, NULL, OPT_UP_DATA_DIR },
};
static const struct option image_longopts[] = {
    { "from", required_argument, NULL, OPT_UP_FROM }, { "tag", required_argument, NULL, OPT_UP_TAG },
    { "dry-run", no_argument, NULL, OPT_UP_DRY_RUN }, { "all-nodes", no_argument, NULL, OPT_UP_ALL_NODES },
};

/* An image reference we can put in a URL path unescaped. */
static int up_valid_image(const char *s) {
    if (!*s || strlen(s) > 255 || !isalnum((unsigned char)s[0])) return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/:@-") == strlen(s);
}

/* ---- placement: where a cluster's nodes run ------------------------------------ */

struct scale_run;
struct update_plan;
struct update_opts;
struct update_place;
struct up_run;
struct down_run;
struct status_view;

/* The layer under up, down, status, scale and update: Docker containers on one daemon
 * (this section) or Swarm services pinned to Swarm nodes (section 9b). Each command's
 * steps exist once above it and call these; an implementation does only what is its own
 * (containers, networks and files; services, configs, secrets and re-homing). The two
 * tables are at the end of section 9d, where the last of their functions is defined. */
struct placement {
    const char *what;                  /* "container" or "service", for messages */
    const char *mode;                  /* "" or " --swarm": the option in advice to the user */
    /* up: cmd_up (section 9a) runs these in this order; each returns 0, or -1 with rc->err. */
    int (*up_plan)(struct up_run *r);       /* the plan from the options alone, before any daemon is asked */
    int (*up_role)(struct up_run *r);       /* what the open daemon must be (a Swarm manager); NULL: nothing */
    int (*up_recorded)(struct up_run *r);   /* the manifest read, merged into the options, the plan made again */
    int (*up_inspect)(struct up_run *r);    /* what exists: any, settled, existing, missing, stopped, lost */
    int (*up_preflight)(struct up_run *r);  /* reads only: what the run needs is there and free */
    int (*up_apply)(struct up_run *r);      /* make what is missing, start what is stopped (a dry run records) */
    int (*up_wait_nodes)(struct up_run *r); /* until every node answers; sets with_state */
    int (*up_form)(struct up_run *r);       /* a new cluster of nodes without state */
    int (*up_join)(struct up_run *r);       /* the nodes without state join the others; NULL: it makes none */
    int (*up_healthy)(struct up_run *r, enum check_report how);   /* 0: healthy now (a report unless silent) */
    int (*up_record)(struct up_run *r);     /* the manifest: what shaped the cluster */
    int (*up_restore)(struct up_run *r);    /* --restore: fill the new cluster; NULL: up_plan refuses it */
    void (*up_report)(struct up_run *r);    /* how to connect */
    void (*up_rollback)(struct up_run *r);  /* remove what this run created */
    void (*up_free)(struct up_run *r);      /* what up_plan made */
    const char *up_settled_note;            /* up: said when every node exists; NULL: nothing */
    int up_poll_ms;                         /* up: how often it asks whether the cluster is healthy */
    /* scale: what exists (roles, addresses, the recorded plan); make and start the new
     * nodes (they are not yet members); remove the nodes that left; record the shape. */
    int (*scale_inspect)(struct scale_run *r);
    int (*scale_add)(struct scale_run *r);
    int (*scale_remove)(struct scale_run *r, int *removed);
    int (*scale_record)(struct scale_run *r);
    /* update: the recorded and wanted options, each node and how to replace it. */
    int (*update_plan)(struct update_plan *u, const struct update_opts *o);
    /* down: what exists (the --purge question, where the data stays); remove the
     * cluster's objects, keeping its data; delete its data (--purge). */
    int (*down_inspect)(struct down_run *r);
    int (*down_remove)(struct down_run *r);
    int (*down_purge)(struct down_run *r);
    /* status: the view from the daemon (rows, seed; prints nothing); the judge: ask the
     * seed, say what is wrong; 0 healthy, 1 not (rc->err), -1 nobody can be asked. */
    int (*status_view)(struct docker *d, const struct up_opts *o, struct status_view *v);
    int (*status_judge)(struct rc *rc, struct status_view *v, const char *name);
};

/* The placement of a cluster made with (swarm) or without --swarm. */
static const struct placement *placement_of(int swarm);

/* ---- the manifest: what shaped a cluster, so that a re-run repairs it as made ---- */

/* The shaping options as data: manifest key, option, UPG_* bit, its kind, and where
 * the value lives in struct up_opts (an int, or a const char * that may point into argv
 * or into the parsed manifest; a nullable one may be NULL, recorded as null, and is
 * absent from manifests older than it). --config, the server, the password and --user
 * are handled beside them. */
enum { UPF_STR, UPF_INT, UPF_NULLABLE };
struct up_field { const char *key, *opt; unsigned bit; int kind; size_t off; };
static const struct up_field up_fields[] = {
    { "nodes", "--nodes", UPG_NODES, UPF_INT, offsetof(struct up_opts, nodes) },
    { "replicas", "--replicas", UPG_REPLICAS, UPF_INT, offsetof(struct up_opts, replicas) },
    { "subnet", "--subnet", UPG_SUBNET, UPF_STR, offsetof(struct up_opts, subnet) },
    { "port", "--port", UPG_PORT, UPF_INT, offsetof(struct up_opts, port) },
    { "publish_ip", "--publish-ip", UPG_PUBLISH_IP, UPF_STR, offsetof(struct up_opts, publish_ip) },
    { "announce", "--announce", UPG_ANNOUNCE, UPF_STR, offsetof(struct up_opts, announce) },
    { "image", "--image", UPG_IMAGE, UPF_STR, offsetof(struct up_opts, image) },
    { "node_timeout", "--node-timeout", UPG_NODE_TIMEOUT, UPF_INT, offsetof(struct up_opts, node_timeout) },
    { "network", "--network", UPG_NETWORK, UPF_NULLABLE, offsetof(struct up_opts, network) },
    { "bind", "--bind", UPG_BIND, UPF_NULLABLE, offsetof(struct up_opts, bind) },
};
#define UP_FIELDS ((int)(sizeof up_fields / sizeof up_fields[0]))

static int *up_field_int(struct up_opts *o, const struct up_field *f) { return (int *)(void *)((char *)o + f->off); }
static const char **up_field_str(struct up_opts *o, const struct up_field *f) { return (const char **)(void *)((char *)o + f->off); }

/* The manifest text: rcluster's version, the name, every shaping option and the server
 * the image runs; whether there is a password, never the password. NULL on OOM. */
/* What a run derived where the manifest records an option: the image it really runs,
 * where it published, the size a scale reached (NULL or -1: the option's own value). */
struct up_derived { const char *server, *image, *publish_ip; int nodes, replicas; };

static sds up_manifest_render(struct rc *rc, const struct up_opts *opts, const struct up_derived *dv) {
    struct up_opts v = *opts, *o = &v;   /* a copy: the options stay as they were parsed */
    if (dv->image) v.image = dv->image;
    if (dv->publish_ip) v.publish_ip = dv->publish_ip;
    if (dv->nodes >= 0) v.nodes = dv->nodes;
    if (dv->replicas >= 0) v.replicas = dv->replicas;
    const char *server = dv->server;
    sds s = rc_json_str(sdsnew("{\"rcluster\":\"" RCLUSTER_VERSION "\",\"name\":"), o->name);
    for (int k = 0; k < UP_FIELDS; k++) {
        const struct up_field *f = &up_fields[k];
        s = rc_catprintf(s, ",\"%s\":", f->key);
        s = f->kind == UPF_INT ? rc_catprintf(s, "%d", *up_field_int(o, f)) : rc_json_str(s, *up_field_str(o, f));
    }
    s = rc_json_str(rc_cat(s, ",\"server\":"), server && *server ? server : NULL);
    s = rc_cat(s, ",\"config\":[");
    for (int k = 0; k < o->nconfigs; k++) s = rc_json_str(k ? rc_cat(s, ",") : s, o->configs[k]);
    s = rc_catprintf(s, "],\"password\":%s,\"user\":", rc->password ? "true" : "false");
    s = rc_json_str(s, rc->user);
    return rc_cat(s, "}\n");
}

/* DIR/rcluster.json parsed into *doc (caller json_free()s it). 1 when read, 0 when
 * there is none, -1 when it cannot be read or is not a manifest. */
static int up_manifest_read(struct rc *rc, const char *dir, json_value_s **doc) {
    *doc = NULL;
    sds path = rc_sprintf("%s/" CONF_MANIFEST, dir);
    if (!path) return rc_fail_oom(rc);
    int ret = 0;
    if (access(path, F_OK) == 0) {
        sds text = rc_read_file(rc, path, 1 << 20);
        json_error_s jerr;
        *doc = text ? json_parse(text, sdslen(text), &jerr) : NULL;
        if (!text) ret = -1;
        else if (!*doc) ret = rc_fail(rc, "%s: not valid JSON at line %zu column %zu: %s; fix or remove it", path, jerr.line, jerr.column, jerr.message);
        else if (!json_string(json_get(*doc, "rcluster"))) ret = rc_fail(rc, "%s: not an rcluster manifest; fix or remove it", path);
        else ret = 1;
        sdsfree(text);
    }
    if (ret < 0) { json_free(*doc); *doc = NULL; }
    sdsfree(path);
    return ret;
}

/* One recorded --config list against the given one; appends a difference line. */
static sds up_manifest_configs(sds diff, struct up_opts *o, const json_value_s *rec) {
    int same = (int)json_length(rec) == o->nconfigs;
    for (int k = 0; same && k < o->nconfigs; k++) same = json_string(json_at(rec, (size_t)k)) && !strcmp(json_string(json_at(rec, (size_t)k)), o->configs[k]);
    if (same) return diff;
    diff = rc_cat(diff, "  --config:");
    for (size_t k = 0; k < json_length(rec); k++) diff = rc_catprintf(diff, " '%s'", json_string(json_at(rec, k)) ? json_string(json_at(rec, k)) : "?");
    diff = rc_cat(diff, json_length(rec) ? " (recorded) ->" : " none (recorded) ->");
    for (int k = 0; k < o->nconfigs; k++) diff = rc_catprintf(diff, " '%s'", o->configs[k]);
    return rc_cat(diff, o->nconfigs ? " (given)\n" : " none (given)\n");
}

/* Lines in a difference list. */
static size_t up_diff_lines(const char *diff) {
    size_t n = 0;
    for (; *diff; diff++) n += *diff == '\n';
    return n;
}

/* Take every shaping option the user did not give from the manifest `doc` (strings
 * then point into doc), and refuse, listing them all, given ones that differ. A
 * cluster made with a password is never touched without one. `where` names the
 * manifest in messages, `mode` is inserted in the advice ("" or " --swarm"). */
static int up_manifest_merge(struct rc *rc, struct up_opts *o, const json_value_s *doc, const char *where, const char *mode) {
    sds diff = sdsempty();
    size_t sizes = 0;   /* differences scale can make: --nodes, --replicas */
    size_t updates = 0; /* differences update (--image, --config, --server) can make */
    size_t timeouts = 0; /* differences set-timeout can make */
    for (int k = 0; diff && k < UP_FIELDS; k++) {
        const struct up_field *f = &up_fields[k];
        const json_value_s *v = json_get(doc, f->key);
        int given = (o->given & f->bit) != 0;
        if (f->kind == UPF_NULLABLE) {
            const char *rec = json_string(v), **cur = up_field_str(o, f);
            if (!given) *cur = rec;
            else if (strcmp(*cur ? *cur : "", rec ? rec : "") != 0)
                diff = rc_catprintf(diff, "  %s: %s (recorded) -> %s (given)\n", f->opt, rec ? rec : "none", *cur ? *cur : "none");
        } else if (f->kind == UPF_INT) {
            double d = json_number(v, -1);
            if (d < 0 || d > 1e9 || d != (double)(int)d) { sdsfree(diff); return rc_fail(rc, "%s: '%s' is missing or not a number", where, f->key); }
            int *cur = up_field_int(o, f);
            if (!given) *cur = (int)d;
            else if (*cur != (int)d) {
                diff = rc_catprintf(diff, "  %s: %d (recorded) -> %d (given)\n", f->opt, (int)d, *cur);
                sizes += f->bit == UPG_NODES || f->bit == UPG_REPLICAS;
                timeouts += f->bit == UPG_NODE_TIMEOUT;
            }
        } else {
            const char *rec = json_string(v);
            if (!rec) { sdsfree(diff); return rc_fail(rc, "%s: '%s' is missing or not a string", where, f->key); }
            const char **cur = up_field_str(o, f);
            if (!given) *cur = rec;
            else if (strcmp(*cur, rec) != 0) {
                diff = rc_catprintf(diff, "  %s: %s (recorded) -> %s (given)\n", f->opt, rec, *cur);
                updates += f->bit == UPG_IMAGE;
            }
        }
    }
    /* The recorded address is the effective one (bridge mode; host mode publishes nothing). */
    o->publish_ip_set = !o->network || strcmp(o->network, "host") != 0;
    const char *rec_server = json_string(json_get(doc, "server"));
    if (rec_server && !(o->given & UPG_SERVER)) o->server = rec_server;
    else if (diff && rec_server && o->server && strcmp(rec_server, o->server) != 0) {
        diff = rc_catprintf(diff, "  --server: %s (recorded) -> %s (given)\n", rec_server, o->server);
        updates++;
    }
    const json_value_s *rc_list = json_get(doc, "config");
    size_t before = diff ? up_diff_lines(diff) : 0;
    if (o->given & UPG_CONFIG) {
        diff = up_manifest_configs(diff, o, rc_list);
        if (diff) updates += up_diff_lines(diff) - before;
    } else if (json_length(rc_list)) {
        char **c = calloc(json_length(rc_list), sizeof *c);
        if (!c) { sdsfree(diff); return rc_fail_oom(rc); }
        free(o->configs);
        o->configs = c;
        o->nconfigs = 0;
        for (size_t k = 0; k < json_length(rc_list); k++)
            if (json_string(json_at(rc_list, k))) o->configs[o->nconfigs++] = (char *)json_string(json_at(rc_list, k));
    }
    int had_pw = json_is_true(json_get(doc, "password"));
    const char *rec_user = json_string(json_get(doc, "user"));
    if (diff && !had_pw && rc->password) diff = rc_cat(diff, "  password: none (recorded) -> set (given)\n");
    if (diff && had_pw && rc->password && strcmp(rec_user ? rec_user : "", rc->user ? rc->user : "") != 0)
        diff = rc_catprintf(diff, "  --user: %s (recorded) -> %s (given)\n", rec_user ? rec_user : "none", rc->user ? rc->user : "none");
    if (!diff) return rc_fail_oom(rc);
    int ret = 0;
    if (had_pw && !rc->password)
        ret = rc_fail(rc, "cluster '%s' was made with a password; nothing was changed: pass the same --password-file F "
                          "(or RCLUSTER_PASSWORD)%s%s", o->name, rec_user ? " and --user " : "", rec_user ? rec_user : "");
    else if (sizes && sizes == up_diff_lines(diff))
        ret = rc_fail(rc, "cluster '%s' was made with other options (recorded in %s); nothing was changed:\n%s"
                          "To change its size and keep its data: `rcluster scale%s --name %s --masters %d --replicas %d`. "
                          "Run `rcluster up%s --name %s` without them to repair it as recorded.",
                      o->name, where, diff, mode, o->name, o->nodes / (o->replicas + 1), o->replicas, mode, o->name);
    else if (sizes + updates + timeouts == up_diff_lines(diff) && sdslen(diff)) {
        sds how = sdsempty();
        if (updates) how = rc_catprintf(how, "`rcluster update%s --name %s` with the new --image/--config", mode, o->name);
        if (timeouts) how = rc_catprintf(how, "%s`rcluster set-timeout HOST:PORT %d`", sdslen(how) ? "; " : "", o->node_timeout);
        if (sizes) how = rc_catprintf(how, "%s`rcluster scale%s --name %s --masters %d --replicas %d`", sdslen(how) ? "; " : "",
                                      mode, o->name, o->nodes / (o->replicas + 1), o->replicas);
        ret = how ? rc_fail(rc, "cluster '%s' was made with other options (recorded in %s); nothing was changed:\n%s"
                                "To change them on the running cluster and keep its data: %s. Run `rcluster up%s --name %s` "
                                "without them to repair it as recorded.", o->name, where, diff, how, mode, o->name)
                  : rc_fail_oom(rc);
        sdsfree(how);
    }
    else if (sdslen(diff))
        ret = rc_fail(rc, "cluster '%s' was made with other options (recorded in %s); nothing was changed:\n%s"
                          "Run `rcluster up%s --name %s` without them to repair it as recorded. To change them, start over with "
                          "`rcluster down%s --name %s --purge` (deletes its data), then `rcluster up%s` with the new options.",
                      o->name, where, diff, mode, o->name, mode, o->name, mode);
    sdsfree(diff);
    return ret;
}

/* up_manifest_merge for the manifest in DIR/rcluster.json. */
static int up_manifest_merge_dir(struct rc *rc, struct up_opts *o, const json_value_s *doc, const char *dir) {
    sds where = rc_sprintf("%s/" CONF_MANIFEST, dir);
    int ret = where ? up_manifest_merge(rc, o, doc, where, "") : rc_fail_oom(rc);
    sdsfree(where);
    return ret;
}

/* ---- the plan --------------------------------------------------------------- */

struct up_node {
    int i;                    /* 1-based */
    char name[64];            /* container name */
    char ip[16];              /* fixed container address */
    int host_port, bus_port;  /* published */
    int exists, running;      /* found on the daemon */
    int created;              /* container created by this run */
    int write_conf;           /* its redis.conf is missing: this run writes it */
};

struct up_plan {
    const struct up_opts *o;
    int n;                    /* the nodes the steps work on, 1..n: --nodes (a scale narrows it
                                 to the size it grows to while it adds nodes) */
    sds data_dir;
    uint32_t net;
    int prefix;
    char gateway[16];
    char connect_ip[64];      /* where rcluster reaches published ports */
    char announce_ip[64];     /* --announce IP, or "" for container addresses */
    struct up_node *nodes;
    int network_exists, network_created;
    int have_manifest;        /* DIR/rcluster.json exists (options were merged from it) */
    struct conf_undo undo;
    char server[16];          /* "redis" or "valkey": what the image runs (up_detect_server) */
    char local_image[64];     /* rcluster/SERVER:local when up built it (air-gapped default) */
    int host_net;             /* --network host: no Docker network, nodes on the host's ports */
    char bind_ip[16];         /* host mode: the address every node binds */
    int entry_is_server;      /* the image's Entrypoint is the server itself: Cmd is only the conf */
    const char *image;        /* the image it runs: --image, or local_image when up built it */
    const char *publish_ip;   /* where ports are published (bridge: --publish-ip, else --announce's
                                 address; host mode: the bind address, which up_check_ports probes) */
};

static void up_plan_free(struct up_plan *p) {
    sdsfree(p->data_dir);
    free(p->nodes);
    conf_undo_free(&p->undo);
}

/* Bridge mode: the subnet, the gateway, what nodes announce and where ports are published. */
static int up_plan_bridge(struct rc *rc, const struct up_opts *o, struct up_plan *p) {
    if (o->bind) return rc_fail(rc, "--bind is for --network host; in bridge mode ports are published on --publish-ip");
    if (conf_parse_cidr(o->subnet, &p->net, &p->prefix) < 0)
        return rc_fail_as(rc, RC_ERR_USAGE, "--subnet '%s': expected an IPv4 network like 10.38.0.0/16 (host bits zero)", o->subnet);
    if (!conf_cidr_is_private(p->net, p->prefix))
        rc_warn(rc, "--subnet %s is not private address space (RFC 1918); it may hide real hosts", o->subnet);
    if (conf_cidr_host(p->net, p->prefix, 1, p->gateway) < 0)
        return rc_fail_as(rc, RC_ERR_USAGE, "--subnet %s is too small", o->subnet);
    if (strcmp(o->announce, "container") != 0) {
        uint32_t a;
        if (conf_parse_ipv4(o->announce, &a) < 0) return rc_fail(rc, "--announce '%s': expected 'container' or an IPv4 address", o->announce);
        /* Nodes reach each other through the announced address, from inside containers,
         * where 127.0.0.1 is the container itself; and only ports published on that
         * address answer there. */
        if ((a >> 24) == 127 || a == 0)
            return rc_fail(rc, "--announce %s: inside a container that address is the container itself, so the nodes could "
                               "not reach each other; announce an address of this host that containers can reach (e.g. its "
                               "LAN address)", o->announce);
        if (!o->publish_ip_set) p->publish_ip = o->announce;
        snprintf(p->announce_ip, sizeof p->announce_ip, "%s", o->announce);
    }
    uint32_t pub;
    if (conf_parse_ipv4(p->publish_ip, &pub) < 0) return rc_fail(rc, "--publish-ip '%s': expected an IPv4 address", p->publish_ip);
    if (p->announce_ip[0] && (pub >> 24) == 127)
        return rc_fail(rc, "--announce %s needs the ports published on that address (or 0.0.0.0), not on --publish-ip %s",
                       o->announce, p->publish_ip);
    int loopback = (pub >> 24) == 127;
    if (!loopback && !rc->password && !o->insecure)
        return rc_fail(rc, "--publish-ip %s exposes the nodes beyond this host without a password; "
                           "give --password-file F (or RCLUSTER_PASSWORD), or --insecure to accept that", p->publish_ip);
    snprintf(p->connect_ip, sizeof p->connect_ip, "%s", pub == 0 ? "127.0.0.1" : p->publish_ip);
    return 0;
}

/* Host mode (--network host): no Docker network; node i listens on the host at BIND,
 * port BASE+i-1 (bus +10000), and announces --announce IP, else BIND. Nothing is
 * published, so --subnet and --publish-ip mean nothing here and are refused. */
static int up_plan_host(struct rc *rc, const struct up_opts *o, struct up_plan *p) {
    p->host_net = 1;
    if (o->subnet_given)
        return rc_fail(rc, "--subnet has no meaning with --network host: the containers use the host's own network, "
                           "so there is no Docker network to give a subnet");
    if (o->publish_ip_set)
        return rc_fail(rc, "--publish-ip has no meaning with --network host: nothing is published, the nodes listen on "
                           "the host itself; use --bind IP for the address they listen on");
    const char *bind = o->bind ? o->bind : "127.0.0.1";
    uint32_t b, a;
    if (conf_parse_ipv4(bind, &b) < 0) return rc_fail(rc, "--bind '%s': expected an IPv4 address of this host", bind);
    if ((b >> 24) != 127 && !rc->password && !o->insecure)
        return rc_fail(rc, "--bind %s exposes the nodes beyond this host without a password; "
                           "give --password-file F (or RCLUSTER_PASSWORD), or --insecure to accept that", bind);
    snprintf(p->bind_ip, sizeof p->bind_ip, "%s", bind);
    if (strcmp(o->announce, "container") != 0) {
        if (conf_parse_ipv4(o->announce, &a) < 0 || a == 0)
            return rc_fail(rc, "--announce '%s': expected an IPv4 address that clients and the other nodes reach", o->announce);
        snprintf(p->announce_ip, sizeof p->announce_ip, "%s", o->announce);
    } else if (b == 0) {
        return rc_fail(rc, "--bind 0.0.0.0 needs --announce IP: the nodes must tell clients and each other one address "
                           "of this host");
    } else {
        snprintf(p->announce_ip, sizeof p->announce_ip, "%s", bind);
    }
    /* up_check_ports probes the bind address: exactly what the nodes will bind. */
    p->publish_ip = p->bind_ip;
    snprintf(p->connect_ip, sizeof p->connect_ip, "%s", b == 0 ? "127.0.0.1" : bind);
    return 0;
}

/* The checks every plan (Docker or Swarm) makes of name, image, size and ports. */
static int up_check_shape(struct rc *rc, const struct up_opts *o) {
    if (!conf_valid_name(o->name))
        return rc_fail_as(rc, RC_ERR_USAGE, "--name '%s': expected [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 48 characters)", o->name);
    if (!up_valid_image(o->image)) return rc_fail(rc, "--image '%s': not a valid image reference", o->image);
    if (o->nodes < 3 * (o->replicas + 1))
        return rc_fail(rc, "--nodes %d with --replicas %d: a cluster needs at least 3 masters, so at least %d nodes",
                       o->nodes, o->replicas, 3 * (o->replicas + 1));
    if (o->port + o->nodes - 1 + CLUSTER_BUS_OFFSET > 65535)
        return rc_fail(rc, "--port %d: bus ports up to %d would exceed 65535", o->port, o->port + o->nodes - 1 + CLUSTER_BUS_OFFSET);
    return 0;
}

/* Validate the options and derive addresses, ports and paths. Changes nothing. */
static int up_plan_make(struct rc *rc, const struct up_opts *o, struct up_plan *p) {
    memset(p, 0, sizeof *p);
    p->o = o;
    p->n = o->nodes;
    p->image = o->image;
    p->publish_ip = o->publish_ip;
    if (up_check_shape(rc, o) < 0) return -1;
    if ((o->network && !strcmp(o->network, "host") ? up_plan_host(rc, o, p) : up_plan_bridge(rc, o, p)) < 0) return -1;
    if (rc->password && (strpbrk(rc->password, "\r\n") || !*rc->password))
        return rc_fail(rc, "the password must be one non-empty line");
    if (rc->user && !rc->password)
        return rc_fail(rc, "--user %s needs a password (--password-file F): the ACL user is created with it and replicas "
                           "sync as that user", rc->user);
    if (rc->user && (!conf_valid_name(rc->user) || !strcmp(rc->user, "default")))
        return rc_fail(rc, "--user '%s': expected a name like [a-zA-Z0-9][a-zA-Z0-9_.-]*, not 'default' (the password "
                           "already protects the default user)", rc->user);
    p->data_dir = o->data_dir ? sdsnew(o->data_dir) : conf_default_data_dir(o->name);
    if (!p->data_dir) return rc_fail(rc, "cannot choose a data dir (no HOME?); give --data-dir DIR");
    if (p->data_dir[0] != '/' || strpbrk(p->data_dir, ":,\n"))
        return rc_fail(rc, "--data-dir %s: must be an absolute path without ':' or ','", p->data_dir);
    p->nodes = calloc((size_t)o->nodes, sizeof *p->nodes);
    if (!p->nodes) return rc_fail_oom(rc);
    for (int k = 0; k < o->nodes; k++) {
        struct up_node *n = &p->nodes[k];
        n->i = k + 1;
        snprintf(n->name, sizeof n->name, "%s-%d", o->name, n->i);
        if (p->host_net) snprintf(n->ip, sizeof n->ip, "%.15s", p->announce_ip);
        else if (conf_cidr_host(p->net, p->prefix, (uint32_t)(CONF_FIRST_HOST + n->i), n->ip) < 0)
            return rc_fail(rc, "--subnet %s has no room for node %d at host address .%d", o->subnet, n->i, CONF_FIRST_HOST + n->i);
        n->host_port = o->port + k;
        n->bus_port = n->host_port + CLUSTER_BUS_OFFSET;
    }
    return 0;
}

/* A node's redis.conf; with `display`, the password shows as ***. */
static sds up_node_conf(struct rc *rc, struct up_plan *p, struct up_node *n, int display) {
    struct conf_params cp = {
        p->announce_ip[0] ? p->announce_ip : n->ip,
        p->announce_ip[0] ? n->host_port : 6379,
        p->announce_ip[0] ? n->bus_port : 16379,
        p->o->node_timeout,
        rc->password ? (display ? "***" : rc->password) : NULL,
        rc->user,
        p->o->configs, p->o->nconfigs,
        p->host_net ? n->host_port : 0,
        p->host_net ? p->bind_ip : NULL,
    };
    return conf_render(&cp);
}

/* Labels shared by the network and every container. */
static sds up_labels_json(sds s, struct up_plan *p, int node) {
    s = rc_cat(s, "{\"" LABEL_CLUSTER "\":");
    s = rc_json_str(s, p->o->name);
    s = rc_cat(s, ",\"" LABEL_VERSION "\":\"" RCLUSTER_VERSION "\",\"" LABEL_DATA_DIR "\":");
    s = rc_json_str(s, p->data_dir);
    if (node) s = rc_catprintf(s, ",\"" LABEL_NODE "\":\"%d\"", node);
    /* Host mode publishes nothing: status finds the node's address in these labels. */
    if (node && p->host_net)
        s = rc_catprintf(s, ",\"" LABEL_NETWORK "\":\"host\",\"" LABEL_HOST_IP "\":\"%s\",\"" LABEL_HOST_PORT "\":\"%d\"",
                         p->connect_ip, p->nodes[node - 1].host_port);
    return rc_cat(s, "}");
}

static sds up_network_body(struct up_plan *p) {
    sds s = sdsnew("{\"Name\":");
    s = rc_json_str(s, p->o->name);
    s = rc_catprintf(s, ",\"CheckDuplicate\":true,\"Driver\":\"bridge\",\"IPAM\":{\"Driver\":\"default\","
                        "\"Config\":[{\"Subnet\":\"%s\",\"Gateway\":\"%s\"}]},\"Labels\":", p->o->subnet, p->gateway);
    s = up_labels_json(s, p, 0);
    return rc_cat(s, "}");
}

/* The create body: fixed IP, binds, published ports, labels, restart policy, and the
 * command that reads the config (the password lives only in that file). */
static sds up_container_body(struct up_plan *p, struct up_node *n) {
    uid_t uid;
    gid_t gid;
    conf_container_ids(&uid, &gid);
    const char *pub = p->publish_ip;
    const char *server = p->server[0] ? p->server : "redis";
    sds s = sdsnew("{\"Image\":");
    s = rc_json_str(s, p->image);
    /* The conf dir is /etc/redis or /etc/valkey, as each server's packages have it. */
    if (p->entry_is_server) s = rc_catprintf(s, ",\"Cmd\":[\"/etc/%s/redis.conf\"]", server);
    else s = rc_catprintf(s, ",\"Cmd\":[\"%s-server\",\"/etc/%s/redis.conf\"]", server, server);
    s = rc_catprintf(s, ",\"User\":\"%u:%u\"%s,\"Labels\":", (unsigned)uid, (unsigned)gid,
                     p->host_net ? "" : ",\"ExposedPorts\":{\"6379/tcp\":{},\"16379/tcp\":{}}");
    s = up_labels_json(s, p, n->i);
    sds bc = rc_cat(conf_node_dir(p->data_dir, n->i, "conf"), server[0] == 'v' ? ":/etc/valkey" : ":/etc/redis");
    sds bd = rc_cat(conf_node_dir(p->data_dir, n->i, "data"), ":/data");
    if (s && bc && bd) {
        s = rc_cat(s, ",\"HostConfig\":{\"Binds\":[");
        s = rc_json_str(s, bc);
        s = rc_cat(s, ",");
        s = rc_json_str(s, bd);
        if (p->host_net) {
            s = rc_cat(s, "],\"RestartPolicy\":{\"Name\":\"unless-stopped\"},\"NetworkMode\":\"host\"}}");
            goto out;
        }
        s = rc_catprintf(s, "],\"PortBindings\":{\"6379/tcp\":[{\"HostIp\":\"%s\",\"HostPort\":\"%d\"}],"
                            "\"16379/tcp\":[{\"HostIp\":\"%s\",\"HostPort\":\"%d\"}]},"
                            "\"RestartPolicy\":{\"Name\":\"unless-stopped\"},\"NetworkMode\":",
                         pub, n->host_port, pub, n->bus_port);
        s = rc_json_str(s, p->o->name);
        s = rc_cat(s, "},\"NetworkingConfig\":{\"EndpointsConfig\":{");
        s = rc_json_str(s, p->o->name);
        s = rc_catprintf(s, ":{\"IPAMConfig\":{\"IPv4Address\":\"%s\"}}}}}", n->ip);
    } else {
        sdsfree(s);
        s = NULL;
    }
out:
    sdsfree(bc);
    sdsfree(bd);
    return s;
}

/* ---- preflight: what exists, what is ours, what is free ----------------------- */

/* Is a labelled object ours (this cluster, and node i when i > 0)? */
static int up_is_ours(const json_value_s *obj, const char *name, int i) {
    const char *c = docker_label(obj, LABEL_CLUSTER);
    if (!c || strcmp(c, name) != 0) return 0;
    if (i <= 0) return 1;
    const char *nl = docker_label(obj, LABEL_NODE);
    long v;
    return nl && rc_parse_int(nl, 1, 100000, &v) == 0 && v == i;
}

/* A node created in the other network mode cannot be repaired in this one. */
static int up_check_network_mode(struct rc *rc, struct up_plan *p, const json_value_s *c, const struct up_node *n) {
    const char *mode = docker_label(c, LABEL_NETWORK);
    int host = mode && !strcmp(mode, "host");
    if (host == p->host_net) return 0;
    return rc_fail(rc, "container %s runs with %s networking but this run asks for %s; pass %s again, or start over "
                       "with `rcluster down --name %s`", n->name, host ? "host" : "bridge", p->host_net ? "host" : "bridge",
                   host ? "--network host" : "no --network host", p->o->name);
}

/* Find the network and containers named like ours; refuse foreign ones. */
static int up_inspect_existing(struct docker *d, struct up_plan *p) {
    struct rc *rc = d->rc;
    json_value_s *v = NULL;
    int r = p->host_net ? 0 : docker_inspect(d, "networks", p->o->name, &v);
    if (r < 0) return -1;
    if (r == 1) {
        if (!up_is_ours(v, p->o->name, 0)) {
            json_free(v);
            return rc_fail(rc, "a foreign network named '%s' exists (not created by rcluster: no label %s=%s); "
                               "not touching it: choose another --name", p->o->name, LABEL_CLUSTER, p->o->name);
        }
        const char *sub = json_string(json_get(json_at(json_get(json_get(v, "IPAM"), "Config"), 0), "Subnet"));
        if (sub && strcmp(sub, p->o->subnet) != 0) {
            r = rc_fail(rc, "network '%s' exists with subnet %s, not %s; pass --subnet %s, or remove it with "
                            "`rcluster down --name %s`", p->o->name, sub, p->o->subnet, sub, p->o->name);
            json_free(v);
            return r;
        }
        p->network_exists = 1;
        json_free(v);
    }
    for (int k = 0; k < p->n; k++) {
        struct up_node *n = &p->nodes[k];
        r = docker_inspect(d, "containers", n->name, &v);
        if (r < 0) return -1;
        if (r == 0) continue;
        if (!up_is_ours(v, p->o->name, n->i)) {
            json_free(v);
            return rc_fail(rc, "a foreign container named '%s' exists (not node %d of rcluster cluster '%s'); "
                               "not touching it: remove it yourself or choose another --name", n->name, n->i, p->o->name);
        }
        if (up_check_network_mode(rc, p, v, n) < 0) { json_free(v); return -1; }
        const char *st = json_string(json_get(json_get(v, "State"), "Status"));
        n->exists = 1;
        p->network_exists |= p->host_net;   /* host mode: the host's network is always there */
        n->running = st && (!strcmp(st, "running") || !strcmp(st, "restarting"));
        json_free(v);
    }
    /* Containers of this cluster beyond --nodes mean the options changed under it. */
    json_value_s *all = NULL;
    if (docker_list_by_label(d, "containers", LABEL_CLUSTER, p->o->name, &all) < 0) return -1;
    int extra = 0;
    for (size_t k = 0; k < json_length(all); k++) {
        const char *nl = docker_label(json_at(all, k), LABEL_NODE);
        long v2;
        if (nl && rc_parse_int(nl, 1, 100000, &v2) == 0 && v2 > p->n) extra++;
    }
    json_free(all);
    if (extra)
        return rc_fail(rc, "cluster '%s' has %d container(s) beyond --nodes %d; pass its original --nodes, or change its size "
                           "and keep its data with `rcluster scale --name %s --masters M --replicas R`", p->o->name, extra, p->n, p->o->name);
    return 0;
}

static sds image_find_server(const char *from);
static const char *image_server_of(const char *binary);
static int image_make(struct rc *rc, struct docker *d, const char *binary, const char *tag, int quiet, sds *id);

/* The image is there, or pulled now. When the default image can be neither and this
 * host has a redis-server or valkey-server, build rcluster/SERVER:local from it and use
 * that (an air-gapped host just works); an --image that cannot be had stays an error:
 * no surprise substitution. */
static int up_ensure_image(struct docker *d, struct up_plan *p) {
    struct rc *rc = d->rc;
    const char *image = p->image;
    int r = docker_image_present(d, image);
    if (r != 0) return r < 0 ? -1 : 0;
    rc_progress(rc, "Image %s is not present; pulling it", image);
    if (p->o->dry_run ? docker_image_pullable(d, image) == 0 && docker_image_pull(d, image) == 0 : docker_image_pull(d, image) == 0)
        return 0;
    sds binary = p->o->image_set ? NULL : image_find_server(NULL);
    if (!binary && !p->o->image_set)
        return rc_wrap(rc, "image %s is missing and could not be pulled, and this host has no redis-server or valkey-server "
                           "on PATH to build one from (an air-gapped host?): load a `docker save %s -o FILE` archive made on a "
                           "host that has it with `rcluster image load FILE` and run up again, or build one from a server binary "
                           "copied here with `rcluster image build --from /path/to/redis-server` and run up with the "
                           "--image it prints", image, image);
    if (!binary)
        return rc_wrap(rc, "image %s is missing and could not be pulled (an air-gapped host? build one from this host's "
                           "redis-server with `rcluster image build --tag T` or load a `docker save` archive with "
                           "`rcluster image load FILE`, then pass --image T)", image);
    const char *server = image_server_of(binary);
    snprintf(p->local_image, sizeof p->local_image, "rcluster/%s:local", server);
    rc_progress(rc, "No %s from a registry (%s): building %s from this host's %s instead", image, rc->err ? rc->err : "?",
                p->local_image, binary);
    sds id = NULL;
    r = image_make(rc, d, binary, p->local_image, 1, &id);   /* quiet: the line above says it all */
    sdsfree(id);
    sdsfree(binary);
    if (r < 0) return rc_wrap(rc, "image %s could not be pulled, nor %s built", image, p->local_image);
    p->image = p->local_image;
    return 0;
}

/* No existing network may overlap our subnet (Docker would refuse, or worse, routes clash). */
static int up_check_subnet(struct docker *d, struct up_plan *p) {
    if (p->host_net) return 0;
    json_value_s *nets = NULL;
    if (docker_call_json(d, "GET", "/networks", NULL, &nets, 0) < 0) return -1;
    int ret = 0;
    for (size_t k = 0; ret == 0 && k < json_length(nets); k++) {
        const json_value_s *n = json_at(nets, k);
        const char *nm = json_string(json_get(n, "Name"));
        if (nm && p->network_exists && strcmp(nm, p->o->name) == 0) continue;
        const json_value_s *cfg = json_get(json_get(n, "IPAM"), "Config");
        for (size_t j = 0; ret == 0 && j < json_length(cfg); j++) {
            const char *sub = json_string(json_get(json_at(cfg, j), "Subnet"));
            uint32_t net;
            int pre;
            if (sub && conf_parse_cidr(sub, &net, &pre) == 0 && conf_cidr_overlap(net, pre, p->net, p->prefix))
                ret = rc_fail(d->rc, "--subnet %s overlaps Docker network '%s' (%s); choose another --subnet",
                              p->o->subnet, nm ? nm : "?", sub);
        }
    }
    json_free(nets);
    return ret;
}

/* Can we bind the host port? (Docker would fail at start, after we created things.) */
static int up_port_free(const char *ip, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 || errno != EADDRINUSE;
    close(fd);
    return ok;
}

static int up_check_ports(struct rc *rc, struct up_plan *p) {
    for (int k = 0; k < p->n; k++) {
        struct up_node *n = &p->nodes[k];
        if (n->exists) continue;
        int ports[2] = { n->host_port, n->bus_port };
        for (int j = 0; j < 2; j++)
            if (!up_port_free(p->publish_ip, ports[j]))
                return rc_fail(rc, "port %s:%d (for %s) is already in use; choose another --port", p->publish_ip, ports[j], n->name);
    }
    return 0;
}

/* ---- apply ---------------------------------------------------------------------- */

static int up_create_network(struct docker *d, struct up_plan *p) {
    if (p->network_exists || p->host_net) return 0;
    sds body = up_network_body(p);
    if (!body) return rc_fail_oom(d->rc);
    rc_progress(d->rc, "Creating network %s (%s)", p->o->name, p->o->subnet);
    int r = docker_call(d, "POST", "/networks/create", body, NULL, 0);
    sdsfree(body);
    if (r < 0) return -1;
    p->network_created = 1;
    return 0;
}

/* Write the missing redis.conf files (an existing one is never rewritten), recorded
 * for the undo. In dry-run print them instead, password masked. */
static int up_write_configs(struct rc *rc, struct up_plan *p) {
    if (!p->o->dry_run && conf_claim_data_dir(rc, p->data_dir, p->o->name, &p->undo) < 0) return -1;
    for (int k = 0; k < p->n; k++) {
        struct up_node *n = &p->nodes[k];
        if (!n->write_conf) continue;
        sds text = up_node_conf(rc, p, n, p->o->dry_run);
        if (!text) return rc_fail_oom(rc);
        int r = 0;
        if (p->o->dry_run) {
            sds path = rc_sprintf("%s/node-%d/conf/redis.conf", p->data_dir, n->i);
            rc_plan_file(rc, path ? path : "?", text);
            sdsfree(path);
        }
        else r = conf_write_node(rc, p->data_dir, n->i, text, &p->undo);
        sdsfree(text);
        if (r < 0) return -1;
    }
    return 0;
}

/* The manifest, when there is none yet (after the containers, so that it names the
 * server the image runs); recorded for the undo like the configs. */
static int up_write_manifest(struct rc *rc, struct up_plan *p) {
    if (p->have_manifest) return 0;
    struct up_derived dv = { p->server, p->image, p->publish_ip, -1, -1 };
    sds man = up_manifest_render(rc, p->o, &dv), path = rc_sprintf("%s/" CONF_MANIFEST, p->data_dir);
    int r = man && path ? 0 : rc_fail_oom(rc);
    if (r == 0 && p->o->dry_run) rc_plan_file(rc, path, man);
    else if (r == 0) r = conf_create_file(rc, path, man, 0600, &p->undo);
    sdsfree(man);
    sdsfree(path);
    return r;
}

/* The value of the first `directive` line in a redis.conf text (to the end of the
 * line), or NULL when there is none or on OOM. */
static sds up_conf_value(const char *text, const char *directive) {
    size_t dl = strlen(directive);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, directive, dl) && l[dl] == ' ') return sdsnewlen(l + dl + 1, strcspn(l + dl + 1, "\n"));
    return NULL;
}

/* set-timeout on a cluster made by up: node_timeout in DIR's manifest and the
 * cluster-node-timeout line of every node's redis.conf, so that a restart or a later
 * `up` keeps it (each file's former text kept as FILE.previous). */
static int up_persist_node_timeout(struct rc *rc, const char *dir, long ms) {
    json_value_s *doc = NULL;
    struct up_opts o;
    up_opts_defaults(&o);
    int r = up_manifest_read(rc, dir, &doc);
    if (r == 0) r = rc_fail(rc, "%s has no manifest", dir);
    if (r == 1) r = up_manifest_merge_dir(rc, &o, doc, dir);
    o.node_timeout = (int)ms;
    struct up_derived dv = { o.server, NULL, NULL, -1, -1 };
    sds man = r == 0 ? up_manifest_render(rc, &o, &dv) : NULL;
    sds path = r == 0 ? rc_sprintf("%s/" CONF_MANIFEST, dir) : NULL;
    if (r == 0) r = man && path ? conf_rewrite_file(rc, path, man, 0) : rc_fail_oom(rc);
    for (int i = 1; r >= 0 && i <= o.nodes; i++) {
        sds conf = rc_cat(conf_node_dir(dir, i, "conf"), "/redis.conf");
        sds text = conf ? rc_read_file(rc, conf, 1 << 20) : NULL;
        sds line = text ? up_conf_value(text, "cluster-node-timeout") : NULL;
        if (!text || !line) r = rc_wrap(rc, "node %d's redis.conf", i);
        else {
            sds from = rc_sprintf("\ncluster-node-timeout %s\n", line), to = rc_sprintf("\ncluster-node-timeout %ld\n", ms);
            char *at = from && to ? strstr(text, from) : NULL;
            sds out = at ? rc_cat(rc_cat(sdsnewlen(text, (size_t)(at - text)), to), at + sdslen(from)) : NULL;
            r = out ? conf_rewrite_file(rc, conf, out, 1) : rc_fail_oom(rc);
            sdsfree(out);
            sdsfree(from);
            sdsfree(to);
        }
        sdsfree(line);
        sdsfree(text);
        sdsfree(conf);
    }
    sdsfree(man);
    sdsfree(path);
    json_free(doc);
    free(o.configs);
    return r < 0 ? -1 : 0;
}

/* Is node n's password line in `have` the one these options would write? 0 when it
 * is; else -1 with a message saying what to pass. */
static int up_same_password(struct rc *rc, struct up_plan *p, const char *path, const char *have, const char *want) {
    sds hv = up_conf_value(have, "requirepass"), wv = up_conf_value(want, "requirepass");
    int ret = 0;
    if (hv && !wv)
        ret = rc_fail(rc, "cluster '%s' was made with a password (%s has requirepass); nothing was changed: pass the same "
                          "--password-file F (or RCLUSTER_PASSWORD)", p->o->name, path);
    else if (!hv && wv)
        ret = rc_fail(rc, "cluster '%s' was made without a password (%s has no requirepass); nothing was changed: "
                          "run `rcluster up` without a password", p->o->name, path);
    else if (hv && strcmp(hv, wv) != 0)
        ret = rc_fail(rc, "the password given is not the one cluster '%s' was made with (%s); nothing was changed", p->o->name, path);
    sdsfree(hv);
    sdsfree(wv);
    return ret;
}

/* Preflight of the files: which redis.conf files this run must write (the missing
 * ones), and proof from the existing ones (rcluster's own) that the password is the
 * one the cluster was made with. Without a manifest or cluster state to vouch for an
 * existing conf, it must be exactly what these options would write. Reads only. */
static int up_preflight_confs(struct rc *rc, struct up_plan *p) {
    int ret = 0;
    for (int k = 0; ret == 0 && k < p->n; k++) {
        struct up_node *n = &p->nodes[k];
        sds path = rc_cat(conf_node_dir(p->data_dir, n->i, "conf"), "/redis.conf");
        if (!path) return rc_fail_oom(rc);
        if (access(path, F_OK) < 0) { n->write_conf = 1; sdsfree(path); continue; }
        sds have = rc_read_file(rc, path, 1 << 20), want = have ? up_node_conf(rc, p, n, 0) : NULL;
        if (!have) ret = rc_wrap(rc, "cannot read node %d's config", n->i);
        else if (!want) ret = rc_fail_oom(rc);
        else ret = up_same_password(rc, p, path, have, want);
        if (ret == 0 && !p->have_manifest && !conf_node_has_state(p->data_dir, n->i) && strcmp(have, want) != 0)
            ret = rc_fail(rc, "%s exists with other settings than these options and nothing records how it was made; "
                              "not rewriting it: remove the old cluster's data with `rcluster down --name %s --purge` or "
                              "choose another --data-dir", path, p->o->name);
        sdsfree(have);
        sdsfree(want);
        sdsfree(path);
    }
    return ret;
}

/* Containers that outlived their network (it was removed, and this run made it anew)
 * still name the old one; attach each to the new network at its fixed address, which
 * Docker allows on a stopped container, so that it can start. */
static int up_reconnect_network(struct docker *d, struct up_plan *p) {
    if (!p->network_created || p->o->dry_run) return 0;
    sds path = rc_sprintf("/networks/%s/connect", p->o->name);
    int ret = path ? 0 : rc_fail_oom(d->rc), attached = 0;
    for (int k = 0; ret == 0 && k < p->n; k++) {
        struct up_node *n = &p->nodes[k];
        if (!n->exists || n->created) continue;
        attached++;
        sds body = rc_json_str(sdsnew("{\"Container\":"), n->name);
        body = rc_catprintf(body, ",\"EndpointConfig\":{\"IPAMConfig\":{\"IPv4Address\":\"%s\"}}}", n->ip);
        if (!body) ret = rc_fail_oom(d->rc);
        else if (docker_call(d, "POST", path, body, NULL, 0) < 0) ret = rc_wrap(d->rc, "re-attaching %s to the new network %s", n->name, p->o->name);
        sdsfree(body);
    }
    if (ret == 0 && attached) rc_progress(d->rc, "Attached the existing containers to the new network %s", p->o->name);
    sdsfree(path);
    return ret;
}

/* Does an image's command word name server NAME ("valkey-server" as ".../valkey-server")? */
static int up_word_is(const char *word, const char *name) {
    const char *base = strrchr(word, '/');
    base = base ? base + 1 : word;
    return strcmp(base, name) == 0;
}

/* Which server the image runs, from its own Entrypoint and Cmd, else the version its
 * Env names (official images set REDIS_VERSION / VALKEY_VERSION), else its name.
 * --server wins. Returns "redis", "valkey" or NULL (cannot tell). */
static const char *up_server_of_image(const json_value_s *img, int *entry_is_server) {
    const json_value_s *cfg = json_get(img, "Config");
    const json_value_s *ep = json_get(cfg, "Entrypoint"), *cmd = json_get(cfg, "Cmd");
    static const char *const servers[] = { "valkey", "redis" };
    *entry_is_server = 0;
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s-server", servers[k]);
        const char *e0 = json_string(json_at(ep, 0));
        if (e0 && up_word_is(e0, name)) { *entry_is_server = 1; return servers[k]; }
    }
    for (int k = 0; k < 2; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s-server", servers[k]);
        for (size_t j = 0; j < json_length(ep); j++) if (json_string(json_at(ep, j)) && up_word_is(json_string(json_at(ep, j)), name)) return servers[k];
        for (size_t j = 0; j < json_length(cmd); j++) if (json_string(json_at(cmd, j)) && up_word_is(json_string(json_at(cmd, j)), name)) return servers[k];
    }
    const json_value_s *env = json_get(cfg, "Env");
    for (size_t j = 0; j < json_length(env); j++) {
        const char *v = json_string(json_at(env, j));
        if (v && !strncmp(v, "VALKEY_VERSION=", 15)) return "valkey";
        if (v && !strncmp(v, "REDIS_VERSION=", 14)) return "redis";
    }
    const json_value_s *tags = json_get(img, "RepoTags");
    for (size_t j = 0; j < json_length(tags); j++) {
        const char *v = json_string(json_at(tags, j));
        if (v && strstr(v, "valkey")) return "valkey";
        if (v && strstr(v, "redis")) return "redis";
    }
    return NULL;
}

/* Which server binary the image ships, when its config does not say: create a container
 * from it (never started), ask for the stat of the usual paths, and remove it again.
 * The container carries the cluster's label, so `down` finds it should this be cut short.
 * "redis", "valkey" or NULL. */
static const char *up_probe_image(struct docker *d, struct up_plan *p) {
    static const char *const paths[][2] = {
        { "valkey", "/usr/local/bin/valkey-server" }, { "valkey", "/usr/bin/valkey-server" },
        { "redis", "/usr/local/bin/redis-server" }, { "redis", "/usr/bin/redis-server" } };
    struct rc *rc = d->rc;
    sds body = rc_cat(rc_json_str(sdsnew("{\"Image\":"), p->image), ",\"Entrypoint\":[\"/nonexistent\"],\"Labels\":");
    body = rc_cat(up_labels_json(body, p, 0), "}");
    json_value_s *v = NULL;
    const char *found = NULL;
    if (!body || docker_call_json(d, "POST", "/containers/create", body, &v, 0) < 0 || !json_string(json_get(v, "Id"))) {
        sdsfree(body);
        json_free(v);
        return NULL;
    }
    sdsfree(body);
    const char *id = json_string(json_get(v, "Id"));
    for (size_t k = 0; !found && k < sizeof paths / sizeof paths[0]; k++) {
        sds path = docker_urlencode(rc_sprintf("/containers/%s/archive?path=", id), paths[k][1]);
        int st = path ? docker_call(d, "HEAD", path, NULL, NULL, 404) : -1;
        sdsfree(path);
        if (st < 0) break;
        if (st >= 200 && st < 300) found = paths[k][0];
    }
    sds del = rc_sprintf("/containers/%s?force=1", id);
    struct rc_err_saved saved = rc_err_save(rc);
    if (!del || docker_call(d, "DELETE", del, NULL, NULL, 404) < 0) rc_warn(rc, "could not remove probe container %.12s", id);
    rc_err_restore(rc, &saved);
    sdsfree(del);
    json_free(v);
    return found;
}

/* Decide what the containers run: --server, else what GET /images/{name}/json says. */
static int up_detect_server(struct docker *d, struct up_plan *p) {
    struct rc *rc = d->rc;
    if (p->server[0]) return 0;
    if (p->o->server) { snprintf(p->server, sizeof p->server, "%s", p->o->server); return 0; }
    sds path = rc_sprintf("/images/%s/json", p->image);
    json_value_s *img = NULL;
    int st = path ? docker_call_json(d, "GET", path, NULL, &img, 404) : rc_fail_oom(rc);
    sdsfree(path);
    if (st < 0) return -1;
    const char *srv = img ? up_server_of_image(img, &p->entry_is_server) : NULL;
    json_free(img);
    if (!srv && st != 404 && !p->o->dry_run) srv = up_probe_image(d, p);
    if (!srv && st != 404)
        rc_warn(rc, "cannot tell from image %s (its config, its files) whether it runs redis-server or valkey-server; assuming redis-server "
                    "(pass --server valkey if it runs Valkey)", p->image);
    snprintf(p->server, sizeof p->server, "%s", srv ? srv : "redis");
    return 0;
}

/* Create the missing containers on parallel connections. */
static int up_create_containers(struct docker *d, struct up_plan *p) {
    struct rc *rc = d->rc;
    int todo = 0;
    for (int k = 0; k < p->n; k++) todo += !p->nodes[k].exists;
    if (todo && up_detect_server(d, p) < 0) return -1;
    struct docker_req *reqs = calloc((size_t)p->n, sizeof *reqs);
    int *idx = calloc((size_t)p->n, sizeof *idx);
    int m = 0, ret = 0;
    if (!reqs || !idx) { free(reqs); free(idx); return rc_fail_oom(rc); }
    for (int k = 0; ret == 0 && k < p->n; k++) {
        struct up_node *n = &p->nodes[k];
        if (n->exists) continue;
        reqs[m].method = "POST";
        reqs[m].path = rc_sprintf("/containers/create?name=%s", n->name);
        reqs[m].body = up_container_body(p, n);
        idx[m++] = k;
        if (!reqs[m - 1].path || !reqs[m - 1].body) ret = rc_fail_oom(rc);
    }
    if (ret == 0 && m) {
        rc_progress(rc, "Creating %d container(s) from %s (%s-server)", m, p->image, p->server);
        ret = docker_call_parallel(d, reqs, m);
    }
    for (int j = 0; j < m; j++) {
        if (reqs[j].status >= 200 && reqs[j].status < 300) { p->nodes[idx[j]].created = 1; p->nodes[idx[j]].exists = 1; }
        docker_req_clear(&reqs[j]);
    }
    free(reqs);
    free(idx);
    return ret;
}

/* Start every stopped container at once. */
/* Start the stopped containers among nodes [from, to) in parallel. */
static int up_start_range(struct docker *d, struct up_plan *p, int from, int to, const char *what) {
    struct docker_req *reqs = calloc((size_t)to - (size_t)from + 1, sizeof *reqs);
    if (!reqs) return rc_fail_oom(d->rc);
    int m = 0, ret = 0;
    for (int k = from; ret == 0 && k < to; k++) {
        if (p->nodes[k].running) continue;
        reqs[m].method = "POST";
        reqs[m].allow = 304;   /* already started */
        reqs[m].path = rc_sprintf("/containers/%s/start", p->nodes[k].name);
        if (!reqs[m++].path) ret = rc_fail_oom(d->rc);
    }
    if (ret == 0 && m) {
        rc_progress(d->rc, "Starting %d %scontainer(s)", m, what);
        ret = docker_call_parallel(d, reqs, m);
    }
    for (int j = 0; j < m; j++) docker_req_clear(&reqs[j]);
    free(reqs);
    for (int k = from; ret == 0 && k < to; k++) p->nodes[k].running = 1;
    return ret;
}

/* The engine makes the first nodes/(replicas+1) nodes masters (one host, input order).
 * A fresh master keeps cluster_state:fail for its first 2 s; starting the masters first
 * lets that delay run out while the daemon is still starting the replicas. */
static int up_start_containers(struct docker *d, struct up_plan *p) {
    int masters = p->n / (p->o->replicas + 1);
    if (up_start_range(d, p, 0, masters, "master ") < 0) return -1;
    return up_start_range(d, p, masters, p->n, masters < p->n ? "replica " : "");
}

/* Why a node did not come up: its state and last log lines. */
static void up_explain_node(struct docker *d, struct up_node *n) {
    struct rc *rc = d->rc;
    struct rc_err_saved saved = rc_err_save(rc);
    json_value_s *v = NULL;
    sds state = NULL;
    if (docker_inspect(d, "containers", n->name, &v) == 1) {
        const json_value_s *st = json_get(v, "State");
        const char *s = json_string(json_get(st, "Status"));
        state = rc_sprintf("%s, last exit code %g, restarted %g times", s ? s : "?",
                           json_number(json_get(st, "ExitCode"), -1), json_number(json_get(v, "RestartCount"), 0));
    }
    json_free(v);
    sds logs = docker_container_logs(d, n->name, 20);
    rc_err_restore(rc, &saved);
    rc_wrap(rc, "container %s (%s) did not answer; its last log lines:\n%s\n", n->name, state ? state : "state unknown",
            logs && sdslen(logs) ? logs : "(no output)");
    sdsfree(state);
    sdsfree(logs);
}

/* Has the container not crashed? With restart policy unless-stopped a crashing redis
 * is restarted forever, so one restart already means it will not come up by itself;
 * checking lets a bad config fail in a second instead of at the timeout. */
static int up_container_alive(struct docker *d, struct up_node *n) {
    json_value_s *v = NULL;
    if (docker_inspect(d, "containers", n->name, &v) != 1) return 1;
    const json_value_s *st = json_get(v, "State");
    const char *s = json_string(json_get(st, "Status"));
    int alive = json_number(json_get(v, "RestartCount"), 0) == 0 && (!s || !strcmp(s, "running") || !strcmp(s, "created"));
    json_free(v);
    return alive;
}

/* Wait until every node answers PING through its published port. */
static int up_wait_ping(struct docker *d, struct up_plan *p, int64_t deadline) {
    struct rc *rc = d->rc;
    rc_progress(rc, "Waiting for %d nodes to answer PING", p->n);
    for (int k = 0; k < p->n; k++) {
        struct up_node *n = &p->nodes[k];
        for (;;) {
            int64_t step = rc_now_ms() + 1000;
            if (engine_wait_ping(rc, p->connect_ip, n->host_port, step < deadline ? step : deadline) == 0) break;
            if (rc_interrupted()) return -1;
            if (rc_now_ms() >= deadline || !up_container_alive(d, n)) { up_explain_node(d, n); return -1; }
        }
    }
    return 0;
}

/* A failed run removes what it created, in reverse order, and keeps the first error. */
static void up_rollback(struct docker *d, struct up_plan *p) {
    struct rc *rc = d->rc;
    if (p->o->dry_run) return;
    struct rc_err_saved saved = rc_err_save(rc);
    int m = 0;
    struct docker_req *reqs = calloc((size_t)p->n, sizeof *reqs);
    for (int k = 0; reqs && k < p->n; k++) {
        if (!p->nodes[k].created) continue;
        reqs[m].method = "DELETE";
        reqs[m].allow = 404;
        reqs[m].path = rc_sprintf("/containers/%s?force=1", p->nodes[k].name);
        if (reqs[m].path) m++;
    }
    if (m) rc_progress(rc, "Removing the %d container(s) this run created", m);
    if (m && docker_call_parallel(d, reqs, m) < 0) rc_warn(rc, "%s", rc->err);
    for (int j = 0; j < m; j++) docker_req_clear(&reqs[j]);
    free(reqs);
    if (p->network_created) {
        sds path = rc_sprintf("/networks/%s", p->o->name);
        rc_progress(rc, "Removing network %s", p->o->name);
        if (path && docker_call(d, "DELETE", path, NULL, NULL, 404) < 0) rc_warn(rc, "%s", rc->err);
        sdsfree(path);
    }
    if (p->undo.n) rc_progress(rc, "Removing the %d directories this run created", p->undo.n);
    conf_undo_run(rc, &p->undo);
    rc_err_restore(rc, &saved);
}

static void up_print_connect(struct rc *rc, struct up_plan *p) {
    if (rc->json || p->o->dry_run) return;
    printf("\nConnect: redis-cli -c -h %s -p %d%s\n", p->connect_ip, p->nodes[0].host_port,
           rc->password ? "   (password: REDISCLI_AUTH=... or -a)" : "");
    if (!p->announce_ip[0])
        printf("Nodes announce container addresses (%s..%s:6379): redirections work from this host and other\n"
               "containers on network %s; use --announce IP for clients elsewhere.\n",
               p->nodes[0].ip, p->nodes[p->n - 1].ip, p->o->name);
    printf("Data: %s   Remove: rcluster down --name %s [--purge]\n", p->data_dir, p->o->name);
}

/* engine_create asks before changing nodes; these are nodes this run just made. */
static int up_form_cluster(struct rc *rc, struct up_plan *p) {
    struct engine_addr *a = calloc((size_t)p->n, sizeof *a);
    if (!a) return rc_fail_oom(rc);
    int ret = 0;
    for (int k = 0; k < p->n && ret == 0; k++) {
        a[k].host = sdsnew(p->connect_ip);
        a[k].port = p->nodes[k].host_port;
        if (!a[k].host) ret = rc_fail_oom(rc);
    }
    if (ret == 0) ret = engine_create(rc, a, p->n, p->o->replicas, ENGINE_NO_CONFIRM);
    for (int k = 0; k < p->n; k++) sdsfree(a[k].host);
    free(a);
    return ret;
}

/* ---- up --restore: check the backup before anything exists, fill the cluster after ---- */

/* The INFO server lines that name SERVER ("redis" or "valkey") at version VER, for
 * info_server_desc, server_caps and server_payload_versions. */
static void server_info_text(const char *server, const char *ver, char *info, size_t len) {
    snprintf(info, len, !strcmp(server, "valkey") ? "server_name:valkey\r\nvalkey_version:%s\r\nredis_version:7.2.4\r\n"
                                                  : "redis_version:%s\r\n", ver);
}

/* Section 9c. */
#define RS_ANY_DB (-1)   /* a target's databases are not known yet */
static int restore_precheck(struct rc *rc, const char *path, int max, int v80, int dbs, long long *keys);
static int restore_run(struct rc *rc, const char *addr, const char *path, int replace, int dry_run, int report);

/* The version an image's server reports: its Env (REDIS_VERSION / VALKEY_VERSION, as
 * official images set), else what `SERVER-server --version` prints ("v=X.Y.Z") in a
 * container made for it (no network) and removed again (labelled with the cluster's
 * name, so `down` finds it should this be cut short). "" when it cannot be told. */
static void image_server_version(struct docker *d, const char *image, const char *server, const char *cluster,
                                 char *ver, size_t len) {
    struct rc *rc = d->rc;
    ver[0] = 0;
    sds path = rc_sprintf("/images/%s/json", image);
    json_value_s *img = NULL;
    int st = path ? docker_call_json(d, "GET", path, NULL, &img, 404) : -1;
    sdsfree(path);
    const json_value_s *env = json_get(json_get(img, "Config"), "Env");
    for (size_t j = 0; !ver[0] && j < json_length(env); j++) {
        const char *v = json_string(json_at(env, j));
        const char *want = !strcmp(server, "valkey") ? "VALKEY_VERSION=" : "REDIS_VERSION=";
        if (v && !strncmp(v, want, strlen(want))) snprintf(ver, len, "%s", v + strlen(want));
    }
    json_free(img);
    if (ver[0] || st != 200 || d->record) return;
    sds body = rc_cat(rc_json_str(sdsnew("{\"Image\":"), image), ",\"Entrypoint\":[");
    body = rc_catprintf(body, "\"%s-server\"],\"Cmd\":[\"--version\"],\"NetworkDisabled\":true,\"Labels\":{\"" LABEL_CLUSTER "\":", server);
    body = rc_cat(rc_json_str(body, cluster), "}}");
    json_value_s *c = NULL;
    struct rc_err_saved saved = rc_err_save(rc);
    const char *id = body && docker_call_json(d, "POST", "/containers/create", body, &c, 0) >= 0 ? json_string(json_get(c, "Id")) : NULL;
    sdsfree(body);
    if (id) {
        sds start = rc_sprintf("/containers/%s/start", id), wait = rc_sprintf("/containers/%s/wait", id), del = rc_sprintf("/containers/%s?force=1", id);
        if (start && wait && docker_call(d, "POST", start, NULL, NULL, 0) >= 0 && docker_call(d, "POST", wait, NULL, NULL, 0) >= 0) {
            sds log = docker_container_logs(d, id, 5);
            const char *v = log ? strstr(log, " v=") : NULL;
            if (v) snprintf(ver, len, "%.*s", (int)strcspn(v + 3, " \r\n"), v + 3);
            sdsfree(log);
        }
        if (!del || docker_call(d, "DELETE", del, NULL, NULL, 404) < 0) rc_warn(rc, "could not remove the version probe container %.12s", id);
        sdsfree(start);
        sdsfree(wait);
        sdsfree(del);
    }
    json_free(c);
    rc_err_restore(rc, &saved);   /* a failed probe is no failure: the caller decides */
}

/* cluster-databases N among the --config lines (Valkey >= 9.0), else 1. */
static int up_config_databases(const struct up_opts *o) {
    long v = 1;
    for (int i = 0; i < o->nconfigs; i++) {
        const char *c = o->configs[i];
        if (!strncmp(c, "cluster-databases ", 18) && rc_parse_int(c + 18, 1, INT_MAX, &v) < 0) v = 1;
    }
    return (int)v;
}

/* Before anything is made: read every file of the backup to its end with its checksum,
 * and check its values against what the image's server reads. A version that cannot be
 * told leaves that to the restore itself (still before its first write). */
static int up_restore_precheck(struct docker *d, struct up_plan *p) {
    struct rc *rc = d->rc;
    char ver[32], info[128];
    if (up_detect_server(d, p) < 0) return -1;
    image_server_version(d, p->o->image, p->server, p->o->name, ver, sizeof ver);
    int max = 1000, v80 = 1, dbs = RS_ANY_DB, reads = 0, writes = 0;
    if (ver[0]) {
        server_info_text(p->server, ver, info, sizeof info);
        server_payload_versions(info, &writes, &reads);
        if (reads) max = reads;
        v80 = (server_caps(info) & SRV_ATOMIC_VALKEY) != 0;
        dbs = v80 ? up_config_databases(p->o) : 1;
        rc_progress(rc, "up --restore: image %s runs %s %s", p->o->image, !strcmp(p->server, "valkey") ? "Valkey" : "Redis", ver);
    } else {
        rc_progress(rc, "up --restore: %s which version image %s runs; values are checked against the nodes once they answer, before the first write",
                    p->o->dry_run ? "--dry-run starts no container to ask" : "cannot tell", p->o->image);
    }
    long long keys = 0;
    if (restore_precheck(rc, p->o->restore, max, v80, dbs, &keys) < 0) {
        if (rc->err_kind == RC_ERR_FAIL) rc->err_kind = RC_ERR_CORRUPT;
        return rc_wrap(rc, "up --restore %s: nothing created", p->o->restore);
    }
    if (p->o->dry_run) rc_progress(rc, "up --restore: would restore %lld keys from %s once the cluster is formed", keys, p->o->restore);
    return 0;
}

/* After the cluster is formed: restore the backup into it. A failure leaves the cluster
 * as it is and says how to retry. */
static int up_restore_fill(struct rc *rc, struct up_plan *p) {
    char addr[96];
    snprintf(addr, sizeof addr, "%s:%d", p->connect_ip, p->nodes[0].host_port);
    rc_progress(rc, "Restoring %s into cluster '%s'", p->o->restore, p->o->name);
    if (restore_run(rc, addr, p->o->restore, 0, 0, !rc->json) == 0) return 0;
    sds msg = rc_sprintf("cluster '%s' is up at %s, but restoring %s into it failed: %s; the cluster stays as it is: retry with "
                         "`rcluster restore %s %s%s` (--replace overwrites keys already restored), or remove it with `rcluster down --name %s --purge`",
                         p->o->name, addr, p->o->restore, rc->err ? rc->err : "?", addr, p->o->restore, rc->password ? " --password-file F" : "", p->o->name);
    return rc_fail_kind_msg(rc, rc->err_kind, msg);
}

/* Where the cluster's data lives: --data-dir, else the label on its containers or
 * network (where an earlier run put it), else the default. Caller frees *dir. */
static int up_locate_data_dir(struct docker *d, const struct up_opts *o, const char *dflt, sds *dir) {
    *dir = NULL;
    const char *kinds[2] = { "containers", "networks" };
    for (int k = 0; !o->data_dir && !*dir && k < 2; k++) {
        json_value_s *all = NULL;
        if (docker_list_by_label(d, kinds[k], LABEL_CLUSTER, o->name, &all) < 0) return -1;
        for (size_t j = 0; !*dir && j < json_length(all); j++) {
            const char *l = docker_label(json_at(all, j), LABEL_DATA_DIR);
            if (l && l[0] == '/' && !(*dir = sdsnew(l))) { json_free(all); return rc_fail_oom(d->rc); }
        }
        json_free(all);
    }
    if (!*dir && !(*dir = sdsnew(o->data_dir ? o->data_dir : dflt))) return rc_fail_oom(d->rc);
    return 0;
}

/* --swarm: section 9b. */
/* --announce with --swarm: the Swarm node's own address (the default) or "container". */
#define SWARM_ANNOUNCE_HOST "swarm-node"

/* ---- up: one run over a placement (Docker here, Swarm in section 9b) ----------------- */

/* One run of `up`, whatever the placement: what its steps read and decide on. */
struct up_run {
    struct rc *rc;
    const struct placement *pl;
    struct up_opts want;          /* the run's own copy of the options (its --config list too):
                                     the placement's defaults and the manifest merge into it
                                     (up_recorded); the parsed ones stay as given */
    struct up_opts *o;            /* &want */
    struct docker *d;             /* the daemon; in a dry run it records what it would change */
    int64_t deadline;             /* the whole run's, from --timeout */
    int recorded;                 /* a manifest was read: the options not given come from it */
    int any;                      /* something of the cluster exists (a node, its network) */
    int settled;                  /* everything exists and runs: maybe nothing to do */
    int existing, missing, stopped, lost;   /* nodes made, to make, to start, to re-home */
    int with_state;               /* nodes that know their cluster (preflight or up_wait_nodes) */
    int keep;                     /* nodes joined the cluster: a failure leaves what exists */
    char where[48];               /* " on N Swarm node(s)", or "" */
    sds rejoin;                   /* said when every node kept its state ("Nodes restarted from
                                     the kept data in DIR"), or NULL */
    struct up_docker *dk;         /* the Docker placement's own (below) */
    struct swarm_up *sw;          /* the Swarm placement's own (section 9b) */
};

/* ---- up on Docker: the placement's up ops ---------------------------------------------- */

/* up on Docker: the plan, the data dir and the manifest read there. */
struct up_docker { struct up_plan p; json_value_s *recorded; sds dir; };

static int up_docker_plan(struct up_run *r) {
    if (!(r->dk = calloc(1, sizeof *r->dk))) return rc_fail_oom(r->rc);
    return up_plan_make(r->rc, r->o, &r->dk->p);
}

/* The data dir (--data-dir, else where an earlier run put it), its manifest merged into
 * the options, the plan made again from them. */
static int up_docker_recorded(struct up_run *r) {
    struct up_docker *k = r->dk;
    int ret = up_locate_data_dir(r->d, r->o, k->p.data_dir, &k->dir);
    if (ret == 0) ret = up_manifest_read(r->rc, k->dir, &k->recorded);
    if (ret == 1) ret = up_manifest_merge_dir(r->rc, r->o, k->recorded, k->dir);
    if (ret < 0) return -1;
    r->o->data_dir = k->dir;
    up_plan_free(&k->p);
    if (up_plan_make(r->rc, r->o, &k->p) < 0) return -1;
    k->p.have_manifest = r->recorded = k->recorded != NULL;
    return 0;
}

/* The network and the containers: which exist, which run. */
static int up_docker_inspect(struct up_run *r) {
    struct up_plan *p = &r->dk->p;
    if (up_inspect_existing(r->d, p) < 0) return -1;
    for (int k = 0; k < p->n; k++) {
        r->existing += p->nodes[k].exists;
        r->stopped += p->nodes[k].exists && !p->nodes[k].running;
    }
    r->missing = p->n - r->existing;
    r->any = p->network_exists || r->existing;
    r->settled = p->network_exists && !r->missing && !r->stopped;
    return 0;
}

/* Reads only: the configs (up_preflight_confs). A repair needs each missing node's
 * state; a new cluster (or one whose containers were removed, data kept) needs the state
 * of all of its nodes or of none, and its subnet and ports free. */
static int up_docker_preflight(struct up_run *r) {
    struct rc *rc = r->rc;
    struct up_plan *p = &r->dk->p;
    const struct up_opts *o = r->o;
    if (up_preflight_confs(rc, p) < 0) return -1;
    if (r->any && o->restore)
        return rc_fail_as(rc, RC_ERR_USAGE, "up --restore: cluster '%s' already exists (its containers or network); --restore makes a new "
                          "cluster only: put the backup into this one with `rcluster restore %s:%d %s`", o->name, p->connect_ip,
                          p->nodes[0].host_port, o->restore);
    for (int k = 0; r->any && k < p->n; k++)
        if (!p->nodes[k].exists && !conf_node_has_state(p->data_dir, p->nodes[k].i))
            return rc_fail(rc, "container %s is missing and so is its state (%s/node-%d/data/nodes.conf), so it cannot "
                               "rejoin; start over with `rcluster down --name %s --purge && rcluster up --name %s`",
                           p->nodes[k].name, p->data_dir, p->nodes[k].i, o->name, o->name);
    if (r->any) { r->with_state = p->n; return 0; }
    for (int k = 0; k < p->n; k++) r->with_state += conf_node_has_state(p->data_dir, p->nodes[k].i);
    if (r->with_state && r->with_state < p->n)
        return rc_fail(rc, "%d of %d nodes have cluster state in %s but the others do not; start over with "
                           "`rcluster down --name %s --purge && rcluster up --name %s`", r->with_state, p->n, p->data_dir,
                       o->name, o->name);
    if (o->restore && r->with_state)
        return rc_fail_as(rc, RC_ERR_USAGE, "up --restore: cluster '%s' has kept data in %s; --restore makes a new cluster only (start it with "
                          "`rcluster up --name %s`, then `rcluster restore`)", o->name, p->data_dir, o->name);
    if (r->with_state && !(r->rejoin = rc_sprintf("Nodes restarted from the kept data in %s", p->data_dir))) return rc_fail_oom(rc);
    return up_check_subnet(r->d, p) < 0 || up_check_ports(rc, p) < 0 ? -1 : 0;
}

/* A new cluster first gets its image (pulled, or built here) and its backup checked;
 * then the missing configs, the network, the missing containers, and all started. */
static int up_docker_apply(struct up_run *r) {
    struct up_plan *p = &r->dk->p;
    struct docker *d = r->d;
    if (!r->any) {
        if (up_ensure_image(d, p) < 0 || (r->o->restore && up_restore_precheck(d, p) < 0)) return -1;
        rc_progress(r->rc, "Data dir: %s", p->data_dir);
    }
    if (up_write_configs(r->rc, p) < 0 || up_create_network(d, p) < 0 || up_reconnect_network(d, p) < 0 ||
        up_create_containers(d, p) < 0) return -1;
    return up_start_containers(d, p);
}

/* Every node answers PING; which of them know their cluster was read before they
 * started (up_docker_preflight). */
static int up_docker_wait_nodes(struct up_run *r) { return up_wait_ping(r->d, &r->dk->p, r->deadline); }

static int up_docker_form(struct up_run *r) { return up_form_cluster(r->rc, &r->dk->p); }

static int up_docker_healthy(struct up_run *r, enum check_report how) {
    return check_cluster(r->rc, r->dk->p.connect_ip, r->dk->p.nodes[0].host_port, how);
}

static int up_docker_record(struct up_run *r) { return up_write_manifest(r->rc, &r->dk->p); }

static int up_docker_restore(struct up_run *r) { return up_restore_fill(r->rc, &r->dk->p); }

static void up_docker_report(struct up_run *r) { up_print_connect(r->rc, &r->dk->p); }

static void up_docker_rollback(struct up_run *r) { up_rollback(r->d, &r->dk->p); }

static void up_docker_free(struct up_run *r) {
    if (!r->dk) return;
    up_plan_free(&r->dk->p);
    json_free(r->dk->recorded);
    sdsfree(r->dk->dir);
    free(r->dk);
    r->dk = NULL;
}

/* ---- up: its steps, the same over both placements ------------------------------------- */

/* The daemon, recording in a dry run, then what the placement needs it to be. */
static int up_open(struct up_run *r) {
    int ret = docker_open(r->rc, r->d);
    r->d->record = r->o->dry_run;
    return ret == 0 && r->pl->up_role ? r->pl->up_role(r) : ret;
}

/* Say what this run does: create, repair, or, when everything exists and runs, nothing
 * if the cluster is healthy now. 1 when nothing is left to do. */
static int up_decide(struct up_run *r) {
    struct rc *rc = r->rc;
    const struct up_opts *o = r->o;
    const struct placement *pl = r->pl;
    if (!r->any) {
        rc_progress(rc, "%s cluster '%s'%s: %d nodes, %d replica(s) per master, Engine API %s",
                    r->recorded ? "Starting recorded" : "Creating", o->name, r->where, o->nodes, o->replicas, rc->api_version);
        return 0;
    }
    if (!r->settled) {
        char lost[48] = "";
        if (r->lost) snprintf(lost, sizeof lost, ", %d to re-home", r->lost);
        rc_progress(rc, "Repairing cluster '%s'%s: %d %s(s) missing, %d stopped%s", o->name, r->where, r->missing, pl->what,
                    r->stopped, lost);
        return 0;
    }
    if (pl->up_settled_note) rc_progress(rc, "Cluster '%s': all %d %ss exist; %s", o->name, o->nodes, pl->what, pl->up_settled_note);
    if (pl->up_healthy(r, CHECK_SILENT) == 0) {
        rc_progress(rc, "Cluster '%s' is up and healthy; nothing to do", o->name);
        return 1;
    }
    rc_progress(rc, "Cluster '%s' runs but is not healthy yet: %s", o->name, rc->err ? rc->err : "");
    return 0;
}

/* Poll until the cluster is healthy (nodes that kept their state rejoin by themselves),
 * then report it. */
static int up_wait_healthy(struct up_run *r) {
    struct rc *rc = r->rc;
    const char *name = r->o->name, *mode = r->pl->mode;
    rc_progress(rc, "Waiting for the cluster to be healthy");
    while (r->pl->up_healthy(r, CHECK_SILENT) != 0) {
        if (rc_interrupted()) return rc_fail(rc, "interrupted");
        if (rc_now_ms() >= r->deadline)
            return rc_wrap(rc, "cluster '%s' did not become healthy within %g s (see `rcluster status%s --name %s`); if it cannot "
                               "recover, start over with `rcluster down%s --name %s --purge && rcluster up%s --name %s`",
                           name, rc->timeout, mode, name, mode, name, mode, name);
        rc_sleep_ms(r->pl->up_poll_ms);
    }
    return r->pl->up_healthy(r, CHECK_REPORT) == 0 ? 0 : -1;
}

/* Every node answers; then the nodes form a new cluster (none existed, none has state),
 * or those with state rejoin by themselves and those without join them (then they
 * stay, whatever follows); then the cluster is healthy. */
static int up_wait(struct up_run *r) {
    struct rc *rc = r->rc;
    const struct placement *pl = r->pl;
    int n = r->o->nodes;
    if (pl->up_wait_nodes(r) < 0) return -1;
    if (r->with_state == 0 && !r->existing) return pl->up_form(r);
    if (r->with_state == 0)
        return rc_fail(rc, "none of the %d nodes has cluster state, though %d %s(s) existed; start over with `rcluster down%s "
                           "--name %s --purge`", n, r->existing, pl->what, pl->mode, r->o->name);
    if (r->with_state == n && r->rejoin) rc_progress(rc, "%s; they rejoin by themselves", r->rejoin);
    r->keep = r->with_state < n;
    int ret = !r->keep ? 0 : pl->up_join ? pl->up_join(r) : rc_fail(rc, "%d node(s) without cluster state", n - r->with_state);
    if (ret == 0) ret = up_wait_healthy(r);
    if (ret < 0 && r->keep) rc_wrap(rc, "the new node(s) stay; run `rcluster up%s --name %s` again to finish", pl->mode, r->o->name);
    return ret;
}

/* A failed apply or wait removes what this run created (unless nodes joined: they
 * stay), and a Ctrl-C is said in the user's words. Always -1. */
static int up_fail(struct up_run *r) {
    struct rc *rc = r->rc;
    if (r->o->dry_run || r->keep) return -1;
    r->pl->up_rollback(r);
    if (!rc_interrupted()) return -1;
    if (rc->verbose && rc->err) rc_warn(rc, "interrupted at: %s", rc->err);
    return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted: up removed what this run had created; nothing else changed");
}

/* Make what is missing and start it (a dry run records that and stops), then wait for
 * the cluster; a failure removes what this run created. */
static int up_make(struct up_run *r) {
    if (r->pl->up_apply(r) < 0) return up_fail(r);
    if (r->o->dry_run) return 0;
    return up_wait(r) < 0 ? up_fail(r) : 0;
}

/* up = plan -> the daemon -> the manifest (the plan again) -> what exists -> preflight
 * -> create, repair or nothing -> apply -> wait -> record -> (--restore) -> report.
 * The plan is made twice: first from the options alone (so bad input fails before any
 * daemon is asked), then from the options merged with the manifest. A dry run stops
 * after apply and record, which record instead of sending. */
static int up_steps(struct up_run *r) {
    const struct placement *pl = r->pl;
    if (pl->up_plan(r) < 0 || up_open(r) < 0 || pl->up_recorded(r) < 0 || pl->up_inspect(r) < 0 || pl->up_preflight(r) < 0)
        return -1;
    if (up_decide(r) == 1) {
        if (pl->up_healthy(r, CHECK_REPORT) != 0 || (!r->o->dry_run && pl->up_record(r) < 0)) return -1;
        pl->up_report(r);
        return 0;
    }
    if (up_make(r) < 0) return -1;
    if (r->o->dry_run) return pl->up_record(r);
    if (pl->up_record(r) < 0) return -1;
    if (r->o->restore && pl->up_restore && pl->up_restore(r) < 0) return -1;   /* the cluster stays */
    pl->up_report(r);
    return 0;
}

static int cmd_up(struct rc *rc, int argc, char **argv) {
    struct up_opts o;
    up_opts_defaults(&o);
    int ret = cmd_parse_opts(rc, argc, argv, up_longopts, (int)(sizeof up_longopts / sizeof up_longopts[0]), usage_up, up_on_opt, &o);
    if (ret == 0 && optind < argc) ret = rc_fail_as(rc, RC_ERR_USAGE, "up: unexpected argument '%s'", argv[optind]);
    if (ret) { free(o.configs); return ret < 0 ? -1 : 0; }
    struct up_run r;
    struct docker d;
    memset(&r, 0, sizeof r);
    r.rc = rc;
    r.want = o;
    r.want.configs = o.nconfigs ? calloc((size_t)o.nconfigs, sizeof *r.want.configs) : NULL;
    if (o.nconfigs && r.want.configs) memcpy(r.want.configs, o.configs, (size_t)o.nconfigs * sizeof *o.configs);
    r.o = &r.want;
    r.pl = placement_of(o.swarm);
    r.d = &d;
    r.deadline = rc_now_ms() + (int64_t)(rc->timeout * 1000);
    docker_init_closed(&d, rc);
    ret = o.nconfigs && !r.want.configs ? rc_fail_oom(rc) : up_steps(&r);
    r.pl->up_free(&r);
    docker_free(&d);
    sdsfree(r.rejoin);
    free(r.want.configs);
    free(o.configs);
    return ret;
}

/* ---- down ------------------------------------------------------------------------- */

/* Options of `down` and `status` (the first nopts of down_longopts) and no arguments.
 * Returns like cmd_parse_opts(). */
static int down_parse_opts(struct rc *rc, const char *cmd, int argc, char **argv, int nopts,
                           void (*usage)(FILE *), struct up_opts *o) {
    up_opts_defaults(o);
    int r = cmd_parse_opts(rc, argc, argv, down_longopts, nopts, usage, up_on_opt, o);
    free(o->configs);   /* only `up` uses --config lines */
    o->configs = NULL;
    if (r == 0 && optind < argc) { r = rc_fail_as(rc, RC_ERR_USAGE, "%s: unexpected argument '%s'", cmd, argv[optind]); }
    return r;
}

/* down --name N [--purge]: one run over the placement's down ops. */
struct down_run {
    struct rc *rc;
    const struct up_opts *o;
    struct docker d;
    int64_t deadline;          /* from --timeout, for the Swarm's deletes */
    sds question;              /* inspect's: what --purge asks before deleting anything */
    sds kept;                  /* inspect's: where the data stays without --purge (NULL: none here) */
    /* Docker */
    json_value_s *containers, *networks;   /* labelled as the cluster's */
    sds dir;                   /* the data dir: --data-dir, the containers' label, or the default */
    /* Swarm */
    int manager;               /* this daemon manages the Swarm (else it only holds volumes) */
    size_t services;           /* labelled as the cluster's */
    sds elsewhere;             /* the other Swarm nodes that held a node, a line each */
};

/* The containers and networks labelled as the cluster's, its data dir (--purge must
 * know it), the question and where the data is kept. */
static int down_containers_inspect(struct down_run *r) {
    const struct up_opts *o = r->o;
    if (docker_list_by_label(&r->d, "containers", LABEL_CLUSTER, o->name, &r->containers) < 0 ||
        docker_list_by_label(&r->d, "networks", LABEL_CLUSTER, o->name, &r->networks) < 0) return -1;
    const char *label_dir = json_length(r->containers) ? docker_label(json_at(r->containers, 0), LABEL_DATA_DIR) : NULL;
    r->dir = o->data_dir ? sdsnew(o->data_dir) : label_dir ? sdsnew(label_dir) : conf_default_data_dir(o->name);
    if (o->purge && !r->dir) return rc_fail(r->rc, "cannot tell where the data is; give --data-dir DIR");
    if (!r->dir) return 0;
    r->question = rc_sprintf("Delete cluster '%s' and its data in %s?", o->name, r->dir);
    if (access(r->dir, F_OK) == 0) r->kept = rc_sprintf("Kept data in %s (delete it with --purge)", r->dir);
    return r->question ? 0 : rc_fail_oom(r->rc);
}

/* Stop the containers (gracefully, unless purging: Redis then flushes its AOF and
 * nodes.conf, so a later `up` resumes exactly this cluster), remove them, then the
 * networks. */
static int down_containers_remove(struct down_run *r) {
    size_t nc = json_length(r->containers), nn = json_length(r->networks);
    if (!nc && !nn) rc_progress(r->rc, "No containers or network labelled %s=%s", LABEL_CLUSTER, r->o->name);
    struct docker_req *reqs = calloc(nc + 1, sizeof *reqs);
    if (!reqs) return rc_fail_oom(r->rc);
    int ret = 0;
    for (int pass = r->o->purge ? 1 : 0; ret == 0 && nc && pass < 2; pass++) {
        for (size_t k = 0; k < nc; k++) {
            const char *id = json_string(json_get(json_at(r->containers, k), "Id"));
            reqs[k].method = pass == 0 ? "POST" : "DELETE";
            reqs[k].allow = pass == 0 ? 304 : 404;
            reqs[k].path = rc_sprintf(pass == 0 ? "/containers/%s/stop?t=10" : "/containers/%s?force=1", id ? id : "?");
        }
        rc_progress(r->rc, "%s %zu container(s)", pass == 0 ? "Stopping" : "Removing", nc);
        ret = docker_call_parallel(&r->d, reqs, (int)nc);
        for (size_t k = 0; k < nc; k++) docker_req_clear(&reqs[k]);
    }
    free(reqs);
    for (size_t k = 0; ret == 0 && k < nn; k++) {
        const char *id = json_string(json_get(json_at(r->networks, k), "Id"));
        const char *name = json_string(json_get(json_at(r->networks, k), "Name"));
        sds path = rc_sprintf("/networks/%s", id ? id : "?");
        rc_progress(r->rc, "Removing network %s", name ? name : "?");
        ret = path && docker_call(&r->d, "DELETE", path, NULL, NULL, 404) >= 0 ? 0 : -1;
        sdsfree(path);
    }
    return ret;
}

/* --purge: the data dir (its node dirs, manifest and the dir itself). */
static int down_containers_purge(struct down_run *r) {
    return conf_purge(r->rc, r->dir, r->o->name, conf_count_node_dirs(r->dir));
}

/* down = options -> the placement -> what exists -> confirm --purge -> remove the
 * cluster's objects (only those labelled as its) -> delete its data (--purge) or say
 * where it stays. */
static int cmd_down(struct rc *rc, int argc, char **argv) {
    struct up_opts o;
    int r = down_parse_opts(rc, "down", argc, argv, 4, usage_down, &o);
    if (r == 0 && !conf_valid_name(o.name)) r = rc_fail_as(rc, RC_ERR_USAGE, "--name '%s': not a valid cluster name", o.name);
    if (r) return r < 0 ? -1 : 0;
    const struct placement *place = placement_of(o.swarm);
    struct down_run run = { .rc = rc, .o = &o, .deadline = rc_now_ms() + (int64_t)(rc->timeout * 1000) };
    docker_init_closed(&run.d, rc);
    int ret = docker_open(rc, &run.d);
    if (ret == 0) ret = place->down_inspect(&run);
    if (ret == 0 && o.purge) ret = rc_confirm(rc, run.question);
    if (ret == 0) ret = place->down_remove(&run);
    if (ret == 0 && o.purge) ret = place->down_purge(&run);
    else if (ret == 0 && run.kept) rc_progress(rc, "%s", run.kept);
    sdsfree(run.question);
    sdsfree(run.kept);
    json_free(run.containers);
    json_free(run.networks);
    sdsfree(run.dir);
    sdsfree(run.elsewhere);
    docker_free(&run.d);
    return ret;
}

/* ---- status ---------------------------------------------------------------------- */

/* What status shows of a cluster. The placement's status_view fills it from the daemon
 * and prints nothing; its status_judge asks the nodes; status_report writes it and asks
 * nobody. */
struct status_view {
    const char *rows_key;      /* the JSON array of rows: "containers" or "services" */
    int swarm;                 /* JSON: "swarm":true after the name, no "server" nor "mid_update" */
    int ncol;                  /* the text table: its columns (at most 16) and their headers */
    const char *const *head;
    sds *cell;                 /* nrows x ncol cells, row-major (room for cap rows) */
    sds *json;                 /* each row as a JSON object */
    size_t nrows, cap;
    int running;               /* rows whose container or task runs */
    char seed_host[256];       /* a running node to ask, as reached from here; port 0: none */
    int seed_port;
    sds mid_update;            /* Docker: "Mid-update: ..." (NULL: not mid-update) */
    sds server;                /* the judge's: what the nodes run (NULL: nobody answered) */
    struct swarm_status *sw;   /* status --swarm's own (section 9b) */
};

static void swarm_status_free(struct swarm_status *w);

/* Room for cap rows of ncol cells under these headers. 0, or -1 on OOM. */
static int status_view_alloc(struct status_view *v, size_t cap, int ncol, const char *const *head) {
    v->ncol = ncol;
    v->head = head;
    v->cap = cap;
    v->cell = calloc(cap * (size_t)ncol + 1, sizeof *v->cell);
    v->json = calloc(cap + 1, sizeof *v->json);
    return v->cell && v->json ? 0 : -1;
}

static void status_view_free(struct status_view *v) {
    for (size_t i = 0; v->cell && i < v->cap * (size_t)v->ncol; i++) sdsfree(v->cell[i]);
    for (size_t i = 0; v->json && i < v->cap; i++) sdsfree(v->json[i]);
    free(v->cell);
    free(v->json);
    sdsfree(v->mid_update);
    sdsfree(v->server);
    swarm_status_free(v->sw);
}

/* The seed of a status view: host (NULL, "" or 0.0.0.0: this host) and port. */
static void status_view_seed(struct status_view *v, const char *host, int port) {
    snprintf(v->seed_host, sizeof v->seed_host, "%s", !host || !*host || !strcmp(host, "0.0.0.0") ? "127.0.0.1" : host);
    v->seed_port = port;
}

/* The published address of a container's port 6379 (IPv4 binding), if any. */
static void status_seed_port(const json_value_s *c, int *host_port, const char **host_ip) {
    const json_value_s *ports = json_get(c, "Ports");
    for (size_t k = 0; k < json_length(ports); k++) {
        const json_value_s *pt = json_at(ports, k);
        const char *pip = json_string(json_get(pt, "IP"));
        if (json_number(json_get(pt, "PrivatePort"), 0) == 6379 && json_number(json_get(pt, "PublicPort"), 0) > 0 &&
            !(pip && strchr(pip, ':'))) {
            *host_port = (int)json_number(json_get(pt, "PublicPort"), 0);
            *host_ip = pip;
            return;
        }
    }
    /* Host networking publishes nothing; up labelled where the node answers. */
    const char *hip = docker_label(c, LABEL_HOST_IP), *hp = docker_label(c, LABEL_HOST_PORT);
    long v;
    if (hip && hp && rc_parse_int(hp, 1, 65535, &v) == 0) { *host_port = (int)v; *host_ip = hip; }
}

static sds status_container_json(sds s, const json_value_s *c) {
    const char *name = json_string(json_at(json_get(c, "Names"), 0));
    const char *state = json_string(json_get(c, "State"));
    const json_value_s *nets = json_get(json_get(c, "NetworkSettings"), "Networks");
    const char *ip = json_string(json_get(json_member_value(nets, 0), "IPAddress"));
    s = rc_cat(s, "{\"name\":");
    s = rc_json_str(s, name ? name + (name[0] == '/') : "?");
    s = rc_cat(s, ",\"node\":");
    s = rc_json_str(s, docker_label(c, LABEL_NODE));
    s = rc_cat(s, ",\"state\":");
    s = rc_json_str(s, state);
    s = rc_json_str(rc_cat(s, ",\"image\":"), json_string(json_get(c, "Image")));
    s = rc_cat(s, ",\"ip\":");
    s = rc_json_str(s, ip && *ip ? ip : NULL);
    s = rc_cat(s, ",\"ports\":[");
    const json_value_s *ports = json_get(c, "Ports");
    int first = 1;
    for (size_t k = 0; s && k < json_length(ports); k++) {
        const json_value_s *pt = json_at(ports, k);
        int pub = (int)json_number(json_get(pt, "PublicPort"), 0), priv = (int)json_number(json_get(pt, "PrivatePort"), 0);
        const char *pip = json_string(json_get(pt, "IP"));
        if (!pub || (pip && strchr(pip, ':'))) continue;   /* one line per binding: skip the IPv6 twin */
        s = rc_catprintf(s, "%s{\"host_ip\":", first ? "" : ",");
        s = rc_json_str(s, pip);
        s = rc_catprintf(s, ",\"host_port\":%d,\"container_port\":%d}", pub, priv);
        first = 0;
    }
    /* Host networking: nothing published; the node answers where up labelled. */
    const char *hip = docker_label(c, LABEL_HOST_IP), *hp = docker_label(c, LABEL_HOST_PORT);
    long hport;
    if (hip && hp && rc_parse_int(hp, 1, 65535, &hport) == 0) {
        s = rc_json_str(rc_cat(s, "],\"network\":\"host\",\"host_ip\":"), hip);
        return rc_catprintf(s, ",\"host_port\":%ld}", hport);
    }
    return rc_cat(s, "]}");
}

static int status_node_of(const json_value_s *c) {
    long v;
    const char *nl = docker_label(c, LABEL_NODE);
    return nl && rc_parse_int(nl, 1, 100000, &v) == 0 ? (int)v : 0;
}

/* One container's published ports, "127.0.0.1:6371->6379, 127.0.0.1:16371->16379", by
 * container port (the list API gives them in no stable order); IPv6 bindings left out.
 * Host mode publishes nothing: then the labels say where it listens. NULL on OOM. */
static sds status_row_ports(const json_value_s *c) {
    sds ports = sdsempty();
    const json_value_s *pl = json_get(c, "Ports");
    int last = -1;
    for (;;) {   /* selection by PrivatePort: a node has two or three entries */
        const json_value_s *next = NULL;
        int np = 0;
        for (size_t k = 0; k < json_length(pl); k++) {
            const json_value_s *pt = json_at(pl, k);
            int priv = (int)json_number(json_get(pt, "PrivatePort"), 0);
            const char *pip = json_string(json_get(pt, "IP"));
            if (!json_number(json_get(pt, "PublicPort"), 0) || (pip && strchr(pip, ':')) || priv <= last) continue;
            if (!next || priv < np) { next = pt; np = priv; }
        }
        if (!next || !ports) break;
        const char *pip = json_string(json_get(next, "IP"));
        ports = rc_catprintf(ports, "%s%s:%d->%d", sdslen(ports) ? ", " : "", pip ? pip : "", (int)json_number(json_get(next, "PublicPort"), 0), np);
        last = np;
    }
    const char *hip = docker_label(c, LABEL_HOST_IP), *hp = docker_label(c, LABEL_HOST_PORT);
    if (ports && !sdslen(ports) && hip && hp) ports = rc_catprintf(ports, "host network, %s:%s", hip, hp);
    return ports;
}

/* A text table: the ncol headers, then nrows rows of cells (row-major; a NULL cell
 * fails), every column but the last as wide as its widest cell, two spaces apart: long
 * names and states keep the columns aligned. Pure; NULL on OOM or a NULL cell. */
static sds text_table(int ncol, const char *const *head, sds const *cell, size_t nrows) {
    size_t width[16] = { 0 };
    if (ncol < 1 || ncol > 16) return NULL;
    for (int k = 0; k < ncol; k++) width[k] = strlen(head[k]);
    for (size_t i = 0; i < nrows * (size_t)ncol; i++) {
        if (!cell[i]) return NULL;
        if (sdslen(cell[i]) > width[i % (size_t)ncol]) width[i % (size_t)ncol] = sdslen(cell[i]);
    }
    sds out = sdsempty();
    for (size_t r = 0; out && r <= nrows; r++)
        for (int k = 0; out && k < ncol; k++) {
            const char *v = r == 0 ? head[k] : cell[(r - 1) * (size_t)ncol + (size_t)k];
            out = k + 1 < ncol ? rc_catprintf(out, "%-*s  ", (int)width[k], v) : rc_catprintf(out, "%s\n", v);
        }
    return out;
}

/* One row per container, in the order given: the table's cells, the JSON object; the
 * running count and the seed (the first running container that publishes 6379). 0, or
 * -1 on OOM. */
static int status_containers_rows(struct status_view *v, const json_value_s *const *rows, size_t n) {
    static const char *const head[] = { "CONTAINER", "STATE", "IMAGE", "ADDRESS", "PORTS" };
    if (status_view_alloc(v, n, 5, head) < 0) return -1;
    v->rows_key = "containers";
    for (size_t r = 0; r < n; r++) {
        const json_value_s *c = rows[r];
        const char *name = json_string(json_at(json_get(c, "Names"), 0));
        const json_value_s *nets = json_get(json_get(c, "NetworkSettings"), "Networks");
        const char *ip = json_string(json_get(json_member_value(nets, 0), "IPAddress"));
        const char *status = json_string(json_get(c, "Status")), *image = json_string(json_get(c, "Image"));
        sds *cell = &v->cell[r * 5];
        cell[0] = sdsnew(name ? name + (name[0] == '/') : "?");
        cell[1] = sdsnew(status ? status : "?");
        cell[2] = sdsnew(image ? image : "?");
        cell[3] = sdsnew(ip && *ip ? ip : "-");
        cell[4] = status_row_ports(c);
        v->json[r] = status_container_json(sdsempty(), c);
        v->nrows++;
        for (int k = 0; k < 5; k++) if (!cell[k]) return -1;
        if (!v->json[r]) return -1;
        const char *st = json_string(json_get(c, "State"));
        int is_running = st && !strcmp(st, "running"), hp = 0;
        const char *hip = NULL;
        v->running += is_running;
        status_seed_port(c, &hp, &hip);
        if (is_running && hp && !v->seed_port) status_view_seed(v, hip, hp);
    }
    return 0;
}

/* "Mid-update: ..." when the containers run different images or an interrupted update
 * left a NAME.previous container; NULL otherwise (or on OOM). */
static sds status_mid_update(const json_value_s *const *rows, size_t n, const char *name) {
    const char *first = NULL, *other = NULL;
    size_t nfirst = 0, previous = 0;
    for (size_t r = 0; r < n; r++) {
        const char *cn = json_string(json_at(json_get(rows[r], "Names"), 0)), *img = json_string(json_get(rows[r], "Image"));
        size_t l = cn ? strlen(cn) : 0, pl = strlen(UPDATE_PREVIOUS);
        if (l > pl && !strcmp(cn + l - pl, UPDATE_PREVIOUS)) { previous++; continue; }
        if (!img) continue;
        if (!first || !strcmp(img, first)) { first = img; nfirst++; }
        else if (!other) other = img;
    }
    if (!other && !previous) return NULL;
    sds s = other ? rc_sprintf("Mid-update: %zu node(s) run %s, the others %s", nfirst, first, other)
                  : sdsnew("Mid-update: a node's previous container is still there");
    return rc_catprintf(s, "; `rcluster update --name %s` with the same options finishes it", name);
}

/* status on Docker: the containers labelled as the cluster's, in node order (the list
 * API sorts by creation time), and whether an update was left half done. Prints nothing. */
static int status_containers_view(struct docker *d, const struct up_opts *o, struct status_view *v) {
    json_value_s *cs = NULL;
    if (docker_list_by_label(d, "containers", LABEL_CLUSTER, o->name, &cs) < 0) return -1;
    size_t nc = json_length(cs);
    const json_value_s **sorted = NULL;
    int ret = 0;
    if (!nc)
        ret = rc_fail(d->rc, "no cluster named '%s' (no containers labelled %s=%s); create it with `rcluster up --name %s`",
                      o->name, LABEL_CLUSTER, o->name, o->name);
    else if (!(sorted = calloc(nc, sizeof(const json_value_s *)))) ret = rc_fail_oom(d->rc);
    for (size_t k = 0; ret == 0 && k < nc; k++) sorted[k] = json_at(cs, k);
    for (size_t k = 1; ret == 0 && k < nc; k++)
        for (size_t j = k; j > 0 && status_node_of(sorted[j - 1]) > status_node_of(sorted[j]); j--) {
            const json_value_s *t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t;
        }
    if (ret == 0 && status_containers_rows(v, sorted, nc) < 0) ret = rc_fail_oom(d->rc);
    if (ret == 0) v->mid_update = status_mid_update(sorted, nc, o->name);
    free(sorted);
    json_free(cs);
    return ret;
}

/* status's judge on Docker: check from the seed (its report follows the table), then
 * what is wrong: stopped containers, or none to ask. 0 healthy, 1 not (rc->err says
 * why), -1 when nobody can be asked (no password: rc->err_kind). */
static int status_containers_judge(struct rc *rc, struct status_view *v, const char *name) {
    int health = 1;
    if (v->seed_port) health = check_cluster_server(rc, v->seed_host, v->seed_port, rc->json ? CHECK_SILENT : CHECK_REPORT, &v->server);
    if (health < 0 && rc->err_kind == RC_ERR_AUTH) return -1;
    if (health != 0 && (size_t)v->running < v->nrows)
        rc_fail(rc, "cluster '%s': %zu of %zu containers are not running; `rcluster up --name %s` repairs it",
                name, v->nrows - (size_t)v->running, v->nrows, name);
    else if (!v->seed_port) rc_fail(rc, "cluster '%s': no running container publishes port 6379", name);
    return health == 0 ? 0 : 1;
}

/* status's text: the table, the Mid-update line, and a blank line when the judge's own
 * report follows. Pure; NULL on OOM. */
static sds status_text(const struct status_view *v) {
    sds out = text_table(v->ncol, v->head, v->cell, v->nrows);
    if (out && v->mid_update) out = rc_catprintf(out, "\n%s\n", v->mid_update);
    if (out && v->seed_port) out = rc_cat(out, "\n");
    return out;
}

/* status's JSON document: the rows, the running count, the verdict (health 0: healthy)
 * and, when not healthy, the problem (rc->err). Pure; NULL on OOM. */
static sds status_json(const struct status_view *v, const char *name, int health, const char *problem) {
    const char *yes = health == 0 ? "true" : "false";
    sds js = rc_json_str(sdsnew("{\"name\":"), name);
    if (v->swarm) js = rc_cat(js, ",\"swarm\":true");
    js = rc_catprintf(js, ",\"%s\":[", v->rows_key);
    for (size_t k = 0; js && k < v->nrows; k++) js = rc_catprintf(js, "%s%s", k ? "," : "", v->json[k]);
    js = rc_catprintf(js, "],\"running\":%d,\"ok\":%s,\"healthy\":%s", v->running, yes, yes);
    if (!v->swarm) {
        js = rc_json_str(rc_cat(js, ",\"server\":"), v->server);
        js = rc_json_str(rc_cat(js, ",\"mid_update\":"), v->mid_update);
    }
    if (health != 0) js = rc_json_str(rc_cat(js, ",\"problem\":"), problem);
    return rc_cat(js, "}");
}

/* status's output, asking nobody: the text (before the judge, whose own report follows
 * it) or, with --json, the one document (after the judge: its verdict in health). */
static int status_report(struct rc *rc, const struct status_view *v, const char *name, int health) {
    sds out = rc->json ? status_json(v, name, health, rc->err) : status_text(v);
    if (!out) return rc_fail_oom(rc);
    if (rc->json) rc_json_out(rc, out);
    else fputs(out, stdout);
    sdsfree(out);
    return 0;
}

/* status --name N = options -> the placement's view (the daemon's) -> the table -> the
 * judge (the nodes') -> the JSON document. Exit 0 healthy, 3 unhealthy, 1 when nobody can
 * be asked. */
static int cmd_status(struct rc *rc, int argc, char **argv) {
    struct up_opts o;
    int r = down_parse_opts(rc, "status", argc, argv, 2, usage_status, &o);
    if (r) return r < 0 ? -1 : 0;
    const struct placement *place = placement_of(o.swarm);
    struct status_view v = { 0 };
    struct docker d;
    docker_init_closed(&d, rc);
    int ret = docker_open(rc, &d);
    if (ret == 0) ret = place->status_view(&d, &o, &v);
    if (ret == 0 && !rc->json) ret = status_report(rc, &v, o.name, 0);
    int health = ret == 0 ? place->status_judge(rc, &v, o.name) : -1;
    if (health >= 0 && rc->json) ret = status_report(rc, &v, o.name, health);
    if (ret == 0) ret = health < 0 ? -1 : health == 0 ? 0 : rc_fail_unhealthy(rc);
    status_view_free(&v);
    docker_free(&d);
    return ret;
}

/* ---- scale: grow or shrink a cluster made by up, keys and all ------------------------ */

/* What scale does with node i (1-based container number). Nodes 1..masters*(R+1)
 * stay or come; higher numbers go. */
enum { SC_KEEP_MASTER = 1, SC_KEEP_REPLICA, SC_NEW_MASTER, SC_NEW_REPLICA, SC_DEMOTE, SC_REMOVE, SC_GONE, SC_PROMOTE };

struct scale_role {
    int member;               /* in the cluster now */
    int master;               /* a master now */
    int slots;                /* slots it owns now */
    int of;                   /* now: the node number it replicates, 0 when none or not ours */
    const char *host;         /* where it runs (anti-affinity), may be NULL */
    int action;               /* SC_*: the plan */
    int to;                   /* after: the node number a replica replicates, 0 for masters */
};

/* Is action a a master after the scale? */
static int scale_is_master(int a) { return a == SC_KEEP_MASTER || a == SC_NEW_MASTER || a == SC_PROMOTE; }

/* The pure plan: v[0..nv) are nodes 1..nv as they are now; want = masters*(replicas+1)
 * of them stay. Masters are those that hold slots now (lowest numbers first), then
 * empty members, then nodes that join; the others of 1..want are replicas, each kept
 * with its master while that master has room, else given to the master with the
 * fewest, preferring another host. 0, or -1 with why. */
static int scale_plan_roles(struct scale_role *v, int nv, int masters, int replicas, char *why, size_t whylen) {
    int want = masters * (replicas + 1), nm = 0;
    if (nv < want) { snprintf(why, whylen, "internal: %d nodes known, %d wanted", nv, want); return -1; }
    for (int k = 0; k < nv; k++) { v[k].action = 0; v[k].to = 0; }
    for (int pass = 0; pass < 3; pass++)
        for (int k = 0; k < want && nm < masters; k++) {
            int fit = pass == 0 ? v[k].member && v[k].master && v[k].slots > 0
                    : pass == 1 ? v[k].member && v[k].master && v[k].slots == 0 : !v[k].member;
            if (fit && !v[k].action) { v[k].action = v[k].member ? SC_KEEP_MASTER : SC_NEW_MASTER; nm++; }
        }
    /* Still short (a master that gave away its last slot turned replica of the node
     * that took it): a replica becomes an empty master again, first one whose master
     * has more replicas than it needs. */
    for (int pass = 0; pass < 2 && nm < masters; pass++)
        for (int k = 0; k < want && nm < masters; k++) {
            if (v[k].action || !v[k].member || v[k].master) continue;
            int siblings = 0;
            for (int j = 0; j < nv; j++) siblings += v[j].member && !v[j].master && v[j].of && v[j].of == v[k].of;
            if (pass == 0 && siblings <= replicas) continue;
            v[k].action = SC_PROMOTE;
            nm++;
        }
    if (nm < masters) {
        snprintf(why, whylen, "nodes 1-%d hold only %d master(s) and no free node can become one; a master outside them "
                 "(after a failover) must first be failed back (CLUSTER FAILOVER on its replica)", want, nm);
        return -1;
    }
    int *count = calloc((size_t)nv, sizeof *count);
    if (!count) { snprintf(why, whylen, "out of memory"); return -1; }
    for (int k = 0; k < nv; k++) {
        if (k >= want) v[k].action = v[k].member ? SC_REMOVE : SC_GONE;
        else if (!v[k].action) v[k].action = !v[k].member ? SC_NEW_REPLICA : v[k].master ? SC_DEMOTE : SC_KEEP_REPLICA;
    }
    for (int k = 0; k < want; k++) {       /* replicas that may stay with their master */
        int m = v[k].of - 1;
        if (v[k].action == SC_KEEP_REPLICA && m >= 0 && m < want && scale_is_master(v[m].action) && count[m] < replicas) {
            v[k].to = m + 1;
            count[m]++;
        }
    }
    for (int k = 0; k < want; k++) {
        if (scale_is_master(v[k].action) || v[k].to) continue;
        int best = -1, bestfar = 0;
        for (int m = 0; m < want; m++) {
            if (!scale_is_master(v[m].action) || count[m] >= replicas) continue;
            int far = !v[k].host || !v[m].host || strcmp(v[k].host, v[m].host) != 0;
            if (best < 0 || count[m] < count[best] || (count[m] == count[best] && far > bestfar)) { best = m; bestfar = far; }
        }
        if (best < 0) { free(count); snprintf(why, whylen, "internal: no master for node %d", k + 1); return -1; }
        v[k].to = best + 1;
        count[best]++;
    }
    free(count);
    return 0;
}

static void usage_scale(FILE *f) {
    fputs("usage: rcluster scale --name NAME --masters M [--replicas R] [--purge] [--data-dir DIR]\n"
          "                      [--password-file F] [--timeout SEC] [--dry-run] [--yes] [--json]\n"
          "       rcluster scale --swarm --name NAME (--masters M | --nodes N) [--replicas R] [--purge] ...\n"
          "\n"
          "Grow or shrink a cluster made by `rcluster up` to M masters with R replicas each\n"
          "(R: as recorded), keys and all. New nodes get the next names, addresses and ports\n"
          "of the same layout and the recorded image, password, announce and network mode;\n"
          "they join (CLUSTER MEET), new masters get slots by a rebalance that moves the\n"
          "fewest, replicas go to the masters that need them (cluster-replica-no-failover\n"
          "yes until the cluster is healthy again). Shrinking removes the highest numbers:\n"
          "their slots move away with their keys, then del-node, then their containers go;\n"
          "their data dirs are kept unless --purge (asks on a TTY unless --yes). The manifest\n"
          "DIR/rcluster.json then records the new size, so `rcluster up` keeps it.\n"
          "\n"
          "  --masters M         masters after the scale (at least 3)\n"
          "  --nodes N           or the size as nodes: N = M * (R + 1)\n"
          "  --swarm             a cluster made by `up --swarm` (DOCKER_HOST: a Swarm manager):\n"
          "                      services instead of containers, the manifest is the Swarm\n"
          "                      config NAME-manifest-G; nodes on a Swarm node that is down\n"
          "                      are re-homed first, as `up --swarm` does\n"
          "  --replicas R        replicas per master after the scale (default: as recorded)\n"
          "  --purge             delete the data dirs of removed nodes\n"
          "  --migration MODE    how slots move: auto, atomic or keys (see rcluster reshard --help)\n"
          "  --dry-run           print the plan; change nothing\n"
          "\n"
          "Refuses an unhealthy cluster (and says why). A slot move left open by an earlier\n"
          "interrupted run is finished or rolled back first, as `rcluster fix` would. On a\n"
          "failure or Ctrl-C no key is lost: containers created and not yet joined are removed,\n"
          "joined nodes stay, and running the same command again finishes the job.\n"
          "Exit status: 0 done, 1 failure, 2 usage error, 130 interrupted.\n", f);
}

enum { OPT_SC_MASTERS = OPT_FIRST_COMMAND_OPT + 90, OPT_SC_REPLICAS, OPT_SC_MIGRATION };

struct scale_opts { struct up_opts up; int masters, replicas, nodes, migration; };

static int scale_on_opt(struct rc *rc, int opt, const char *arg, void *ctx) {
    struct scale_opts *so = ctx;
    long v;
    if (opt == OPT_SC_MASTERS) {
        if (rc_parse_int(arg, 3, UP_MAX_NODES, &v) < 0) {
            return rc_fail_as(rc, RC_ERR_USAGE, "--masters: expected 3 to %d (a cluster needs at least 3 masters), got '%s'", UP_MAX_NODES, arg);
        }
        so->masters = (int)v;
        return 0;
    }
    if (opt == OPT_UP_NODES) {   /* the size as a node count, N = M * (R + 1); not up's --nodes */
        if (rc_parse_int(arg, 3, UP_MAX_NODES, &v) < 0) { return rc_fail_as(rc, RC_ERR_USAGE, "--nodes: expected 3 to %d, got '%s'", UP_MAX_NODES, arg); }
        so->nodes = (int)v;
        return 0;
    }
    if (opt == OPT_SC_MIGRATION) return parse_migration(rc, arg, &so->migration);
    if (opt == OPT_SC_REPLICAS) {
        if (rc_parse_int(arg, 0, 10, &v) < 0) { return rc_fail_as(rc, RC_ERR_USAGE, "--replicas: expected 0 to 10, got '%s'", arg); }
        so->replicas = (int)v;
        return 0;
    }
    return up_on_opt(rc, opt, arg, &so->up);
}

static const struct option scale_longopts[] = {
    { "name", required_argument, NULL, OPT_UP_NAME }, { "masters", required_argument, NULL, OPT_SC_MASTERS },
    { "replicas", required_argument, NULL, OPT_SC_REPLICAS }, { "purge", no_argument, NULL, OPT_UP_PURGE },
    { "data-dir", required_argument, NULL, OPT_UP_DATA_DIR }, { "dry-run", no_argument, NULL, OPT_UP_DRY_RUN },
    { "nodes", required_argument, NULL, OPT_UP_NODES }, { "swarm", no_argument, NULL, OPT_UP_SWARM },
    { "migration", required_argument, NULL, OPT_SC_MIGRATION },
};

struct swarm_scale;   /* scale --swarm's own state (section 9b) */

/* Everything one scale run holds; freed by scale_free. */
struct scale_run {
    struct rc *rc;
    struct scale_opts so;     /* the run's copy of the options: the manifest merges into it */
    struct docker d;
    struct up_plan p;
    int have_plan;
    json_value_s *recorded;
    sds dir;
    struct session s;
    struct scale_role *roles;
    int *sidx;                /* roles index -> session index, -1 */
    int n_have, n_want, nmax;
    int changed;              /* something was changed on the cluster */
    int joined;               /* nodes that joined this run */
    int *nofail;              /* node numbers given cluster-replica-no-failover yes */
    char (*nofail_was)[8];
    int nnofail;
    long long keys_moved;
    int slots_moved;
    const char **names;       /* node k's container or service name, for messages */
    struct addr *reach;       /* node k: where rcluster reaches it */
    struct addr *at;          /* node k: the address it announces (ip "" if unknown) */
    struct swarm_scale *sw;   /* with --swarm */
    struct rc_deadline deadline;   /* the whole scale's, from --timeout: every phase shares it */
    struct up_opts plan_up;   /* what the plan is made of: so.up (given, then merged from the
                                 manifest) at the size 1..nmax, --replicas as resolved */
};

static void swarm_scale_free(struct swarm_scale *w);

static void scale_free(struct scale_run *r) {
    sess_free(&r->s);
    if (r->have_plan) up_plan_free(&r->p);
    docker_free(&r->d);
    json_free(r->recorded);
    sdsfree(r->dir);
    free(r->so.up.configs);
    free(r->roles);
    free(r->sidx);
    free(r->nofail);
    free(r->nofail_was);
    free(r->names);
    free(r->reach);
    free(r->at);
    swarm_scale_free(r->sw);
}

/* The size asked for: --masters M, or --nodes N (a multiple of R + 1); R as recorded
 * unless given. Sets n_want. */
static int scale_target(struct scale_run *r) {
    struct rc *rc = r->rc;
    if (r->so.replicas < 0) r->so.replicas = r->so.up.replicas;
    int per = r->so.replicas + 1;
    if (r->so.nodes && r->so.masters) return rc_fail_as(rc, RC_ERR_USAGE, "scale: give --masters M or --nodes N, not both");
    if (r->so.nodes && (r->so.nodes % per || r->so.nodes / per < 3))
        return rc_fail_as(rc, RC_ERR_USAGE, "--nodes %d with %d replica(s) per master: expected a multiple of %d, at least %d", r->so.nodes,
                          r->so.replicas, per, 3 * per);
    if (r->so.nodes) r->so.masters = r->so.nodes / per;
    r->n_want = r->so.masters * per;
    if (r->n_want > UP_MAX_NODES) return rc_fail_as(rc, RC_ERR_USAGE, "--masters %d with --replicas %d: %d nodes, more than %d", r->so.masters, r->so.replicas, r->n_want, UP_MAX_NODES);
    return 0;
}

/* Room for nmax nodes' names and addresses. */
static int scale_alloc_nodes(struct scale_run *r) {
    r->names = calloc((size_t)r->nmax + 1, sizeof *r->names);
    r->reach = calloc((size_t)r->nmax + 1, sizeof *r->reach);
    r->at = calloc((size_t)r->nmax + 1, sizeof *r->at);
    return r->names && r->reach && r->at ? 0 : rc_fail_oom(r->rc);
}

/* Node k's addresses: reached at rip:rport, announced at aip:aport. */
static void scale_set_node(struct scale_run *r, int k, const char *name, const char *rip, int rport, const char *aip, int aport) {
    r->names[k] = name;
    snprintf(r->reach[k].ip, sizeof r->reach[k].ip, "%s", rip);
    r->reach[k].port = rport;
    snprintf(r->at[k].ip, sizeof r->at[k].ip, "%s", aip);
    r->at[k].port = aport;
}

/* The cluster as a whole, through the session's seed: 0 healthy (engine_check). */
static int scale_check(struct scale_run *r, enum check_report how) {
    if (r->s.n == 0) return rc_fail(r->rc, "no session");
    const struct snode *x = &r->s.nodes[r->s.seed];
    return check_cluster(r->rc, x->conn_ip, x->conn_port, how);
}

/* The address a node announces: the container address and 6379, or the announced IP
 * with the published port (host mode announces its bind address). */
static void scale_announced(const struct up_plan *p, int k, const char **ip, int *port) {
    *ip = p->announce_ip[0] ? p->announce_ip : p->nodes[k].ip;
    *port = p->announce_ip[0] ? p->nodes[k].host_port : 6379;
}

/* No manifest: the cluster does not exist, or it is not ours. Always -1. */
static int scale_no_cluster(struct scale_run *r) {
    struct up_opts *o = &r->so.up;
    json_value_s *v = NULL;
    sds n1 = rc_sprintf("%s-1", o->name);
    int st = n1 ? docker_inspect(&r->d, "containers", n1, &v) : rc_fail_oom(r->rc);
    int ours = st == 1 && up_is_ours(v, o->name, 0);
    json_free(v);
    sdsfree(n1);
    if (st < 0) return -1;
    if (st == 1 && !ours)
        return rc_fail(r->rc, "container %s-1 exists but is not rcluster's (no label %s=%s): cluster '%s' is not ours; nothing changed",
                       o->name, LABEL_CLUSTER, o->name, o->name);
    if (st == 1)
        return rc_fail(r->rc, "cluster '%s' has containers but no manifest %s/" CONF_MANIFEST " (give --data-dir DIR?); nothing changed", o->name, r->dir);
    return rc_fail(r->rc, "no cluster named '%s' (no manifest %s/" CONF_MANIFEST " and no container %s-1); create it with "
                          "`rcluster up --name %s`; nothing changed", o->name, r->dir, o->name, o->name);
}

/* Highest node number among the cluster's containers (a run cut short may leave some
 * beyond the manifest). */
static int scale_highest_container(struct scale_run *r, int *hi) {
    json_value_s *all = NULL;
    *hi = 0;
    if (docker_list_by_label(&r->d, "containers", LABEL_CLUSTER, r->so.up.name, &all) < 0) return -1;
    for (size_t k = 0; k < json_length(all); k++) {
        int i = status_node_of(json_at(all, k));
        if (i > *hi) *hi = i;
    }
    json_free(all);
    return 0;
}

/* Read what there is: manifest, containers, confs, the cluster seen from node 1. */
static int scale_containers_inspect(struct scale_run *r) {
    struct rc *rc = r->rc;
    struct up_opts *o = &r->so.up;
    struct up_plan probe;
    int hi = 0;
    if (docker_open(rc, &r->d) < 0) return -1;
    r->d.record = o->dry_run;
    int ret = up_plan_make(rc, o, &probe);   /* only for the default data dir */
    if (ret == 0) ret = up_locate_data_dir(&r->d, o, probe.data_dir, &r->dir);
    up_plan_free(&probe);
    if (ret < 0) return -1;
    ret = up_manifest_read(rc, r->dir, &r->recorded);
    if (ret == 0) return scale_no_cluster(r);
    if (ret < 0 || up_manifest_merge_dir(rc, o, r->recorded, r->dir) < 0) return -1;
    r->n_have = o->nodes;
    if (scale_target(r) < 0 || scale_highest_container(r, &hi) < 0) return -1;
    r->nmax = r->n_have > r->n_want ? r->n_have : r->n_want;
    if (hi > r->nmax) r->nmax = hi;
    r->plan_up = *o;
    r->plan_up.data_dir = r->dir;
    r->plan_up.nodes = r->nmax;
    r->plan_up.replicas = r->so.replicas;
    r->plan_up.given = 0;
    if (up_plan_make(rc, &r->plan_up, &r->p) < 0) return rc_wrap(rc, "cluster '%s' cannot grow to %d nodes; nothing changed", o->name, r->n_want);
    r->have_plan = 1;
    r->p.have_manifest = 1;
    if (up_inspect_existing(&r->d, &r->p) < 0 || up_preflight_confs(rc, &r->p) < 0) return -1;
    if (!r->p.nodes[0].running) return rc_fail(rc, "container %s is not running; `rcluster up --name %s` repairs it first; nothing changed", r->p.nodes[0].name, o->name);
    if (scale_alloc_nodes(r) < 0) return -1;
    for (int k = 0; k < r->nmax; k++) {
        const char *ip;
        int port;
        scale_announced(&r->p, k, &ip, &port);
        scale_set_node(r, k, r->p.nodes[k].name, r->p.connect_ip, r->p.nodes[k].host_port, ip, port);
    }
    /* r->names/reach/at stay in r (scale_free frees them); the analyzer loses them when
     * sess_open clears r->s. */
    return sess_open(rc, &r->s, &r->reach[0]);   // NOLINT(clang-analyzer-unix.Malloc)
}

/* An interrupted move is finished or rolled back as `fix` would, then the cluster
 * must pass day-2 preflight. */
static int scale_preflight(struct scale_run *r) {
    struct session *s = &r->s;
    struct findings f = { 0 };
    /* --migration atomic: the masters must all offer it (nodes that join run the same image). */
    for (int i = 0; r->so.migration == MIGRATION_ATOMIC && i < s->n; i++)
        if (s->nodes[i].up && snode_is_master(&s->nodes[i]) && !(s->nodes[i].caps & (SRV_ATOMIC_VALKEY | SRV_ATOMIC_REDIS))) {
            return rc_fail_as(r->rc, RC_ERR_USAGE, "--migration atomic: %s:%d runs %s, which has no atomic slot migration; nothing changed",
                              s->nodes[i].ip, s->nodes[i].port, s->nodes[i].server);
        }
    if (judge_open_slots(s, &f) < 0) { findings_free(&f); return rc_fail_oom(r->rc); }
    int open = f.n;
    findings_free(&f);
    if (open && !r->so.up.dry_run) {
        struct fix_plan fp = { 0 };
        struct day2_opts o;
        day2_opts_init(&o);
        rc_progress(r->rc, "%d slot(s) left open by an interrupted move: repairing them as `rcluster fix` would", open);
        int ret = fix_plan_make(s, 0, &fp);
        for (int i = 0; ret == 0 && i < fp.n; i++)
            if (fp.v[i].action == FIX_MANUAL) ret = rc_fail(r->rc, "%s; run `rcluster fix`, then scale again; nothing changed", fp.v[i].why ? fp.v[i].why : "a slot cannot be repaired automatically");
        if (ret == 0) { fix_plan_print(s, &fp); ret = fix_apply(s, &fp, &o); }
        if (ret == 0) ret = day2_wait_settled(s, s->deadline, 0);
        fix_plan_free(&fp);
        if (ret < 0) return -1;
        r->changed = 1;
    }
    if (day2_preflight(s, 0, -1) < 0) return rc_wrap(r->rc, "cluster '%s' is not healthy; not scaling it", r->so.up.name);
    return 0;
}

/* Session members -> node numbers; a member that is none of ours is refused. */
static int scale_map_roles(struct scale_run *r) {
    struct session *s = &r->s;
    if (!(r->roles = calloc((size_t)r->nmax, sizeof *r->roles)) || !(r->sidx = calloc((size_t)r->nmax, sizeof *r->sidx))) return rc_fail_oom(r->rc);
    for (int k = 0; k < r->nmax; k++) r->sidx[k] = -1;
    for (int i = 0; i < s->n; i++) {
        int found = -1;
        for (int k = 0; k < r->nmax && found < 0; k++)
            if (!strcmp(r->at[k].ip, s->nodes[i].ip) && r->at[k].port == s->nodes[i].port) found = k;
        if (found < 0)
            return rc_fail(r->rc, "node %s:%d of the cluster is none of cluster '%s''s %s; scale only handles clusters made by "
                                  "`rcluster up`; nothing changed", s->nodes[i].ip, s->nodes[i].port, r->so.up.name,
                           r->sw ? "services" : "containers");
        r->sidx[found] = i;
    }
    for (int k = 0; k < r->nmax; k++) {
        int i = r->sidx[k];
        struct scale_role *v = &r->roles[k];
        v->host = r->at[k].ip[0] ? r->at[k].ip : NULL;   /* where a node that joins will be */
        if (i < 0) continue;
        v->member = 1;
        v->master = snode_is_master(&s->nodes[i]);
        v->slots = snode_slot_count(&s->nodes[i]);
        v->host = s->nodes[i].ip;
        int m = v->master ? -1 : sess_index_of(s, snode_master_id(&s->nodes[i]));
        for (int j = 0; m >= 0 && j < r->nmax; j++) if (r->sidx[j] == m) v->of = j + 1;
    }
    char why[256];
    if (scale_plan_roles(r->roles, r->nmax, r->so.masters, r->so.replicas, why, sizeof why) < 0)
        return rc_fail(r->rc, "cannot scale cluster '%s' to %d masters: %s; nothing changed", r->so.up.name, r->so.masters, why);
    return 0;
}

static void scale_print_plan(struct scale_run *r) {
    static const char *const names[] = { "", "stays a master", "stays a replica", "joins as a master", "joins as a replica",
                                         "becomes a replica", "is removed", "is gone",
                                         "becomes an empty master (it leaves and joins again)" };
    struct rc *rc = r->rc;
    int masters = 0;
    for (int k = 0; k < r->n_have && k < r->nmax; k++) masters += r->roles[k].member && r->roles[k].master && r->roles[k].slots > 0;
    rc_progress(rc, "Plan: cluster '%s' from %d to %d nodes (%d master(s) with slots -> %d, %d replica(s) each)", r->so.up.name,
                r->n_have, r->n_want, masters, r->so.masters, r->so.replicas);
    for (int k = 0; k < r->nmax; k++) {
        const struct scale_role *v = &r->roles[k];
        int moves = v->action == SC_KEEP_REPLICA && v->to != v->of;
        if (v->action == SC_GONE || (!rc->verbose && (v->action == SC_KEEP_MASTER || (v->action == SC_KEEP_REPLICA && !moves)))) continue;
        if (v->to) rc_progress(rc, "  %s %s%s of %s", r->names[k], names[v->action], moves ? ", now" : "", r->names[v->to - 1]);
        else rc_progress(rc, "  %s %s", r->names[k], names[v->action]);
    }
}

/* cluster-replica-no-failover yes on node k (its old value kept for the restore). */
static int scale_hold_failover(struct scale_run *r, int k) {
    for (int j = 0; j < r->nnofail; j++) if (r->nofail[j] == k + 1) return 0;
    if (sess_hold_no_failover(&r->s, &r->s.nodes[r->sidx[k]], r->nofail_was[r->nnofail]) < 0) return -1;
    r->nofail[r->nnofail++] = k + 1;
    return 0;
}

/* Every exit path: give back each node its own cluster-replica-no-failover. */
static void scale_release_failover(struct scale_run *r) {
    for (int j = 0; r->nofail && j < r->nnofail; j++) {
        int k = r->nofail[j] - 1;
        release_no_failover(r->rc, r->reach[k].ip, r->reach[k].port, r->names[k], r->nofail_was[j]);
    }
    r->nnofail = 0;
}

/* The todo nodes of 1..want that are not members yet (running, empty) meet the cluster
 * and are waited for until every node knows them; a new replica gets
 * cluster-replica-no-failover first. *met once they met: from then on they stay. */
static int scale_join_new(struct scale_run *r, int todo, int *met) {
    struct rc *rc = r->rc;
    struct session *s = &r->s;
    int seed = s->seed, ret = 0;
    *met = 0;
    for (int k = 0; k < r->n_want && ret == 0; k++) {
        if (r->roles[k].member) continue;
        if (addnode_probe(s, &r->reach[k]) < 0) { ret = rc_wrap(rc, "%s", r->names[k]); break; }
        r->sidx[k] = s->n - 1;
        if (r->roles[k].action == SC_NEW_REPLICA && scale_hold_failover(r, k) < 0) { ret = -1; break; }
    }
    if (ret < 0) return -1;
    struct snode *sd = &s->nodes[seed];
    for (int k = 0; k < r->n_want; k++)
        if (!r->roles[k].member && act_meet(s, &s->nodes[r->sidx[k]], sd->ip, sd->port, sd->bus) < 0) { ret = -1; break; }
    if (ret == 0) ret = sess_drain_all(s, "CLUSTER MEET");
    if (ret < 0) return -1;
    *met = 1;
    int first_new = s->n - todo;
    for (int k = 0; k < r->n_want; k++)
        if (!r->roles[k].member) { r->roles[k].member = 1; r->joined++; }
    r->changed = 1;
    rc_progress(rc, "%d node(s) met the cluster; waiting until every node knows them", todo);
    for (int i = first_new; i < s->n; i++)
        if (addnode_wait(s, i, -1, s->deadline) < 0) return rc_wrap(rc, "%s:%d joined but did not settle", s->nodes[i].ip, s->nodes[i].port);
    return 0;
}

/* Replicas of the plan that become masters: each leaves the cluster (FORGET on every
 * other node, then CLUSTER RESET HARD: empty, and a new id, which the others have not
 * banned) and then joins again as a new master with the nodes that join. */
static int scale_promote(struct scale_run *r) {
    struct session *s = &r->s;
    for (int k = 0; k < r->n_want; k++) {
        int i = r->sidx[k];
        if (r->roles[k].action != SC_PROMOTE || i < 0) continue;
        if (rc_interrupted()) return rc_fail_as(r->rc, RC_ERR_INTERRUPTED, "interrupted before %s left to become a master", r->names[k]);
        rc_progress(r->rc, "%s leaves as a replica, to join again as a master", r->names[k]);
        r->changed = 1;
        if (delnode_forget(s, i, s->deadline) < 0 || act_reset(s, &s->nodes[i], "HARD") < 0 ||
            sess_drain(s, &s->nodes[i], "CLUSTER RESET HARD") < 0) return rc_wrap(r->rc, "%s", r->names[k]);
        rconn_close(&s->nodes[i].c);
        s->nodes[i].up = 0;
        r->sidx[k] = -1;
        r->roles[k].member = 0;
        r->roles[k].action = SC_NEW_MASTER;
    }
    return 0;
}

/* The nodes of 1..want that are not members: set a stale node dir aside, write their
 * confs, create and start their containers, wait for PING, then MEET. Until the MEET
 * a failure removes what this run created. */
static int scale_containers_add(struct scale_run *r) {
    struct rc *rc = r->rc;
    struct up_plan *p = &r->p;
    int todo = 0, create = 0;
    for (int k = 0; k < r->nmax; k++) {
        if (k >= r->n_want) p->nodes[k].write_conf = 0;
        else if (!r->roles[k].member) { todo++; create += !p->nodes[k].exists; }
    }
    if (!todo) return 0;
    rc_progress(rc, "Adding %d node(s) (%d container(s) to create)", todo, create);
    p->n = r->n_want;          /* the up steps work on nodes 1..want */
    int ret = up_check_ports(rc, p);
    if (ret == 0 && create) ret = up_ensure_image(&r->d, p);
    /* A node removed earlier left its dir (kept, as promised): set it aside so that the
     * new node starts empty, with nothing lost. */
    for (int k = 0; ret == 0 && k < r->n_want; k++) {
        if (r->roles[k].member || p->nodes[k].exists || !conf_node_has_state(p->data_dir, k + 1)) continue;
        char stamp[32];
        time_t now = time(NULL);
        struct tm tmv;
        if (!gmtime_r(&now, &tmv)) memset(&tmv, 0, sizeof tmv);
        snprintf(stamp, sizeof stamp, "%04d%02d%02d-%02d%02d%02d", (tmv.tm_year + 1900) % 10000, (tmv.tm_mon + 1) % 100,
                 tmv.tm_mday % 100, tmv.tm_hour % 100, tmv.tm_min % 100, tmv.tm_sec % 100);
        sds from = conf_node_dir(p->data_dir, k + 1, NULL), to = from ? rc_sprintf("%s.removed-%s", from, stamp) : NULL;
        if (!from || !to) ret = rc_fail_oom(rc);
        else if (rename(from, to) < 0) ret = rc_fail(rc, "setting %s aside: %s", from, strerror(errno));
        else rc_progress(rc, "Kept the old data of node %d as %s", k + 1, to);
        p->nodes[k].write_conf = 1;
        sdsfree(from);
        sdsfree(to);
    }
    if (ret == 0) ret = up_write_configs(rc, p);
    if (ret == 0) ret = up_create_containers(&r->d, p);
    if (ret == 0) ret = up_start_containers(&r->d, p);
    if (ret == 0) ret = up_wait_ping(&r->d, p, r->deadline.at_ms);
    p->n = r->nmax;
    int met = 0;
    if (ret == 0) ret = scale_join_new(r, todo, &met);
    if (met) {   /* these nodes are the cluster's now, and so are their files */
        for (int k = 0; k < r->n_want; k++) p->nodes[k].created = 0;
        conf_undo_free(&p->undo);
        memset(&p->undo, 0, sizeof p->undo);
    }
    if (ret == 0 || met) return ret;
    int created = 0;
    for (int k = 0; k < r->nmax; k++) created += p->nodes[k].created;
    if (created) rc_progress(rc, "Removing the %d container(s) this run created (none had joined)", created);
    up_rollback(&r->d, p);
    return -1;
}

/* Slots to the masters of the plan (weight 1), away from every other master (weight
 * 0), by rebalance's own plan: the fewest moves. */
static int scale_move_slots(struct scale_run *r) {
    struct session *s = &r->s;
    struct rc *rc = r->rc;
    struct day2_opts o;
    day2_opts_init(&o);
    o.use_empty = 1;
    o.mo.migration = r->so.migration;
    sds specs[DAY2_MAX_WEIGHTS] = { 0 };
    int ret = -1, nmv = 0;
    struct move *mv = NULL;
    for (int k = 0; k < r->nmax; k++) {
        int i = r->sidx[k];
        if (i < 0 || !snode_is_master(&s->nodes[i]) || scale_is_master(r->roles[k].action)) continue;
        if (o.nweights == DAY2_MAX_WEIGHTS) { rc_fail(rc, "more than %d masters to empty at once", DAY2_MAX_WEIGHTS); goto out; }
        if (!(specs[o.nweights] = rc_sprintf("%s=0", s->nodes[i].id))) { rc_fail_oom(rc); goto out; }
        o.weights[o.nweights].spec = specs[o.nweights];
        o.weights[o.nweights++].w = 0;
    }
    sess_refresh(s);
    if (!(mv = calloc(CLUSTER_SLOTS, sizeof *mv))) { rc_fail_oom(rc); goto out; }
    if (rebalance_plan(s, &o, mv, &nmv) < 0) goto out;
    if (nmv == 0) { ret = 0; goto out; }
    rc_progress(rc, "Moving %d slot(s) with their keys", nmv);
    if (rc->verbose) moves_print(s, mv, nmv);
    const struct move_engine *eng = mover_choose(s, mv, nmv, &o.mo);
    if (!eng || reshard_check_busy(s, mv, nmv) < 0 || (eng == &move_engines[MOVE_ENGINE_KEYS] && moves_interleave(rc, mv, nmv) < 0)) goto out;
    r->changed = 1;
    long long keys = 0;
    int done = 0;
    ret = mover_run(s, mv, nmv, &o.mo, eng, &keys, &done);
    r->keys_moved += keys;
    r->slots_moved += done;
    if (ret == 0) ret = day2_wait_settled(s, s->deadline, 0);
out:
    for (int k = 0; k < o.nweights; k++) sdsfree(specs[k]);
    free(mv);
    return ret;
}

/* Replicas to their masters of the plan (new ones, moved ones, emptied masters): every
 * REPLICATE at once, so that the full syncs overlap, then wait for each link. */
static int scale_assign_replicas(struct scale_run *r) {
    struct session *s = &r->s;
    int *todo = calloc((size_t)r->n_want + 1, sizeof *todo), n = 0, ret = 0;
    if (!todo) return rc_fail_oom(r->rc);
    sess_refresh(s);
    for (int k = 0; k < r->n_want && ret == 0; k++) {
        const struct scale_role *v = &r->roles[k];
        if (!v->to) continue;
        int i = r->sidx[k], m = r->sidx[v->to - 1];
        if (i < 0 || m < 0) { ret = rc_fail(r->rc, "internal: node %d or its master %d is not in the session", k + 1, v->to); break; }
        if (!snode_is_master(&s->nodes[i]) && !strcmp(snode_master_id(&s->nodes[i]), s->nodes[m].id)) continue;
        if (snode_slot_count(&s->nodes[i]) > 0) { ret = rc_fail(r->rc, "%s still owns slots; it cannot become a replica", r->names[k]); break; }
        rc_progress(r->rc, "%s replicates %s", r->names[k], r->names[v->to - 1]);
        if (scale_hold_failover(r, k) < 0 || act_replicate(s, &s->nodes[i], s->nodes[m].id) < 0) { ret = -1; break; }
        todo[n++] = k;
        r->changed = 1;
    }
    /* A node that does not know its master yet refuses; addnode_wait retries it. */
    if (ret == 0 && n) sess_drain_all(s, "CLUSTER REPLICATE");
    for (int j = 0; ret == 0 && j < n; j++) {
        int k = todo[j];
        if (addnode_wait(s, r->sidx[k], r->sidx[r->roles[k].to - 1], s->deadline) < 0)
            ret = rc_wrap(r->rc, "%s as a replica of %s", r->names[k], r->names[r->roles[k].to - 1]);
    }
    free(todo);
    return ret;
}

/* del-node for each member beyond want (replicas first); *removed counts them. */
static int scale_leave(struct scale_run *r, int *removed) {
    struct rc *rc = r->rc;
    struct session *s = &r->s;
    *removed = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int k = r->nmax - 1; k >= r->n_want; k--) {
            int i = r->sidx[k];
            if (i < 0 || r->roles[k].action != SC_REMOVE || snode_is_master(&s->nodes[i]) != pass) continue;
            if (snode_slot_count(&s->nodes[i]) > 0) return rc_fail(rc, "%s still owns %d slot(s); not removing it", r->names[k], snode_slot_count(&s->nodes[i]));
            if (rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted before removing %s", r->names[k]);
            int reset = 0;
            r->changed = 1;
            if (delnode_remove(s, i, s->deadline, &reset) < 0) return rc_wrap(rc, "removing %s from the cluster", r->names[k]);
            rc_progress(rc, "%s left the cluster%s", r->names[k], reset ? " (CLUSTER RESET)" : "");
            /* Forgotten: no longer part of what the session judges. */
            rconn_close(&s->nodes[i].c);
            s->nodes[i].up = 0;
            r->roles[k].member = 0;
            r->roles[k].action = SC_GONE;
            (*removed)++;
        }
    return 0;
}

/* del-node for each node beyond want (replicas first), then remove their containers
 * and, with --purge, their data dirs. */
static int scale_containers_remove(struct scale_run *r, int *removed) {
    struct rc *rc = r->rc;
    if (scale_leave(r, removed) < 0) return -1;
    struct docker_req *reqs = calloc((size_t)r->nmax, sizeof *reqs);
    int m = 0, ret = reqs ? 0 : rc_fail_oom(rc);
    for (int k = r->n_want; ret == 0 && k < r->nmax; k++) {
        if (r->roles[k].action != SC_GONE || !r->p.nodes[k].exists) continue;
        reqs[m].method = "DELETE";
        reqs[m].allow = 404;
        if (!(reqs[m++].path = rc_sprintf("/containers/%s?force=1", r->p.nodes[k].name))) ret = rc_fail_oom(rc);
    }
    if (ret == 0 && m) {
        rc_progress(rc, "Removing %d container(s)", m);
        r->changed = 1;
        ret = docker_call_parallel(&r->d, reqs, m);
    }
    for (int j = 0; reqs && j < m; j++) docker_req_clear(&reqs[j]);
    free(reqs);
    for (int k = r->n_want; ret == 0 && k < r->nmax; k++) {
        r->p.nodes[k].exists = 0;
        sds node = conf_node_dir(r->p.data_dir, k + 1, NULL);
        if (!node) return rc_fail_oom(rc);
        if (access(node, F_OK) == 0) {
            if (r->so.up.purge) { ret = conf_remove_tree(rc, node); if (ret == 0) rc_progress(rc, "Deleted %s", node); }
            else rc_progress(rc, "Kept %s (rcluster scale --purge deletes it)", node);
        }
        sdsfree(node);
    }
    return ret;
}

/* The one rewrite of rcluster's own file: the new size, atomically (temp, fsync, rename). */
static int scale_containers_record(struct scale_run *r) {
    const char *server = json_string(json_get(r->recorded, "server"));
    struct up_derived dv = { server ? server : r->p.server, r->p.image, r->p.publish_ip, r->n_want, r->so.replicas };
    sds man = up_manifest_render(r->rc, r->p.o, &dv), path = rc_sprintf("%s/" CONF_MANIFEST, r->dir);
    int ret = man && path ? rc_write_file(r->rc, path, man, sdslen(man), 0600) : rc_fail_oom(r->rc);
    sdsfree(man);
    sdsfree(path);
    return ret;
}

/* After a failure: what state the cluster is in, and how to finish. */
static void scale_explain_failure(struct scale_run *r, const char *argv0) {
    struct rc *rc = r->rc;
    sds saved = rc->err ? sdsdup(rc->err) : sdsnew("unknown failure");
    int kind = rc->err_kind;
    int healthy = r->s.n > 0 && scale_check(r, CHECK_SILENT) == 0;
    sds msg = r->changed ? rc_sprintf("%s\nscale stopped part way: the cluster is %s%s; no key was lost. Run the same `rcluster %s%s --name %s "
                                      "--masters %d --replicas %d --yes` again to finish the job.", saved,
                                      healthy ? "healthy" : "NOT healthy (the re-run, or `rcluster fix`, repairs it)",
                                      r->joined ? "; the nodes that joined stay in it" : "", argv0, r->sw ? " --swarm" : "", r->so.up.name,
                                      r->so.masters, r->so.replicas)
                         : rc_sprintf("%s; nothing changed", saved);
    sdsfree(saved);
    if (msg) { sdsfree(rc->err); rc->err = msg; }
    rc->err_kind = kind;
}

/* scale = options -> manifest and containers -> session -> preflight -> plan ->
 * confirm -> add -> move slots -> replicas -> remove -> manifest -> wait -> report. */
static int cmd_scale(struct rc *rc, int argc, char **argv) {
    struct scale_opts so;   /* as parsed; never written after: the run works on its copy r.so */
    memset(&so, 0, sizeof so);
    up_opts_defaults(&so.up);
    so.replicas = -1;
    int ret = cmd_parse_opts(rc, argc, argv, scale_longopts, (int)(sizeof scale_longopts / sizeof scale_longopts[0]), usage_scale, scale_on_opt, &so);
    if (ret == 0 && optind < argc) { ret = rc_fail_as(rc, RC_ERR_USAGE, "scale: unexpected argument '%s'", argv[optind]); }
    if (ret == 0 && !so.masters && !so.nodes) { ret = rc_fail_as(rc, RC_ERR_USAGE, "scale: --masters M (or --nodes N) is required (see rcluster scale --help)"); }
    if (ret == 0 && !conf_valid_name(so.up.name)) { ret = rc_fail_as(rc, RC_ERR_USAGE, "--name '%s': not a valid cluster name", so.up.name); }
    free(so.up.configs);   /* scale takes no --config: the recorded lines come from the manifest */
    so.up.configs = NULL;
    if (ret) return ret < 0 ? -1 : 0;
    struct scale_run r;
    memset(&r, 0, sizeof r);
    r.rc = rc;
    r.so = so;   /* the manifest merges into it and --replicas is resolved there */
    r.s.n = 0;
    docker_init_closed(&r.d, rc);
    int64_t t0 = rc_now_ms();
    r.deadline = rc_deadline_in(rc->timeout);
    int removed = 0;
    r.nofail = NULL;
    const struct placement *place = placement_of(r.so.up.swarm);
    if (place->scale_inspect(&r) < 0) { ret = -1; goto out; }
    r.s.deadline = r.deadline;   /* the session's waits (joins, settling) share it too */
    if (scale_preflight(&r) < 0 || scale_map_roles(&r) < 0) { ret = -1; goto out; }
    if (!(r.nofail = calloc((size_t)r.nmax, sizeof *r.nofail)) || !(r.nofail_was = calloc((size_t)r.nmax, sizeof *r.nofail_was))) { ret = rc_fail_oom(rc); goto out; }
    scale_print_plan(&r);
    if (r.so.up.dry_run) { if (!rc->json) printf("scale: dry run, nothing changed\n"); ret = 0; goto out; }
    {
        sds q = rc_sprintf("Scale cluster '%s' to %d masters with %d replica(s) each (%d nodes)%s?", r.so.up.name, r.so.masters,
                           r.so.replicas, r.n_want, r.so.up.purge && r.n_want < r.nmax ? ", deleting the data dirs of removed nodes" : "");
        ret = q ? rc_confirm(rc, q) : rc_fail_oom(rc);
        sdsfree(q);
        if (ret < 0) goto out;
    }
    r.deadline = r.s.deadline = rc_deadline_in(rc->timeout);   /* every phase from here shares it; the prompt does not count */
    if (scale_promote(&r) < 0 || place->scale_add(&r) < 0 || scale_move_slots(&r) < 0 || scale_assign_replicas(&r) < 0 ||
        place->scale_remove(&r, &removed) < 0 || place->scale_record(&r) < 0) goto fail;
    int h;
    while ((h = scale_check(&r, CHECK_SILENT)) != 0 && !rc_interrupted() && !rc_deadline_passed(r.deadline)) rc_sleep_ms(200);
    if (h != 0) { rc_wrap(rc, "after the scale the cluster is not healthy"); goto fail; }
    scale_release_failover(&r);   /* healthy again: replicas may fail over as usual */
    int64_t ms = rc_now_ms() - t0;
    if (rc->json)
        rc_json_outf(rc, "{\"ok\":true,\"command\":\"scale\",\"name\":\"%s\",\"masters\":%d,\"replicas\":%d,\"nodes\":%d,\"joined\":%d,\"removed\":%d,"
               "\"slots_moved\":%d,\"keys_moved\":%lld,\"elapsed_ms\":%lld}\n", r.so.up.name, r.so.masters, r.so.replicas, r.n_want,
               r.joined, removed, r.slots_moved, r.keys_moved, (long long)ms);
    else printf("scale: cluster '%s' has %d masters with %d replica(s) each (%d nodes): %d joined, %d removed, %d slot(s) and %lld key(s) moved "
                "in %.1f s; healthy\n", r.so.up.name, r.so.masters, r.so.replicas, r.n_want, r.joined, removed, r.slots_moved, r.keys_moved,
                (double)ms / 1000.0);
    ret = 0;
    goto out;
fail:
    scale_release_failover(&r);
    scale_explain_failure(&r, argv[0]);
    ret = -1;
out:
    if (ret < 0 && r.nnofail) scale_release_failover(&r);
    scale_free(&r);
    return ret;
}

/* ====================================================================== */
/* 9b. The placement on Docker Swarm (--swarm): services, configs, secrets, */
/*     tasks, the manifest config and re-homing; section 9a's commands    */
/*     call these ops                                                     */
/* ====================================================================== */

/* With --swarm the daemon is a Swarm manager and each Redis node is one service
 * NAME-I (one task) pinned by `node.id==ID` to one Swarm node, so that its named
 * local volume NAME-I-data stays with it. Its redis.conf is a Swarm config NAME-I.conf
 * and the password lines a secret NAME-password that the config includes: nothing is
 * written to any host's filesystem. Ports are published in host mode on the Swarm
 * node itself and the endpoint mode is dnsrr: a cluster client needs each node's own
 * address, never the routing mesh or a virtual IP. Every object carries
 * io.rcluster.cluster=NAME; nothing unlabelled is touched. The manager cannot reach
 * other nodes' daemons, so images (and, with down --purge, volumes) on other nodes
 * are handled there, through their own DOCKER_HOST. */
#define LABEL_SWARM_NODE "io.rcluster.swarm-node"   /* on a service: the Swarm node id it is pinned to */
#define LABEL_ANNOUNCE   "io.rcluster.announce"     /* on a service: "container" with --announce container */
#define LABEL_MANIFEST   "io.rcluster.manifest"     /* on a config: the generation of the cluster's Swarm manifest */
#define SWARM_MAX_HOSTS  64
#define SWARM_POLL_MS    500

struct swarm_host {
    char id[64];
    char addr[64];            /* Status.Addr: where clients and rcluster reach published ports */
    char hostname[128];
    int ready, active;        /* Status.State "ready", Spec.Availability "active" */
};

struct swarm_node {
    int i;                    /* 1-based */
    char name[64];            /* service NAME-I */
    int host;                 /* index into swarm_plan.hosts, -1 if its host is unknown */
    int port, bus;            /* published in host mode */
    int exists, created;      /* service found / created by this run */
    char overlay_ip[64];      /* its task's overlay address (--announce container) */
    int lost;                 /* its Swarm node is down: this run re-homes it */
    char old_id[41];          /* the lost Redis node's id ("" if no node lists it): forgotten */
    char master_id[41];       /* re-homed: the master it is to replicate */
};

struct swarm_plan {
    const struct up_opts *o;
    int n;                    /* the nodes it works on, 1..n: --nodes (a scale: see up_plan) */
    int container;            /* --announce container: nodes keep their overlay addresses */
    char server[16];          /* "redis" or "valkey" */
    char self_id[64];         /* the manager's own Swarm node id */
    struct swarm_host *hosts;
    int nhosts;
    struct swarm_node *nodes;
    sds net_id, secret_id;
    char secret_name[96];     /* the password secret's name: NAME-password, or update's NAME-password-T */
    int net_created, secret_created;
    sds *conf_ids;            /* per node */
    int *conf_created;
    int nalloc;               /* nodes allocated: o->nodes when the plan was made */
};

static void swarm_plan_free(struct swarm_plan *p) {
    free(p->hosts);
    free(p->nodes);
    sdsfree(p->net_id);
    sdsfree(p->secret_id);
    for (int k = 0; p->conf_ids && k < p->nalloc; k++) sdsfree(p->conf_ids[k]);
    free(p->conf_ids);
    free(p->conf_created);
}

/* ---- pure helpers: bodies, conf split, placement ----------------------------- */

/* Standard base64 of s[0..len) appended to out (Swarm config and secret Data). */
static const char swarm_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static sds swarm_base64(sds out, const char *s, size_t len) {
    const char *tab = swarm_b64;
    for (size_t i = 0; out && i < len; i += 3) {
        unsigned v = (unsigned)(unsigned char)s[i] << 16;
        if (i + 1 < len) v |= (unsigned)(unsigned char)s[i + 1] << 8;
        if (i + 2 < len) v |= (unsigned char)s[i + 2];
        char q[4] = { tab[v >> 18 & 63], tab[v >> 12 & 63], '=', '=' };
        if (i + 1 < len) q[2] = tab[v >> 6 & 63];
        if (i + 2 < len) q[3] = tab[v & 63];
        out = rc_catlen(out, q, 4);
    }
    return out;
}

/* Standard base64 decoding (a Swarm config's Spec.Data); NULL on a bad character or OOM. */
static sds swarm_unbase64(const char *s) {
    sds out = sdsempty();
    unsigned v = 0;
    int bits = 0;
    for (; out && *s && *s != '='; s++) {
        const char *q = strchr(swarm_b64, *s);
        if (!q) { sdsfree(out); return NULL; }
        v = (v << 6 | (unsigned)(q - swarm_b64)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char c = (char)(v >> bits & 255);
            out = rc_catlen(out, &c, 1);
        }
    }
    return out;
}

/* Split a rendered redis.conf: the password lines (requirepass, masterauth, user,
 * masteruser) go to *secret, the rest to *conf, which then includes the secret file.
 * Without keep_announce the cluster-announce-* lines are dropped (--announce container:
 * a node's overlay address is known only once its task runs). -1 on OOM. */
static int swarm_conf_split(const char *text, int keep_announce, const char *secret_path, sds *conf, sds *secret) {
    static const char *const secret_words[] = { "requirepass ", "masterauth ", "user ", "masteruser " };
    *conf = sdsempty();
    *secret = sdsempty();
    for (const char *l = text; *conf && *secret && l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) + 1 : strlen(l);
        int to_secret = 0;
        for (size_t k = 0; k < sizeof secret_words / sizeof secret_words[0]; k++)
            if (!strncmp(l, secret_words[k], strlen(secret_words[k]))) to_secret = 1;
        if (to_secret) *secret = rc_catlen(*secret, l, len);
        else if (keep_announce || strncmp(l, "cluster-announce-", 17) != 0) *conf = rc_catlen(*conf, l, len);
        l += len;
    }
    if (*conf && *secret && sdslen(*secret) && secret_path) *conf = rc_catprintf(*conf, "include %s\n", secret_path);
    if (!*conf || !*secret) { sdsfree(*conf); sdsfree(*secret); *conf = *secret = NULL; return -1; }
    return 0;
}

/* {"io.rcluster.cluster":NAME,...[,"io.rcluster.node":"I"][,swarm-node]} */
static sds swarm_labels(sds s, const char *name, int node, const char *host_id) {
    s = rc_json_str(rc_cat(s, "{\"" LABEL_CLUSTER "\":"), name);
    s = rc_cat(s, ",\"" LABEL_VERSION "\":\"" RCLUSTER_VERSION "\"");
    if (node) s = rc_catprintf(s, ",\"" LABEL_NODE "\":\"%d\"", node);
    if (host_id) s = rc_json_str(rc_cat(s, ",\"" LABEL_SWARM_NODE "\":"), host_id);
    return rc_cat(s, "}");
}

/* POST /networks/create: an attachable overlay network with a private subnet. */
static sds swarm_network_body(const char *name, const char *subnet) {
    sds s = rc_json_str(sdsnew("{\"Name\":"), name);
    s = rc_cat(s, ",\"CheckDuplicate\":true,\"Driver\":\"overlay\",\"Attachable\":true,\"IPAM\":{\"Driver\":\"default\",\"Config\":[{\"Subnet\":");
    s = rc_json_str(s, subnet);
    s = rc_cat(s, "}]},\"Labels\":");
    s = swarm_labels(s, name, 0, NULL);
    return rc_cat(s, "}");
}

/* POST /configs/create or /secrets/create: the same shape; gen > 0 marks the manifest. */
static sds swarm_blob_body(const char *cluster, const char *name, int node, int gen, const char *data) {
    sds s = rc_json_str(sdsnew("{\"Name\":"), name);
    s = rc_cat(s, ",\"Labels\":");
    s = swarm_labels(s, cluster, node, NULL);
    if (s && gen > 0) { sdsrange(s, 0, -2); s = rc_catprintf(s, ",\"" LABEL_MANIFEST "\":\"%d\"}", gen); }
    s = swarm_base64(rc_cat(s, ",\"Data\":\""), data, strlen(data));
    return rc_cat(s, "\"}");
}

/* POST /services/create for node n: one task pinned to its Swarm node, the config at
 * the server's conf path, the password secret (mode 0400), a labelled named volume at
 * /data, dnsrr and both ports published in host mode. */
static sds swarm_service_body(const struct swarm_plan *p, const struct swarm_node *n, const char *conf_id, const char *conf_name) {
    const char *name = p->o->name, *host_id = p->hosts[n->host].id;
    sds s = rc_json_str(sdsnew("{\"Name\":"), n->name);
    s = swarm_labels(rc_cat(s, ",\"Labels\":"), name, n->i, host_id);
    if (s && p->container) { sdsrange(s, 0, -2); s = rc_cat(s, ",\"" LABEL_ANNOUNCE "\":\"container\"}"); }
    s = rc_json_str(rc_cat(s, ",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":"), p->o->image);
    s = rc_catprintf(s, ",\"Command\":[\"%s-server\",\"/etc/%s/redis.conf\"],\"Labels\":", p->server, p->server);
    s = swarm_labels(s, name, n->i, NULL);
    s = rc_catprintf(s, ",\"Mounts\":[{\"Type\":\"volume\",\"Source\":\"%s-data\",\"Target\":\"/data\",\"VolumeOptions\":{\"Labels\":", n->name);
    s = swarm_labels(s, name, n->i, NULL);
    s = rc_catprintf(s, "}}],\"Configs\":[{\"File\":{\"Name\":\"/etc/%s/redis.conf\",\"UID\":\"0\",\"GID\":\"0\",\"Mode\":292},"
                        "\"ConfigID\":", p->server);
    s = rc_json_str(s, conf_id);
    if (conf_name) s = rc_cat(rc_json_str(rc_cat(s, ",\"ConfigName\":"), conf_name), "}]");
    else s = rc_catprintf(s, ",\"ConfigName\":\"%s.conf\"}]", n->name);
    if (p->secret_id) {
        s = rc_catprintf(s, ",\"Secrets\":[{\"File\":{\"Name\":\"%s-password\",\"UID\":\"0\",\"GID\":\"0\",\"Mode\":256},\"SecretID\":", name);
        s = rc_json_str(s, p->secret_id);
        s = rc_catprintf(s, ",\"SecretName\":\"%s\"}]", p->secret_name);
    }
    s = rc_cat(s, "},\"RestartPolicy\":{\"Condition\":\"any\",\"Delay\":1000000000},\"Placement\":{\"Constraints\":[");
    sds constraint = rc_sprintf("node.id==%s", host_id);
    s = constraint ? rc_json_str(s, constraint) : (sdsfree(s), NULL);
    sdsfree(constraint);
    s = rc_cat(s, "]},\"Networks\":[{\"Target\":");
    s = rc_json_str(s, p->net_id ? p->net_id : name);
    s = rc_catprintf(s, "}]},\"Mode\":{\"Replicated\":{\"Replicas\":1}},\"EndpointSpec\":{\"Mode\":\"dnsrr\",\"Ports\":["
                        "{\"Protocol\":\"tcp\",\"TargetPort\":6379,\"PublishedPort\":%d,\"PublishMode\":\"host\"},"
                        "{\"Protocol\":\"tcp\",\"TargetPort\":16379,\"PublishedPort\":%d,\"PublishMode\":\"host\"}]}}",
                     n->port, n->bus);
    return s;
}

/* Redis node k goes to usable Swarm node k mod nusable. Hosts are sorted by id, so a
 * re-run after `down` (volumes kept) puts every node back beside its volume; the
 * engine's own plan, by announced address, then spreads masters over distinct hosts
 * and keeps each replica off its master's host, as cluster_plan_layout does. */
static void swarm_assign_hosts(int n, const int *usable, int nusable, int *host_of) {
    for (int k = 0; k < n; k++) host_of[k] = nusable > 0 ? usable[k % nusable] : -1;
}

/* What redundancy a layout loses when one Swarm node is lost: one line per problem,
 * empty when every master has a host of its own and no replica shares its master's
 * host. hosts[k] names node k's Swarm node, names[k] the node. NULL on OOM. */
static sds swarm_redundancy(int n, int replicas, const char *const *hosts, const char *const *names) {
    int *master_of = calloc((size_t)n, sizeof *master_of), *masters = calloc((size_t)n, sizeof *masters);
    int m = master_of && masters ? cluster_plan_layout(n, hosts, replicas, master_of, masters) : -1;
    sds s = m > 0 ? sdsempty() : NULL;
    for (int a = 0; s && a < m; a++) {
        int same = 0, first = 1;
        for (int b = 0; b < a; b++) if (!strcmp(hosts[masters[a]], hosts[masters[b]])) first = 0;
        for (int b = 0; b < m; b++) same += !strcmp(hosts[masters[a]], hosts[masters[b]]);
        if (first && same > 1)
            s = rc_catprintf(s, "Swarm node %s carries %d of the %d masters: losing it %s\n", hosts[masters[a]], same, m,
                             2 * same >= m ? "leaves no majority of masters to vote a failover, so the cluster stops"
                                           : "fails over several masters at once");
    }
    for (int k = 0; s && k < n; k++)
        if (master_of[k] >= 0 && !strcmp(hosts[k], hosts[master_of[k]]))
            s = rc_catprintf(s, "replica %s shares Swarm node %s with its master %s: losing that node loses both, and the "
                                "master's slots\n", names[k], hosts[k], names[master_of[k]]);
    free(master_of);
    free(masters);
    return s;
}

/* ---- the Swarm: manager, nodes, existing objects ------------------------------- */

/* GET /info: 1 when this daemon is a Swarm manager (self_id set), 0 when it is not
 * (rc->err says what it is), -1 on error. */
static int swarm_role(struct docker *d, char self_id[64]) {
    json_value_s *info = NULL;
    if (docker_call_json(d, "GET", "/info", NULL, &info, 0) < 0) return -1;
    const json_value_s *sw = json_get(info, "Swarm");
    const char *state = json_string(json_get(sw, "LocalNodeState"));
    const char *id = json_string(json_get(sw, "NodeID"));
    int manager = json_is_true(json_get(sw, "ControlAvailable"));
    snprintf(self_id, 64, "%s", id ? id : "");
    if (!manager)
        rc_fail(d->rc, "the Docker daemon at %s is not a Swarm manager (GET /info: Swarm.LocalNodeState=%s, "
                       "ControlAvailable=false); run this against a manager (DOCKER_HOST=...), or `docker swarm init` first",
                d->conn.what, state && *state ? state : "?");
    json_free(info);
    return manager;
}

static int swarm_host_cmp(const void *a, const void *b) {
    return strcmp(((const struct swarm_host *)a)->id, ((const struct swarm_host *)b)->id);
}

/* GET /nodes: the Swarm's nodes, sorted by id. */
static int swarm_list_hosts(struct docker *d, struct swarm_plan *p) {
    json_value_s *v = NULL;
    if (docker_call_json(d, "GET", "/nodes", NULL, &v, 0) < 0) return -1;
    size_t n = json_length(v);
    if (json_type(v) != JSON_ARRAY || n == 0 || n > SWARM_MAX_HOSTS) {
        json_free(v);
        return rc_fail(d->rc, "GET /nodes: expected a list of 1 to %d Swarm nodes", SWARM_MAX_HOSTS);
    }
    p->hosts = calloc(n, sizeof *p->hosts);
    if (!p->hosts) { json_free(v); return rc_fail_oom(d->rc); }
    for (size_t k = 0; k < n; k++) {
        const json_value_s *x = json_at(v, k);
        struct swarm_host *h = &p->hosts[k];
        const char *id = json_string(json_get(x, "ID"));
        const char *addr = json_string(json_get(json_get(x, "Status"), "Addr"));
        const char *maddr = json_string(json_get(json_get(x, "ManagerStatus"), "Addr"));
        const char *hn = json_string(json_get(json_get(x, "Description"), "Hostname"));
        const char *st = json_string(json_get(json_get(x, "Status"), "State"));
        const char *av = json_string(json_get(json_get(x, "Spec"), "Availability"));
        snprintf(h->id, sizeof h->id, "%s", id ? id : "?");
        /* Some engines report a manager's Status.Addr as 0.0.0.0; its ManagerStatus says where it listens. */
        if ((!addr || !strcmp(addr, "0.0.0.0")) && maddr) snprintf(h->addr, sizeof h->addr, "%.*s", (int)strcspn(maddr, ":"), maddr);
        else snprintf(h->addr, sizeof h->addr, "%s", addr ? addr : "");
        snprintf(h->hostname, sizeof h->hostname, "%s", hn ? hn : "?");
        h->ready = st && !strcmp(st, "ready");
        h->active = av && !strcmp(av, "active");
    }
    json_free(v);
    p->nhosts = (int)n;
    qsort(p->hosts, n, sizeof *p->hosts, swarm_host_cmp);
    return 0;
}

static int swarm_host_index(const struct swarm_plan *p, const char *id) {
    for (int h = 0; id && h < p->nhosts; h++) if (!strcmp(p->hosts[h].id, id)) return h;
    return -1;
}

/* "vm2 (10.70.0.12, id 1wq3...)" for messages. */
static sds swarm_host_desc(const struct swarm_plan *p, int h) {
    if (h < 0) return sdsnew("an unknown Swarm node");
    return rc_sprintf("%s (%s, id %.12s)", p->hosts[h].hostname, p->hosts[h].addr, p->hosts[h].id);
}

/* Is node x's service pinned to a Swarm node that is down, or gone from the Swarm? */
static int swarm_node_lost(const struct swarm_plan *p, const struct swarm_node *x) {
    return x->exists && (x->host < 0 || !p->hosts[x->host].ready);
}

/* Inspect service `name`: 1 found (*out set), 0 none, -1 error. Docker also matches id
 * prefixes, so the name is compared. */
static int swarm_inspect_service(struct docker *d, const char *name, json_value_s **out) {
    sds path = rc_sprintf("/services/%s", name);
    if (!path) return rc_fail_oom(d->rc);
    int st = docker_call_json(d, "GET", path, NULL, out, 404);
    sdsfree(path);
    if (st < 0) return -1;
    const char *got = json_string(json_get(json_get(*out, "Spec"), "Name"));
    if (st == 404 || !got || strcmp(got, name) != 0) { json_free(*out); *out = NULL; return 0; }
    return 1;
}

/* An object's ID by name among a label-filtered list (configs, secrets); NULL if absent. */

/* The ID of the newest object named `name` or `name`-SUFFIX (what `update` makes when
 * it replaces a secret or config, which cannot change; the old ones stay while a
 * service's previous spec refers to them). */
static const char *swarm_id_of(const json_value_s *list, const char *name) {
    const char *id = NULL, *newest = "";
    size_t nl = strlen(name);
    for (size_t k = 0; k < json_length(list); k++) {
        const json_value_s *x = json_at(list, k);
        const char *nm = json_string(json_get(json_get(x, "Spec"), "Name")), *at = json_string(json_get(x, "CreatedAt"));
        if (nm && !strncmp(nm, name, nl) && (!nm[nl] || nm[nl] == '-') && at && strcmp(at, newest) > 0) {
            newest = at;
            id = json_string(json_get(x, "ID"));
        }
    }
    return id;
}

/* What exists already: the network (ours, overlay), the secret, each node's config and
 * service (ours, and on which Swarm node). Foreign objects with our names are refused. */
static int swarm_inspect_existing(struct docker *d, struct swarm_plan *p) {
    struct rc *rc = d->rc;
    const char *name = p->o->name;
    json_value_s *v = NULL;
    int r = docker_inspect(d, "networks", name, &v);
    if (r < 0) return -1;
    if (r == 1) {
        const char *drv = json_string(json_get(v, "Driver"));
        if (!up_is_ours(v, name, 0))
            r = rc_fail(rc, "a foreign network named '%s' exists (no label %s=%s); not touching it: choose another --name",
                        name, LABEL_CLUSTER, name);
        else if (!drv || strcmp(drv, "overlay") != 0)
            r = rc_fail(rc, "network '%s' is a %s network of a cluster made without --swarm; remove it with `rcluster down "
                            "--name %s`, or choose another --name", name, drv ? drv : "?", name);
        else if (!(p->net_id = sdsnew(json_string(json_get(v, "Id")) ? json_string(json_get(v, "Id")) : name)))
            r = rc_fail_oom(rc);
        json_free(v);
        if (r < 0) return -1;
    }
    json_value_s *secrets = NULL, *configs = NULL, *services = NULL;
    sds sname = rc_sprintf("%s-password", name);
    int ret = sname ? 0 : rc_fail_oom(rc);
    if (ret == 0) ret = docker_list_by_label(d, "secrets", LABEL_CLUSTER, name, &secrets);
    if (ret == 0) ret = docker_list_by_label(d, "configs", LABEL_CLUSTER, name, &configs);
    if (ret == 0) ret = docker_list_by_label(d, "services", LABEL_CLUSTER, name, &services);
    const char *sid = ret == 0 ? swarm_id_of(secrets, sname) : NULL;
    if (sid && !(p->secret_id = sdsnew(sid))) ret = rc_fail_oom(rc);
    for (size_t k = 0; sid && k < json_length(secrets); k++)   /* its own name: NAME-password or update's NAME-password-T */
        if (json_string(json_get(json_at(secrets, k), "ID")) && !strcmp(json_string(json_get(json_at(secrets, k), "ID")), sid))
            snprintf(p->secret_name, sizeof p->secret_name, "%s", json_string(json_get(json_get(json_at(secrets, k), "Spec"), "Name")) ? json_string(json_get(json_get(json_at(secrets, k), "Spec"), "Name")) : sname);
    for (int k = 0; ret == 0 && k < p->n; k++) {
        struct swarm_node *n = &p->nodes[k];
        sds cname = rc_sprintf("%s.conf", n->name);
        const char *cid = cname ? swarm_id_of(configs, cname) : NULL;
        if (cid && !(p->conf_ids[k] = sdsnew(cid))) ret = rc_fail_oom(rc);
        sdsfree(cname);
        if (ret == 0 && (r = swarm_inspect_service(d, n->name, &v)) < 0) ret = -1;
        if (ret < 0 || r == 0) continue;
        if (!up_is_ours(json_get(v, "Spec"), name, n->i))
            ret = rc_fail(rc, "a foreign service named '%s' exists (not node %d of rcluster cluster '%s'); not touching it: "
                              "remove it yourself or choose another --name", n->name, n->i, name);
        n->exists = 1;
        n->host = swarm_host_index(p, docker_label(json_get(v, "Spec"), LABEL_SWARM_NODE));
        json_free(v);
        v = NULL;
    }
    int extra = 0;
    for (size_t k = 0; ret == 0 && k < json_length(services); k++) {
        const char *nl = docker_label(json_get(json_at(services, k), "Spec"), LABEL_NODE);
        long i;
        if (nl && rc_parse_int(nl, 1, 100000, &i) == 0 && i > p->n) extra++;
    }
    if (extra)
        ret = rc_fail(rc, "cluster '%s' has %d service(s) beyond --nodes %d; pass its original --nodes, or start over with "
                          "`rcluster down --swarm --name %s --purge`", name, extra, p->n, name);
    json_free(secrets);
    json_free(configs);
    json_free(services);
    sdsfree(sname);
    return ret;
}

/* ---- plan --------------------------------------------------------------------- */

/* Validate the options for --swarm. Changes nothing. */
static int swarm_plan_make(struct rc *rc, const struct up_opts *o, struct swarm_plan *p) {
    memset(p, 0, sizeof *p);
    p->o = o;
    p->n = o->nodes;
    if (up_check_shape(rc, o) < 0) return -1;
    static const struct { unsigned bit; const char *opt, *why; } refused[] = {
        { UPG_NETWORK, "--network", "services join the overlay network NAME" },
        { UPG_BIND, "--bind", "nodes listen on the overlay and on their published ports" },
        { UPG_PUBLISH_IP, "--publish-ip", "ports are published in host mode on each Swarm node's own addresses" },
    };
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++)
        if (o->given & refused[k].bit) return rc_fail(rc, "%s does not apply with --swarm: %s", refused[k].opt, refused[k].why);
    if (o->data_dir) return rc_fail(rc, "--data-dir does not apply with --swarm: each node keeps its data in the named volume NAME-I-data on its Swarm node");
    if (strcmp(o->announce, "container") != 0 && strcmp(o->announce, SWARM_ANNOUNCE_HOST) != 0)
        return rc_fail(rc, "--announce %s does not apply with --swarm: nodes announce their Swarm node's address (the "
                           "default, --announce " SWARM_ANNOUNCE_HOST "), or their overlay address with --announce container", o->announce);
    p->container = !strcmp(o->announce, "container");
    uint32_t net;
    int prefix;
    if (conf_parse_cidr(o->subnet, &net, &prefix) < 0)
        return rc_fail_as(rc, RC_ERR_USAGE, "--subnet '%s': expected an IPv4 network like 10.38.0.0/16 (host bits zero)", o->subnet);
    if (!conf_cidr_is_private(net, prefix))
        return rc_fail(rc, "--subnet %s is not private address space (RFC 1918); the overlay would hide real hosts", o->subnet);
    if (!rc->password && !o->insecure)
        return rc_fail(rc, "--swarm publishes the nodes' ports on every Swarm node's addresses, beyond this host, without a "
                           "password; give --password-file F (or RCLUSTER_PASSWORD), or --insecure to accept that");
    if (rc->password && (strpbrk(rc->password, "\r\n") || !*rc->password)) return rc_fail(rc, "the password must be one non-empty line");
    if (rc->user && !rc->password) return rc_fail(rc, "--user %s needs a password (--password-file F)", rc->user);
    if (rc->user && (!conf_valid_name(rc->user) || !strcmp(rc->user, "default")))
        return rc_fail(rc, "--user '%s': expected a name like [a-zA-Z0-9][a-zA-Z0-9_.-]*, not 'default'", rc->user);
    snprintf(p->secret_name, sizeof p->secret_name, "%s-password", o->name);
    p->nodes = calloc((size_t)o->nodes, sizeof *p->nodes);
    p->conf_ids = calloc((size_t)o->nodes, sizeof *p->conf_ids);
    p->conf_created = calloc((size_t)o->nodes, sizeof *p->conf_created);
    if (!p->nodes || !p->conf_ids || !p->conf_created) return rc_fail_oom(rc);
    p->nalloc = o->nodes;
    for (int k = 0; k < o->nodes; k++) {
        struct swarm_node *n = &p->nodes[k];
        n->i = k + 1;
        n->host = -1;
        snprintf(n->name, sizeof n->name, "%s-%d", o->name, n->i);
        n->port = o->port + k;
        n->bus = n->port + CLUSTER_BUS_OFFSET;
    }
    snprintf(p->server, sizeof p->server, "%s", o->server ? o->server : "redis");
    return 0;
}

/* Pin every node without a service to a Swarm node; for a new cluster, say what
 * redundancy the layout loses and go on only when the user accepts it (--yes). A node
 * whose service exists stays where it is (its volume is there), and once one exists
 * the cluster's own roles, not the layout, say where masters are. */
static int swarm_place(struct rc *rc, struct swarm_plan *p) {
    int n = p->n, nusable = 0, ret = 0;
    int *usable = calloc((size_t)p->nhosts, sizeof *usable), *host_of = calloc((size_t)n, sizeof *host_of);
    const char **ids = calloc((size_t)n, sizeof *ids), **names = calloc((size_t)n, sizeof *names);
    if (!usable || !host_of || !ids || !names) ret = rc_fail_oom(rc);
    for (int h = 0; ret == 0 && h < p->nhosts; h++) if (p->hosts[h].ready && p->hosts[h].active) usable[nusable++] = h;
    if (ret == 0 && nusable == 0) ret = rc_fail(rc, "GET /nodes: no Swarm node is ready and active");
    if (ret == 0) swarm_assign_hosts(n, usable, nusable, host_of);
    for (int k = 0; ret == 0 && k < n; k++) {
        if (!p->nodes[k].exists) p->nodes[k].host = host_of[k];
        ids[k] = p->nodes[k].host >= 0 ? swarm_host_desc(p, p->nodes[k].host) : NULL;
        if (!ids[k] && !(ids[k] = sdsnew("?"))) ret = rc_fail_oom(rc);
        names[k] = p->nodes[k].name;
    }
    int existing = 0;
    for (int k = 0; k < n; k++) existing += p->nodes[k].exists;
    sds lost = ret == 0 ? (existing ? sdsempty() : swarm_redundancy(n, p->o->replicas, ids, names)) : NULL;
    if (ret == 0 && !lost) ret = rc_fail_oom(rc);
    if (ret == 0 && sdslen(lost)) {
        rc_warn(rc, "%d Swarm node(s) ready for %d masters and %d replica(s) each; redundancy is lost:\n%s", nusable,
                n / (p->o->replicas + 1), p->o->replicas, lost);
        ret = rc_confirm(rc, "Go on with less redundancy than the layout asks for?");
    }
    sdsfree(lost);
    free(usable);
    free(host_of);
    for (int k = 0; ids && k < n; k++) sdsfree((sds)ids[k]);
    free(ids);
    free(names);
    return ret;
}

/* What the image runs, from the manager's copy when it has one (else --server or redis). */
static int swarm_detect_server(struct docker *d, struct swarm_plan *p) {
    if (p->o->server) return 0;
    sds path = rc_sprintf("/images/%s/json", p->o->image);
    json_value_s *img = NULL;
    int st = path ? docker_call_json(d, "GET", path, NULL, &img, 404) : rc_fail_oom(d->rc);
    sdsfree(path);
    if (st < 0) return -1;
    int entry = 0;
    const char *server = img ? up_server_of_image(img, &entry) : NULL;
    if (server) snprintf(p->server, sizeof p->server, "%s", server);
    json_free(img);
    return 0;
}

/* ---- apply -------------------------------------------------------------------- */

/* POST a create body; *id gets the new object's ID ("(new)" in a dry run). */
static int swarm_create(struct docker *d, const char *path, sds body, sds *id) {
    json_value_s *v = NULL;
    int st = body ? docker_call_json(d, "POST", path, body, &v, 0) : rc_fail_oom(d->rc);
    sdsfree(body);
    if (st < 0) return -1;
    const char *got = json_string(json_get(v, "ID"));
    if (!got) got = json_string(json_get(v, "Id"));
    *id = sdsnew(got ? got : "(new)");
    json_free(v);
    return *id ? 0 : rc_fail_oom(d->rc);
}

/* Node n's redis.conf, split into its config text and the password secret's text. */
static int swarm_render(struct rc *rc, const struct swarm_plan *p, const struct swarm_node *n, sds *conf, sds *secret) {
    const char *addr = n->host >= 0 ? p->hosts[n->host].addr : "0.0.0.0";
    struct conf_params cp = { addr, n->port, n->bus, p->o->node_timeout, rc->password, rc->user, p->o->configs,
                              p->o->nconfigs, 0, NULL };
    sds text = conf_render(&cp), spath = rc_sprintf("/run/secrets/%s-password", p->o->name);
    int r = text && spath ? swarm_conf_split(text, !p->container, spath, conf, secret) : -1;
    sdsfree(text);
    sdsfree(spath);
    return r < 0 ? rc_fail_oom(rc) : 0;
}

/* The network, the password secret and the configs that are missing, then the
 * services of the nodes that have none. Each object made is recorded for the rollback. */
static int swarm_apply(struct docker *d, struct swarm_plan *p) {
    struct rc *rc = d->rc;
    const char *name = p->o->name;
    if (!p->net_id) {
        rc_progress(rc, "Creating overlay network %s (%s, attachable)", name, p->o->subnet);
        if (swarm_create(d, "/networks/create", swarm_network_body(name, p->o->subnet), &p->net_id) < 0) return -1;
        p->net_created = 1;
    }
    sds conf = NULL, secret = NULL;
    if (swarm_render(rc, p, &p->nodes[0], &conf, &secret) < 0 || !conf || !secret) { sdsfree(conf); sdsfree(secret); return -1; }
    if (!p->secret_id && sdslen(secret)) {
        sds sname = rc_sprintf("%s-password", name);
        rc_progress(rc, "Creating secret %s", sname ? sname : "?");
        int r;
        /* A dry run shows every request but this body: it is the password. */
        if (p->o->dry_run) {
            sds body = rc_json_str(sdsnew("{\"Name\":"), sname ? sname : "?");
            body = rc_cat(body, ",\"Data\":\"***\"}");
            docker_record_request(d, "POST", "/secrets/create", body);
            sdsfree(body);
        }
        if (p->o->dry_run) r = (p->secret_id = sdsnew("(new)")) ? 0 : rc_fail_oom(rc);
        else r = sname ? swarm_create(d, "/secrets/create", swarm_blob_body(name, sname, 0, 0, secret), &p->secret_id) : rc_fail_oom(rc);
        sdsfree(sname);
        if (r < 0) { sdsfree(conf); sdsfree(secret); return -1; }
        p->secret_created = 1;
    }
    sdsfree(conf);
    sdsfree(secret);
    int made = 0;
    for (int k = 0; k < p->n; k++) {
        struct swarm_node *n = &p->nodes[k];
        if (n->exists) continue;
        if (!p->conf_ids[k]) {
            sds cname = rc_sprintf("%s.conf", n->name);
            int r = cname ? swarm_render(rc, p, n, &conf, &secret) : rc_fail_oom(rc);
            if (r == 0 && p->o->dry_run) {
                sds what = rc_sprintf("config %s", cname);
                rc_plan_file(rc, what ? what : "?", conf);
                sdsfree(what);
            }
            if (r == 0) r = swarm_create(d, "/configs/create", swarm_blob_body(name, cname, n->i, 0, conf), &p->conf_ids[k]);
            sdsfree(cname);
            sdsfree(conf);
            sdsfree(secret);
            if (r < 0) return -1;
            p->conf_created[k] = 1;
        }
        sds id = NULL;
        if (swarm_create(d, "/services/create", swarm_service_body(p, n, p->conf_ids[k], NULL), &id) < 0)
            return rc_wrap(rc, "creating service %s", n->name);
        sdsfree(id);
        n->created = 1;
        made++;
    }
    if (made) rc_progress(rc, "Created %d service(s), each pinned to its Swarm node", made);
    return 0;
}

/* DELETE path, retrying while the daemon says the object is still in use (a removed
 * service's tasks take a moment to let go of their network and volume): 409 Conflict
 * (a volume in use), 403 Forbidden (a network with active endpoints, libnetwork's
 * ActiveEndpointsError). */
static int swarm_delete(struct docker *d, const char *path, int64_t deadline) {
    for (;;) {
        d->status = 0;
        int st = docker_call(d, "DELETE", path, NULL, NULL, 404);
        if (st >= 0) return 0;
        int in_use = d->status == 409 || (d->status == 403 && !strncmp(path, "/networks/", 10));
        if (rc_now_ms() >= deadline || rc_interrupted() || !in_use) return -1;
        rc_sleep_ms(SWARM_POLL_MS);
    }
}

/* A failed run removes what it created (services, configs, secret, network) and keeps
 * the first error. */
static void swarm_rollback(struct docker *d, struct swarm_plan *p) {
    struct rc *rc = d->rc;
    if (p->o->dry_run) return;
    struct rc_err_saved saved = rc_err_save(rc);
    int64_t deadline = rc_now_ms() + 30000, made = p->secret_created + p->net_created;
    for (int k = 0; k < p->n; k++) made += p->nodes[k].created + p->conf_created[k];
    if (made) rc_progress(rc, "Removing what this run created");
    for (int k = 0; k < p->n; k++) {
        sds path = p->nodes[k].created ? rc_sprintf("/services/%s", p->nodes[k].name) : NULL;
        if (path && swarm_delete(d, path, deadline) < 0) rc_warn(rc, "%s", rc->err);
        sdsfree(path);
    }
    for (int k = 0; k < p->n; k++) {
        sds path = p->conf_created[k] && p->conf_ids[k] ? rc_sprintf("/configs/%s", p->conf_ids[k]) : NULL;
        if (path && swarm_delete(d, path, deadline) < 0) rc_warn(rc, "%s", rc->err);
        sdsfree(path);
    }
    sds path = p->secret_created ? rc_sprintf("/secrets/%s", p->secret_id) : NULL;
    if (path && swarm_delete(d, path, deadline) < 0) rc_warn(rc, "%s", rc->err);
    sdsfree(path);
    path = p->net_created ? rc_sprintf("/networks/%s", p->net_id) : NULL;
    if (path && swarm_delete(d, path, deadline) < 0) rc_warn(rc, "%s", rc->err);
    sdsfree(path);
    rc_err_restore(rc, &saved);
}

/* ---- the manifest: a Swarm config NAME-manifest-G ---------------------------------- */

/* The Swarm has no shared filesystem, so what `up --swarm` decided lives in a Swarm
 * config labelled io.rcluster.cluster=NAME and io.rcluster.manifest=G: up's manifest
 * (never the password, only whether there is one) plus "swarm":true and the Swarm node
 * each service is pinned to. Configs are immutable: a change is a new config of the
 * next generation G+1, then the older ones go; the highest generation is the one read. */
struct swarm_manifest { json_value_s *doc; sds text; int gen; char name[128]; };

static void swarm_manifest_free(struct swarm_manifest *m) {
    json_free(m->doc);
    sdsfree(m->text);
    memset(m, 0, sizeof *m);
}

/* A config's manifest generation, 0 when it is no manifest. */
static int swarm_manifest_gen(const json_value_s *config) {
    const char *g = docker_label(json_get(config, "Spec"), LABEL_MANIFEST);
    long v;
    return g && rc_parse_int(g, 1, 1000000000, &v) == 0 ? (int)v : 0;
}

/* The newest manifest of cluster `name`: 1 read into *m, 0 none, -1 error. */
static int swarm_manifest_read(struct docker *d, const char *name, struct swarm_manifest *m) {
    memset(m, 0, sizeof *m);
    json_value_s *all = NULL;
    if (docker_list_by_label(d, "configs", LABEL_CLUSTER, name, &all) < 0) return -1;
    const json_value_s *best = NULL;
    for (size_t k = 0; k < json_length(all); k++) {
        int g = swarm_manifest_gen(json_at(all, k));
        if (g > m->gen) { m->gen = g; best = json_at(all, k); }
    }
    int ret = 0;
    if (best) {
        const char *data = json_string(json_get(json_get(best, "Spec"), "Data"));
        const char *cname = json_string(json_get(json_get(best, "Spec"), "Name"));
        json_error_s jerr;
        snprintf(m->name, sizeof m->name, "%s", cname ? cname : "?");
        m->text = data ? swarm_unbase64(data) : NULL;
        m->doc = m->text ? json_parse(m->text, sdslen(m->text), &jerr) : NULL;
        if (!m->doc || !json_string(json_get(m->doc, "rcluster")) || !json_is_true(json_get(m->doc, "swarm")))
            ret = rc_fail(d->rc, "Swarm config %s is not an rcluster Swarm manifest; nothing was changed", m->name);
        else ret = 1;
    }
    json_free(all);
    if (ret < 0) swarm_manifest_free(m);
    return ret;
}

/* Take the recorded options the user did not give; refuse given ones that differ. */
static int swarm_manifest_merge(struct rc *rc, struct up_opts *o, const struct swarm_manifest *m) {
    sds where = rc_sprintf("Swarm config %s", m->name);
    int ret = where ? up_manifest_merge(rc, o, m->doc, where, " --swarm") : rc_fail_oom(rc);
    sdsfree(where);
    return ret;
}

/* The manifest text for plan p: up's, plus "swarm" and "pinned" {service: Swarm node id}. */
static sds swarm_manifest_render(struct rc *rc, const struct swarm_plan *p) {
    struct up_derived dv = { p->server, NULL, NULL, p->n, -1 };
    sds s = up_manifest_render(rc, p->o, &dv);
    if (s) sdsrange(s, 0, -3);   /* up's closing "}\n" */
    s = rc_cat(s, ",\"swarm\":true,\"pinned\":{");
    for (int k = 0, first = 1; k < p->n; k++) {
        if (p->nodes[k].host < 0) continue;
        s = rc_json_str(first ? s : rc_cat(s, ","), p->nodes[k].name);
        s = rc_json_str(rc_cat(s, ":"), p->hosts[p->nodes[k].host].id);
        first = 0;
    }
    return rc_cat(s, "}}\n");
}

/* Record plan p when it differs from *m: create generation G+1, then remove the older
 * manifests (a failure in between leaves two; the newer one counts). */
static int swarm_manifest_write(struct docker *d, const struct swarm_plan *p, const struct swarm_manifest *m, int64_t deadline) {
    struct rc *rc = d->rc;
    sds text = swarm_manifest_render(rc, p);
    if (!text) return rc_fail_oom(rc);
    if (m->text && !strcmp(m->text, text)) { sdsfree(text); return 0; }
    int gen = m->gen + 1;
    sds cname = rc_sprintf("%s-manifest-%d", p->o->name, gen), id = NULL;
    int ret = cname ? swarm_create(d, "/configs/create", swarm_blob_body(p->o->name, cname, 0, gen, text), &id) : rc_fail_oom(rc);
    if (ret == 0) rc_progress(rc, "Recorded the cluster's shape in Swarm config %s", cname);
    sdsfree(text);
    sdsfree(cname);
    sdsfree(id);
    json_value_s *all = NULL;
    if (ret == 0 && !p->o->dry_run) ret = docker_list_by_label(d, "configs", LABEL_CLUSTER, p->o->name, &all);
    for (size_t k = 0; ret == 0 && k < json_length(all); k++) {
        int g = swarm_manifest_gen(json_at(all, k));
        const char *cid = json_string(json_get(json_at(all, k), "ID"));
        sds path = g > 0 && g < gen && cid ? rc_sprintf("/configs/%s", cid) : NULL;
        if (path) ret = swarm_delete(d, path, deadline);
        sdsfree(path);
    }
    json_free(all);
    return ret;
}

/* ---- wait: tasks, PING, cluster --------------------------------------------------- */

/* What node n's tasks say: *running when one runs (and its overlay address), else the
 * newest error and how many tasks failed. */
struct swarm_task_view { int running, failed; sds err; char state[32]; };

static int swarm_read_tasks(struct docker *d, struct swarm_plan *p, struct swarm_node *n, struct swarm_task_view *tv) {
    memset(tv, 0, sizeof *tv);
    sds filter = rc_cat(rc_json_str(sdsnew("{\"service\":["), n->name), "]}");
    sds path = filter ? docker_urlencode(sdsnew("/tasks?filters="), filter) : NULL;
    json_value_s *v = NULL;
    int st = path ? docker_call_json(d, "GET", path, NULL, &v, 0) : rc_fail_oom(d->rc);
    sdsfree(filter);
    sdsfree(path);
    if (st < 0) return -1;
    const char *newest = "";
    for (size_t k = 0; k < json_length(v); k++) {
        const json_value_s *t = json_at(v, k), *s = json_get(t, "Status");
        const char *state = json_string(json_get(s, "State")), *desired = json_string(json_get(t, "DesiredState"));
        const char *err = json_string(json_get(s, "Err")), *ts = json_string(json_get(s, "Timestamp"));
        if (state && desired && !strcmp(state, "running") && !strcmp(desired, "running")) {
            tv->running = 1;
            const json_value_s *atts = json_get(t, "NetworksAttachments");
            for (size_t j = 0; j < json_length(atts); j++) {
                const json_value_s *a = json_at(atts, j);
                const char *nid = json_string(json_get(json_get(a, "Network"), "ID"));
                const char *ip = json_string(json_at(json_get(a, "Addresses"), 0));
                if (nid && ip && p->net_id && !strcmp(nid, p->net_id))
                    snprintf(n->overlay_ip, sizeof n->overlay_ip, "%.*s", (int)strcspn(ip, "/"), ip);
            }
        }
        if (state && (!strcmp(state, "failed") || !strcmp(state, "rejected"))) tv->failed++;
        if (ts && strcmp(ts, newest) > 0) {
            newest = ts;
            snprintf(tv->state, sizeof tv->state, "%s", state ? state : "?");
            if (err && *err) { sdsfree(tv->err); tv->err = sdsnew(err); }
        }
    }
    json_free(v);
    return 0;
}

/* Wait until every service runs its task. A task refused for a missing image fails
 * the wait at once, naming the Swarm nodes that lack it; so does a node whose tasks
 * fail again and again. */
static int swarm_wait_tasks(struct docker *d, struct swarm_plan *p, int64_t deadline) {
    struct rc *rc = d->rc;
    int n = p->n;
    rc_progress(rc, "Waiting for %d tasks to run", n);
    int *done = calloc((size_t)n, sizeof *done);
    if (!done) return rc_fail_oom(rc);
    int ret = 0, left = n;
    int64_t first_missing = 0;
    while (ret == 0 && left > 0) {
        sds missing = sdsempty(), hosts = sdsempty();
        int undecided = 0;
        for (int k = 0; ret == 0 && k < n; k++) {
            struct swarm_task_view tv;
            if (done[k]) continue;
            if (swarm_read_tasks(d, p, &p->nodes[k], &tv) < 0) { ret = -1; break; }
            if (tv.running) { done[k] = 1; left--; }
            else if (tv.err && strstr(tv.err, "No such image")) {
                sds h = swarm_host_desc(p, p->nodes[k].host);
                if (h && !strstr(hosts, h)) hosts = rc_catprintf(hosts, "%s%s", sdslen(hosts) ? ", " : "", h);
                missing = rc_catprintf(missing, "%s%s", sdslen(missing) ? ", " : "", p->nodes[k].name);
                sdsfree(h);
            } else if (tv.failed >= 3) {
                sds h = swarm_host_desc(p, p->nodes[k].host);
                ret = rc_fail(rc, "service %s on Swarm node %s: %d tasks failed, the last: %s", p->nodes[k].name, h ? h : "?",
                              tv.failed, tv.err ? tv.err : tv.state);
                sdsfree(h);
            } else {
                undecided++;
            }
            sdsfree(tv.err);
        }
        /* Nodes refuse a task at their own pace: name every node that lacks the image,
         * waiting a little for the others to answer. */
        if (ret == 0 && missing && sdslen(missing) && !first_missing) first_missing = rc_now_ms();
        if (ret == 0 && missing && sdslen(missing) && undecided && rc_now_ms() - first_missing < 10000) {
            sdsfree(missing);
            sdsfree(hosts);
            rc_sleep_ms(SWARM_POLL_MS);
            continue;
        }
        if (ret == 0 && missing && sdslen(missing))
            ret = rc_fail(rc, "image %s is missing on Swarm node(s) %s (for %s); without a registry each node needs its own copy: "
                              "on each of them run `DOCKER_HOST=<that node's daemon> rcluster image build --tag %s` (or `rcluster "
                              "image load FILE`), then `rcluster up --swarm` again",
                          p->o->image, hosts ? hosts : "?", missing, p->o->image);
        sdsfree(missing);
        sdsfree(hosts);
        if (ret == 0 && left > 0) {
            if (rc_interrupted()) ret = rc_fail(rc, "interrupted while waiting for the tasks");
            else if (rc_now_ms() >= deadline) ret = rc_fail(rc, "%d of %d tasks did not start within %g s", left, n, rc->timeout);
            else rc_sleep_ms(SWARM_POLL_MS);
        }
    }
    free(done);
    for (int k = 0; ret == 0 && k < n; k++) {
        struct swarm_node *x = &p->nodes[k];
        if (engine_wait_ping(rc, p->hosts[x->host].addr, x->port, deadline) < 0) ret = rc_wrap(rc, "service %s", x->name);
    }
    return ret;
}

/* Does node k know other nodes (cluster state in its volume)? 1 yes, 0 no, -1 error. */
static int swarm_node_has_state(struct rc *rc, const struct swarm_plan *p, int k) {
    const struct swarm_node *x = &p->nodes[k];
    struct rconn c;
    sds text = rconn_open(rc, &c, p->hosts[x->host].addr, x->port) == 0
             ? rconn_call_str(rc, &c, "CLUSTER NODES", "CLUSTER", "NODES", RESP_END) : NULL;
    rconn_free(&c);
    if (!text) return rc_wrap(rc, "service %s", x->name);
    int lines = 0;
    for (const char *t = text; *t; t++) lines += *t == '\n';
    sdsfree(text);
    return lines > 1;
}

/* How many nodes already know other nodes (kept volumes: they rejoin by themselves);
 * has[k] says which. */
static int swarm_count_with_state(struct rc *rc, struct swarm_plan *p, int *has) {
    int with = 0;
    for (int k = 0; k < p->n; k++) {
        if ((has[k] = swarm_node_has_state(rc, p, k)) < 0) return -1;
        with += has[k];
    }
    return with;
}

/* Node k was placed on its Swarm node anew (re-homed), or is to join in a scale, and
 * came up with cluster state: the volume NAME-I-data there holds an older life of node I,
 * one that left the cluster (forgotten or reset) and whose keys live on elsewhere. It is
 * made empty and alone to join afresh: CLUSTER RESET HARD, after FLUSHALL when it is a
 * master that still holds keys (which RESET refuses). */
static int swarm_reset_stale(struct rc *rc, const struct swarm_plan *p, int k) {
    const struct swarm_node *x = &p->nodes[k];
    const char *addr = p->hosts[x->host].addr;
    struct rconn c;
    struct resp *r = NULL, *flush = NULL;
    rc_progress(rc, "%s: its volume on %s holds an older node %s that left; emptying it (FLUSHALL, CLUSTER RESET HARD) to join afresh",
                x->name, addr, x->name);
    if (rconn_open(rc, &c, addr, x->port) == 0 && !(r = rconn_call(rc, &c, "CLUSTER RESET HARD", "CLUSTER", "RESET", "HARD", RESP_END)) &&
        (flush = rconn_call(rc, &c, "FLUSHALL", "FLUSHALL", RESP_END)))
        r = rconn_call(rc, &c, "CLUSTER RESET HARD", "CLUSTER", "RESET", "HARD", RESP_END);
    rconn_free(&c);
    resp_free(flush);
    if (!r) return rc_wrap(rc, "%s", x->name);
    resp_free(r);
    return 0;
}


/* --announce container: a node's overlay address is known once its task runs; tell
 * each node before forming, so that MEET and every redirection use it. Not kept in
 * its config: after a restart a node lets its peers learn its new address. */
static int swarm_announce_overlay(struct rc *rc, struct swarm_plan *p) {
    for (int k = 0; p->container && k < p->n; k++) {
        struct swarm_node *x = &p->nodes[k];
        if (!x->overlay_ip[0]) return rc_fail(rc, "GET /tasks: service %s's task has no address on network %s", x->name, p->o->name);
        struct rconn c;
        struct resp *r = rconn_open(rc, &c, p->hosts[x->host].addr, x->port) == 0
            ? rconn_call(rc, &c, "CONFIG SET", "CONFIG", "SET", "cluster-announce-ip", x->overlay_ip, RESP_END) : NULL;
        rconn_free(&c);
        if (!r) return rc_wrap(rc, "service %s", x->name);
        resp_free(r);
    }
    return 0;
}

/* Form the cluster through the Swarm nodes' addresses and published ports. */
static int swarm_form(struct rc *rc, struct swarm_plan *p) {
    int n = p->n, ret = swarm_announce_overlay(rc, p);
    struct engine_addr *a = calloc((size_t)n, sizeof *a);
    if (!a) return rc_fail_oom(rc);
    for (int k = 0; ret == 0 && k < n; k++) {
        a[k].host = sdsnew(p->hosts[p->nodes[k].host].addr);
        a[k].port = p->nodes[k].port;
        if (!a[k].host) ret = rc_fail_oom(rc);
    }
    if (ret == 0) ret = engine_create(rc, a, n, p->o->replicas, ENGINE_NO_CONFIRM);
    for (int k = 0; k < n; k++) sdsfree(a[k].host);
    free(a);
    return ret;
}

/* A live seed: the first node whose Swarm node is ready. */
static int swarm_seed(const struct swarm_plan *p) {
    for (int k = 0; k < p->n; k++)
        if (p->nodes[k].host >= 0 && p->hosts[p->nodes[k].host].ready) return k;
    return -1;
}

/* --announce container: the announced overlay addresses cannot be reached from outside
 * the overlay, so `check` cannot follow them; ask every node through its published port
 * instead: cluster_state ok, every slot ok, and it knows all N nodes. 0 healthy, 1 not
 * (rc->err says which node lacks what); a report per node unless quiet. */
static int swarm_check_direct(struct rc *rc, struct swarm_plan *p, int quiet) {
    int bad = 0;
    sds first = NULL;
    for (int k = 0; k < p->n; k++) {
        struct swarm_node *x = &p->nodes[k];
        if (!x->exists && !x->created) continue;
        const char *addr = x->host >= 0 ? p->hosts[x->host].addr : "?";
        struct rconn c;
        sds info = x->host >= 0 && rconn_open(rc, &c, addr, x->port) == 0
                 ? rconn_call_str(rc, &c, "CLUSTER INFO", "CLUSTER", "INFO", RESP_END) : NULL;
        if (x->host >= 0) rconn_free(&c);
        char state[32] = "unreachable", slots[16] = "?", known[16] = "?";
        if (info) {
            info_field(info, "cluster_state", state, sizeof state);
            info_field(info, "cluster_slots_ok", slots, sizeof slots);
            info_field(info, "cluster_known_nodes", known, sizeof known);
        }
        long nknown = 0;
        int ok = info && !strcmp(state, "ok") && !strcmp(slots, "16384") && rc_parse_int(known, 0, 100000, &nknown) == 0 &&
                 nknown == p->n;
        if (!quiet) printf("%-16s %s:%-6d cluster_state:%s slots_ok:%s known_nodes:%s%s\n", x->name, addr, x->port, state, slots,
                           known, ok ? "" : "   <- NOT ok");
        if (!ok && !first) first = rc_sprintf("%s (%s:%d): cluster_state:%s, slots ok %s, knows %s of %d nodes%s%s", x->name, addr,
                                              x->port, state, slots, known, p->n, info ? "" : ": ", info ? "" : rc->err ? rc->err : "");
        bad += !ok;
        sdsfree(info);
    }
    if (!quiet) printf("%s\n", bad ? "NOT healthy" : "healthy (each node asked through its published port)");
    if (bad) rc_fail(rc, "%d node(s) not ok, the first: %s", bad, first ? first : "?");
    sdsfree(first);
    return bad ? 1 : 0;
}

/* `check` through the announced addresses, or each node directly with --announce container. */
static int swarm_check(struct rc *rc, struct swarm_plan *p, int seed, int quiet) {
    if (p->container) return swarm_check_direct(rc, p, quiet);
    return check_cluster(rc, p->hosts[p->nodes[seed].host].addr, p->nodes[seed].port, quiet ? CHECK_SILENT : CHECK_REPORT);
}

static void swarm_print_connect(struct rc *rc, struct swarm_plan *p) {
    if (rc->json || p->o->dry_run) return;
    int s = swarm_seed(p);
    if (s < 0) return;
    printf("\nConnect: redis-cli -c -h %s -p %d%s\n", p->hosts[p->nodes[s].host].addr, p->nodes[s].port,
           rc->password ? "   (password: REDISCLI_AUTH=... or -a)" : "");
    printf("%s\nRemove: rcluster down --swarm --name %s [--purge]\n",
           p->container ? "Nodes announce overlay addresses: redirections work inside the overlay network (attachable)."
                        : "Nodes announce their Swarm node's address and published port.", p->o->name);
}

/* ---- re-homing a node whose Swarm node is down ------------------------------------ */

/* The cluster node announced at ip:port in session s, -1 if none. */
static int swarm_sess_find(const struct session *s, const char *ip, int port) {
    for (int i = 0; i < s->n; i++) if (!strcmp(s->nodes[i].ip, ip) && s->nodes[i].port == port) return i;
    return -1;
}

/* Swarm node h's index among the hosts whose address is ip, -1 if none. */
static int swarm_host_of_addr(const struct swarm_plan *p, const char *ip) {
    for (int h = 0; h < p->nhosts; h++) if (!strcmp(p->hosts[h].addr, ip)) return h;
    return -1;
}

/* How many of the plan's nodes are pinned to Swarm node h. */
static int swarm_host_load(const struct swarm_plan *p, int h) {
    int c = 0;
    for (int k = 0; k < p->n; k++) c += p->nodes[k].host == h;
    return c;
}

/* A live Swarm node for a replica of the master on Swarm node `avoid`: the least
 * loaded ready and active one other than `avoid`, else `avoid` itself; -1 if none. */
static int swarm_pick_host(const struct swarm_plan *p, int avoid) {
    int best = -1;
    for (int pass = 0; pass < 2 && best < 0; pass++)
        for (int h = 0; h < p->nhosts; h++) {
            if (!p->hosts[h].ready || !p->hosts[h].active || (pass == 0 && h == avoid)) continue;
            if (best < 0 || swarm_host_load(p, h) < swarm_host_load(p, best)) best = h;
        }
    return best;
}

/* The master with slots that has the fewest live replicas, counting `extra` (replicas
 * already planned for each session index); -1 if none. */
static int swarm_pick_master(const struct session *s, const int *extra) {
    int best = -1, bestc = 0;
    for (int i = 0; i < s->n; i++) {
        const struct snode *m = &s->nodes[i];
        if (!m->up || !snode_is_master(m) || snode_slot_count(m) == 0) continue;
        int c = extra[i];
        for (int j = 0; j < s->n; j++)
            c += s->nodes[j].up && !snode_is_master(&s->nodes[j]) && !strcmp(snode_master_id(&s->nodes[j]), m->id);
        if (best < 0 || c < bestc) { best = i; bestc = c; }
    }
    return best;
}

/* One lost node x (session index i, -1 if no node lists it): it must be failed over
 * (no slot, not answering); it gets a master and a live Swarm node off that master's. */
static int swarm_rehome_one(struct swarm_plan *p, struct session *s, struct swarm_node *x, int i, int *extra) {
    struct rc *rc = s->rc;
    if (i >= 0 && s->nodes[i].up)
        return rc_fail(rc, "%s: its Swarm node is down but its Redis node %s:%d answers; not re-homing it; nothing was changed",
                       x->name, s->nodes[i].ip, s->nodes[i].port);
    int owned = i >= 0 && s->nodes[i].line ? nodeinfo_slot_count(s->nodes[i].line) : 0;
    if (owned)
        return rc_fail(rc, "%s (on a Swarm node that is down) still owns %d slot(s): the cluster has not failed it over (yet; "
                           "see `rcluster status --swarm --name %s`); run again once a replica took over; nothing was changed",
                       x->name, owned, p->o->name);
    if (i >= 0) snprintf(x->old_id, sizeof x->old_id, "%s", s->nodes[i].id);
    int m = swarm_pick_master(s, extra);
    if (m < 0) return rc_fail(rc, "no live master with slots to replicate for %s; nothing was changed", x->name);
    extra[m]++;
    snprintf(x->master_id, sizeof x->master_id, "%s", s->nodes[m].id);
    int mh = swarm_host_of_addr(p, s->nodes[m].ip), h = swarm_pick_host(p, mh);
    if (h < 0) return rc_fail(rc, "no Swarm node is ready and active to re-home %s on; nothing was changed", x->name);
    if (h == mh) rc_warn(rc, "%s goes to the Swarm node of its master %s:%d: no other is ready; losing that node loses both", x->name,
                         s->nodes[m].ip, s->nodes[m].port);
    sds from = swarm_host_desc(p, x->host), to = swarm_host_desc(p, h);
    rc_progress(rc, "  %s: Swarm node %s is down -> re-homed on %s as a replica of %s:%d%s", x->name, from ? from : "?", to ? to : "?",
                s->nodes[m].ip, s->nodes[m].port, x->old_id[0] ? ", its old id forgotten" : "");
    sdsfree(from);
    sdsfree(to);
    x->host = h;
    return 0;
}

/* A session on the cluster through node k's Swarm node address and published port. */
static int swarm_sess_open(struct rc *rc, const struct swarm_plan *p, int k, struct session *s) {
    struct addr a;
    memset(&a, 0, sizeof a);
    snprintf(a.ip, sizeof a.ip, "%s", p->hosts[p->nodes[k].host].addr);
    a.port = p->nodes[k].port;
    return sess_open(rc, s, &a);
}

/* Plan the re-homing of every node whose service is pinned to a Swarm node that is down.
 * Reads only (a session from a live node); 0 with each lost node's new host, master and
 * old id set, or -1 with why and nothing changed. */
static int swarm_rehome_plan(struct rc *rc, struct swarm_plan *p) {
    int nlost = 0;
    for (int k = 0; k < p->n; k++) {
        struct swarm_node *x = &p->nodes[k];
        x->lost = swarm_node_lost(p, x);
        nlost += x->lost;
        if (x->lost && x->host < 0)
            return rc_fail(rc, "service %s is pinned to a Swarm node that left the Swarm: its Redis node's address is unknown; "
                               "remove it with `rcluster del-node`, then `docker service rm %s`; nothing was changed", x->name, x->name);
    }
    if (!nlost) return 0;
    if (p->container)
        return rc_fail(rc, "%d node(s) are on a Swarm node that is down; rcluster re-homes nodes only when they announce their Swarm "
                           "node's address (not with --announce container): bring that Swarm node back; nothing was changed", nlost);
    int seed = swarm_seed(p);
    if (seed < 0) return rc_fail(rc, "no node of cluster '%s' is on a Swarm node that is up", p->o->name);
    struct session s;
    rc_progress(rc, "Re-homing %d node(s) whose Swarm node is down", nlost);
    if (swarm_sess_open(rc, p, seed, &s) < 0) { sess_free(&s); return rc_wrap(rc, "cluster '%s' (through %s)", p->o->name, p->nodes[seed].name); }
    int *extra = calloc((size_t)s.n + 1, sizeof *extra), ret = extra ? 0 : rc_fail_oom(rc);
    if (ret == 0 && strcmp(s.nodes[s.seed].state, "ok") != 0)
        ret = rc_fail(rc, "cluster '%s' reports cluster_state:%s: not every slot is served; re-homing waits for the failover; "
                          "nothing was changed", p->o->name, s.nodes[s.seed].state);
    for (int k = 0; ret == 0 && k < p->n; k++) {
        struct swarm_node *x = &p->nodes[k];
        if (x->lost) ret = swarm_rehome_one(p, &s, x, swarm_sess_find(&s, p->hosts[x->host].addr, x->port), extra);
    }
    free(extra);
    sess_free(&s);
    return ret;
}

/* Nodes without cluster state (has[k] == 0: re-homed or made again) join the cluster of
 * the others: the lost nodes' old ids are forgotten on every live node, then each new
 * node meets the cluster and replicates its planned master, or the one with the fewest
 * replicas (add-node's path), and is waited for until it is linked. */
static int swarm_join_fresh(struct rc *rc, struct swarm_plan *p, const int *has) {
    int seed = -1;
    for (int k = 0; k < p->n && seed < 0; k++) if (has[k]) seed = k;
    if (seed < 0) return rc_fail(rc, "no node of cluster '%s' has cluster state to join", p->o->name);
    struct session s;
    struct addr a;
    int ret = swarm_sess_open(rc, p, seed, &s);
    for (int k = 0; ret == 0 && k < p->n; k++) {
        int v = p->nodes[k].old_id[0] ? sess_index_of(&s, p->nodes[k].old_id) : -1;
        if (v >= 0) rc_progress(rc, "Forgetting %s's old node %.40s on every live node", p->nodes[k].name, p->nodes[k].old_id);
        if (v >= 0) ret = delnode_forget(&s, v, s.deadline);
    }
    for (int k = 0; ret == 0 && k < p->n; k++) {
        struct swarm_node *x = &p->nodes[k];
        if (has[k]) continue;
        memset(&a, 0, sizeof a);
        snprintf(a.ip, sizeof a.ip, "%s", p->hosts[x->host].addr);
        a.port = x->port;
        if (addnode_probe(&s, &a) < 0) { ret = rc_wrap(rc, "%s", x->name); break; }
        const struct snode *sd = &s.nodes[s.seed];
        int nx = s.n - 1, m = x->master_id[0] ? sess_index_of(&s, x->master_id) : -1;
        if (m < 0) m = sess_pick_master(&s, nx, a.ip, 0);
        if (m < 0) { ret = rc_fail(rc, "no master for %s to replicate", x->name); break; }
        rc_progress(rc, "%s joins as a replica of %s:%d", x->name, s.nodes[m].ip, s.nodes[m].port);
        if (act_meet(&s, &s.nodes[nx], sd->ip, sd->port, sd->bus) < 0 || sess_drain_all(&s, "CLUSTER MEET") < 0 ||
            addnode_wait(&s, nx, m, s.deadline) < 0)
            ret = rc_wrap(rc, "%s joining as a replica", x->name);
    }
    sess_free(&s);
    return ret;
}

/* DELETE node k's service, then its config (ours, labelled); it then no longer exists. */
static int swarm_remove_service(struct docker *d, struct swarm_plan *p, int k, int64_t deadline) {
    struct swarm_node *x = &p->nodes[k];
    sds path = rc_sprintf("/services/%s", x->name);
    int r = path ? swarm_delete(d, path, deadline) : rc_fail_oom(d->rc);
    sdsfree(path);
    path = r == 0 && p->conf_ids[k] ? rc_sprintf("/configs/%s", p->conf_ids[k]) : NULL;
    if (path) r = swarm_delete(d, path, deadline);
    sdsfree(path);
    if (r < 0) return -1;
    sdsfree(p->conf_ids[k]);
    p->conf_ids[k] = NULL;
    x->exists = 0;
    return 0;
}

/* Remove each lost node's service and config: swarm_apply then makes both again on the
 * node's new Swarm node, with a new volume there. */
static int swarm_rehome_remove(struct docker *d, struct swarm_plan *p, int64_t deadline) {
    for (int k = 0; k < p->n; k++)
        if (p->nodes[k].lost && swarm_remove_service(d, p, k, deadline) < 0) return rc_wrap(d->rc, "re-homing %s", p->nodes[k].name);
    return 0;
}

/* ---- up --swarm: section 9a's up steps over services -------------------------------- */

/* up --swarm's own: the plan (its own, or scale's), the manifest config, which nodes
 * know their cluster. */
struct swarm_up { struct swarm_plan own, *p; struct swarm_manifest m; int *has; };

/* --restore is refused; nodes announce their Swarm node's address unless told. */
static int swarm_up_plan(struct up_run *r) {
    struct up_opts *o = r->o;
    if (o->restore)
        return rc_fail_as(r->rc, RC_ERR_USAGE, "up --swarm --restore: not supported; once the services are up, run `rcluster restore ADDR %s`", o->restore);
    if (!(o->given & UPG_ANNOUNCE)) o->announce = SWARM_ANNOUNCE_HOST;   /* --swarm's own default */
    if (!(r->sw = calloc(1, sizeof *r->sw))) return rc_fail_oom(r->rc);
    r->sw->p = &r->sw->own;
    return swarm_plan_make(r->rc, o, r->sw->p);
}

static int swarm_up_role(struct up_run *r) { return swarm_role(r->d, r->sw->p->self_id) == 1 ? 0 : -1; }

/* The manifest config merged into the options, and the plan made again with its shape. */
static int swarm_up_recorded(struct up_run *r) {
    struct swarm_up *w = r->sw;
    int got = swarm_manifest_read(r->d, r->o->name, &w->m);
    if (got <= 0) return got;
    r->recorded = 1;
    if (swarm_manifest_merge(r->rc, r->o, &w->m) < 0) return -1;
    swarm_plan_free(w->p);
    return swarm_plan_make(r->rc, r->o, w->p);
}

/* The counts of r's plan: services that exist, are missing, are lost. */
static void swarm_up_count(struct up_run *r) {
    const struct swarm_plan *p = r->sw->p;
    for (int k = 0; k < p->n; k++) {
        r->existing += p->nodes[k].exists;
        r->lost += swarm_node_lost(p, &p->nodes[k]);
    }
    r->missing = p->n - r->existing;
    r->any = r->existing > 0;
    r->settled = !r->missing && !r->lost;
}

/* The Swarm's nodes and the cluster's objects; a service pinned to a Swarm node that is
 * down (or gone) is lost: this run re-homes it. */
static int swarm_up_inspect(struct up_run *r) {
    struct swarm_plan *p = r->sw->p;
    if (swarm_list_hosts(r->d, p) < 0 || swarm_inspect_existing(r->d, p) < 0) return -1;
    swarm_up_count(r);
    snprintf(r->where, sizeof r->where, " on %d Swarm node(s)", p->nhosts);
    return 0;
}

/* Reads only: a Swarm node for each new node (asks when redundancy is lost), the
 * re-homing of the lost ones, what the image runs. */
static int swarm_up_preflight(struct up_run *r) {
    struct swarm_plan *p = r->sw->p;
    if (swarm_place(r->rc, p) < 0 || swarm_rehome_plan(r->rc, p) < 0) return -1;
    return swarm_detect_server(r->d, p);
}

/* Where each new or re-homed node goes; the lost services removed; what is missing made
 * (services start their tasks themselves). */
static int swarm_up_apply(struct up_run *r) {
    struct swarm_plan *p = r->sw->p;
    for (int k = 0; k < p->n; k++) {
        sds h = p->nodes[k].exists && !p->nodes[k].lost ? NULL : swarm_host_desc(p, p->nodes[k].host);
        if (h) rc_progress(r->rc, "  %s -> %s, port %d", p->nodes[k].name, h, p->nodes[k].port);
        sdsfree(h);
    }
    if (swarm_rehome_remove(r->d, p, r->deadline) < 0) return -1;
    return swarm_apply(r->d, p);
}

/* Every task runs and answers; then which nodes know their cluster. A re-homed node
 * whose volume holds an older life of it is emptied to join afresh. */
static int swarm_up_wait_nodes(struct up_run *r) {
    struct swarm_up *w = r->sw;
    struct swarm_plan *p = w->p;
    if (swarm_wait_tasks(r->d, p, r->deadline) < 0) return -1;
    if (!(w->has = calloc((size_t)p->n, sizeof *w->has))) return rc_fail_oom(r->rc);
    int with = swarm_count_with_state(r->rc, p, w->has);
    for (int k = 0; with > 0 && k < p->n; k++) {
        if (!p->nodes[k].lost || !w->has[k]) continue;
        if (swarm_reset_stale(r->rc, p, k) < 0) return -1;
        w->has[k] = 0;
        with--;
    }
    if (with < 0) return -1;
    r->with_state = with;
    if (!r->settled && !(r->rejoin = sdsnew("Nodes kept their cluster state (volumes)"))) return rc_fail_oom(r->rc);
    return 0;
}

static int swarm_up_form(struct up_run *r) { return swarm_form(r->rc, r->sw->p); }

static int swarm_up_join(struct up_run *r) { return swarm_join_fresh(r->rc, r->sw->p, r->sw->has); }

/* `check` through a node on a Swarm node that is up (each node itself with --announce container). */
static int swarm_up_healthy(struct up_run *r, enum check_report how) {
    struct swarm_plan *p = r->sw->p;
    int s = swarm_seed(p);
    if (s < 0) return rc_fail(r->rc, "no node of cluster '%s' is on a Swarm node that is up", p->o->name);
    return swarm_check(r->rc, p, s, how == CHECK_SILENT);
}

static int swarm_up_record(struct up_run *r) {
    return r->o->dry_run ? 0 : swarm_manifest_write(r->d, r->sw->p, &r->sw->m, r->deadline);
}

static void swarm_up_report(struct up_run *r) { swarm_print_connect(r->rc, r->sw->p); }

static void swarm_up_rollback(struct up_run *r) { swarm_rollback(r->d, r->sw->p); }

static void swarm_up_free(struct up_run *r) {
    if (!r->sw) return;
    swarm_manifest_free(&r->sw->m);
    swarm_plan_free(&r->sw->own);
    free(r->sw->has);
    free(r->sw);
    r->sw = NULL;
}

/* Plan p applied and waited for as `up --swarm` does (scale re-homes lost nodes so):
 * lost services removed and made again on their new Swarm nodes, the new nodes joined. */
static int swarm_up_make(struct rc *rc, struct docker *d, struct up_opts *o, struct swarm_plan *p, int64_t deadline) {
    struct swarm_up w;
    struct up_run u;
    memset(&w, 0, sizeof w);
    memset(&u, 0, sizeof u);
    w.p = p;
    u.rc = rc;
    u.pl = placement_of(1);
    u.o = o;
    u.d = d;
    u.deadline = deadline;
    u.sw = &w;
    swarm_up_count(&u);
    int ret = up_make(&u);
    free(w.has);
    sdsfree(u.rejoin);
    return ret;
}

/* ---- scale --swarm ------------------------------------------------------------------ */

/* scale --swarm reuses scale's plan and steps (roles, slot moves, replicas, del-node)
 * with services for containers: nodes join by MEET at their Swarm node's address and
 * published port, and leave with their service and config. */
struct swarm_scale { struct swarm_plan p; int have_plan; struct swarm_manifest m; };

static void swarm_scale_free(struct swarm_scale *w) {
    if (!w) return;
    if (w->have_plan) swarm_plan_free(&w->p);
    swarm_manifest_free(&w->m);
    free(w);
}

/* The highest node number among the cluster's services (a cut-short run may leave some
 * beyond the manifest). */
static int swarm_highest_service(struct docker *d, const char *name, int *hi) {
    json_value_s *all = NULL;
    *hi = 0;
    if (docker_list_by_label(d, "services", LABEL_CLUSTER, name, &all) < 0) return -1;
    for (size_t k = 0; k < json_length(all); k++) {
        const char *nl = docker_label(json_get(json_at(all, k), "Spec"), LABEL_NODE);
        long i;
        if (nl && rc_parse_int(nl, 1, UP_MAX_NODES, &i) == 0 && i > *hi) *hi = (int)i;
    }
    json_free(all);
    return 0;
}

/* A fresh plan for nodes 1..o->nodes: the Swarm nodes, what exists, the server. */
static int swarm_scale_plan(struct scale_run *r, struct swarm_scale *w) {
    if (w->have_plan) swarm_plan_free(&w->p);
    int ret = swarm_plan_make(r->rc, &r->plan_up, &w->p);
    w->have_plan = 1;
    if (ret == 0) ret = swarm_role(&r->d, w->p.self_id) == 1 ? 0 : -1;
    if (ret == 0) ret = swarm_list_hosts(&r->d, &w->p);
    if (ret == 0) ret = swarm_inspect_existing(&r->d, &w->p);
    if (ret == 0) ret = swarm_detect_server(&r->d, &w->p);
    return ret;
}

/* Nodes on a Swarm node that is down are re-homed first, as `up --swarm` does: the
 * scale needs every node alive. A dry run shows that plan and stops. */
static int swarm_scale_rehome(struct scale_run *r, struct swarm_scale *w, int64_t deadline) {
    struct swarm_plan *p = &w->p;
    int lost = 0;
    if (swarm_place(r->rc, p) < 0 || swarm_rehome_plan(r->rc, p) < 0) return -1;
    for (int k = 0; k < p->n; k++) lost += p->nodes[k].lost;
    if (!lost) return 0;
    if (r->so.up.dry_run)
        return rc_fail(r->rc, "dry run: %d node(s) are re-homed first (plan above); nothing changed. Run without --dry-run (or "
                              "`rcluster up --swarm --name %s`) to re-home them; then --dry-run shows the scale", lost, p->o->name);
    r->changed = 1;
    return swarm_up_make(r->rc, &r->d, &r->plan_up, p, deadline);
}

/* scale's inspect for --swarm: manifest (required), the size asked for, lost nodes
 * re-homed, then the plan for every node number, new nodes placed on the least loaded
 * live Swarm nodes, and a session through a live node. */
static int swarm_scale_inspect(struct scale_run *r) {
    struct rc *rc = r->rc;
    struct up_opts *o = &r->so.up;
    int hi = 0, got;
    struct swarm_scale *w = r->sw = calloc(1, sizeof *r->sw);
    if (!w) return rc_fail_oom(rc);
    if (docker_open(rc, &r->d) < 0) return -1;
    r->d.record = o->dry_run;
    if ((got = swarm_manifest_read(&r->d, o->name, &w->m)) < 0) return -1;
    if (got == 0)
        return rc_fail(rc, "no Swarm cluster '%s' with a manifest (no config labelled %s=%s and %s); `rcluster up --swarm --name %s` "
                           "records one; nothing changed", o->name, LABEL_CLUSTER, o->name, LABEL_MANIFEST, o->name);
    if (swarm_manifest_merge(rc, o, &w->m) < 0 || scale_target(r) < 0 || swarm_highest_service(&r->d, o->name, &hi) < 0) return -1;
    r->n_have = o->nodes;
    r->plan_up = *o;
    if (hi > r->plan_up.nodes) r->plan_up.nodes = hi;
    if (swarm_scale_plan(r, w) < 0 || swarm_scale_rehome(r, w, r->deadline.at_ms) < 0) return -1;
    if (w->p.container)
        return rc_fail(rc, "cluster '%s' announces overlay addresses (--announce container): scale --swarm handles only clusters "
                           "that announce their Swarm node's address; nothing changed", o->name);
    r->nmax = r->n_have > r->n_want ? r->n_have : r->n_want;
    if (hi > r->nmax) r->nmax = hi;
    r->plan_up.nodes = r->nmax;
    r->plan_up.replicas = r->so.replicas;
    if (swarm_scale_plan(r, w) < 0 || scale_alloc_nodes(r) < 0) return -1;
    struct swarm_plan *p = &w->p;
    int seed = -1, prev = -1;
    for (int k = 0; k < r->nmax; k++) {
        struct swarm_node *x = &p->nodes[k];
        /* Off the previous new node's Swarm node: a new replica usually pairs with the new master before it. */
        if (!x->exists && k < r->n_want) prev = x->host = swarm_pick_host(p, prev);
        sds hd = !x->exists && k < r->n_want && x->host >= 0 ? swarm_host_desc(p, x->host) : NULL;
        if (hd) rc_progress(rc, "New service %s -> %s, port %d", x->name, hd, x->port);
        sdsfree(hd);
        if (x->exists && (x->host < 0 || !p->hosts[x->host].ready))
            return rc_fail(rc, "service %s is on a Swarm node that is not up; nothing changed", x->name);
        if (!x->exists && k < r->n_want && x->host < 0) return rc_fail(rc, "no Swarm node is ready and active for %s; nothing changed", x->name);
        const char *ip = x->host >= 0 ? p->hosts[x->host].addr : "";
        scale_set_node(r, k, x->name, ip, x->port, ip, x->port);
        if (seed < 0 && x->exists) seed = k;
    }
    if (seed < 0) return rc_fail(rc, "no service of cluster '%s' runs; nothing changed", o->name);
    return sess_open(rc, &r->s, &r->reach[seed]);
}

/* The services of new nodes (1..want), their tasks (an older node found in a new
 * service's volume is emptied), then they join as scale's own. */
static int swarm_scale_add(struct scale_run *r) {
    struct swarm_plan *p = &r->sw->p;
    int64_t deadline = r->deadline.at_ms;
    int todo = 0, create = 0, all = p->n, met = 0;
    for (int k = 0; k < r->n_want; k++) if (!r->roles[k].member) { todo++; create += !p->nodes[k].exists; }
    if (!todo) return 0;
    rc_progress(r->rc, "Adding %d node(s) (%d service(s) to create)", todo, create);
    p->n = r->n_want;          /* apply and wait work on nodes 1..want */
    int ret = swarm_apply(&r->d, p);
    if (ret == 0) ret = swarm_wait_tasks(&r->d, p, deadline);
    p->n = all;
    for (int k = 0, st; ret == 0 && k < r->n_want; k++)   /* not a member, yet it knows others: an older life */
        if (!r->roles[k].member && (st = swarm_node_has_state(r->rc, p, k)) != 0) ret = st < 0 ? -1 : swarm_reset_stale(r->rc, p, k);
    if (ret == 0) ret = scale_join_new(r, todo, &met);
    if (ret < 0 && !met) swarm_rollback(&r->d, p);
    return ret;
}

/* del-node for the nodes beyond want, then their services and configs. Their volumes
 * stay (each node was CLUSTER RESET: empty and alone); with --purge the ones on the
 * manager's own Swarm node go, the others are named. */
static int swarm_scale_remove(struct scale_run *r, int *removed) {
    struct swarm_plan *p = &r->sw->p;
    struct rc *rc = r->rc;
    int64_t deadline = r->deadline.at_ms;
    sds kept = sdsempty();
    int ret = kept ? scale_leave(r, removed) : rc_fail_oom(rc);
    for (int k = r->n_want; ret == 0 && k < r->nmax; k++) {
        struct swarm_node *x = &p->nodes[k];
        if (r->roles[k].action != SC_GONE || !x->exists) continue;
        r->changed = 1;
        rc_progress(rc, "Removing service %s", x->name);
        if (swarm_remove_service(&r->d, p, k, deadline) < 0) { ret = rc_wrap(rc, "removing %s", x->name); break; }
        int here = x->host >= 0 && !strcmp(p->hosts[x->host].id, p->self_id);
        sds vol = r->so.up.purge && here ? rc_sprintf("/volumes/%s-data", x->name) : NULL;
        if (vol && swarm_delete(&r->d, vol, deadline) < 0) ret = -1;
        else if (vol) rc_progress(rc, "Deleted volume %s-data", x->name);
        else kept = rc_catprintf(kept, "%s  %s-data on %s", sdslen(kept) ? "\n" : "", x->name, x->host >= 0 ? p->hosts[x->host].addr : "?");
        sdsfree(vol);
    }
    if (ret == 0 && kept && sdslen(kept))
        rc_progress(rc, "Kept the volumes of the removed nodes (empty, CLUSTER RESET)%s:\n%s", r->so.up.purge ?
                    "; the manager cannot reach other Swarm nodes' daemons: `docker volume rm` them there" : "", kept);
    sdsfree(kept);
    return ret;
}

/* The new size, in a new manifest generation. */
static int swarm_scale_record(struct scale_run *r) {
    struct swarm_plan *p = &r->sw->p;
    int all = p->n;
    p->n = r->n_want;          /* the manifest records nodes 1..want (and --replicas as the scale resolved it) */
    int ret = swarm_manifest_write(&r->d, p, &r->sw->m, r->deadline.at_ms);
    p->n = all;
    return ret;
}

/* ---- down --swarm --------------------------------------------------------------------- */

/* DELETE every labelled object of one kind ("services", "configs", "secrets", "networks"),
 * except the manifest configs when keep_manifest. */
static int swarm_remove_kind(struct docker *d, const char *kind, const char *name, int keep_manifest, int64_t deadline) {
    json_value_s *all = NULL;
    if (docker_list_by_label(d, kind, LABEL_CLUSTER, name, &all) < 0) return -1;
    int ret = 0;
    size_t n = json_length(all), kept = 0;
    for (size_t k = 0; keep_manifest && k < n; k++) kept += swarm_manifest_gen(json_at(all, k)) > 0;
    if (n > kept) rc_progress(d->rc, "Removing %zu %s", n - kept, kind);
    if (kept) rc_progress(d->rc, "Kept the manifest config (--purge removes it)");
    for (size_t k = 0; ret == 0 && k < n; k++) {
        const json_value_s *x = json_at(all, k);
        if (keep_manifest && swarm_manifest_gen(x) > 0) continue;
        const char *id = json_string(json_get(x, "ID"));
        if (!id) id = json_string(json_get(x, "Id"));
        sds path = rc_sprintf("/%s/%s", kind, id ? id : "?");
        ret = path ? swarm_delete(d, path, deadline) : rc_fail_oom(d->rc);
        sdsfree(path);
    }
    json_free(all);
    return ret;
}

/* The labelled volumes on this daemon (GET /volumes answers {"Volumes":[...]}). */
static int swarm_remove_volumes(struct docker *d, const char *name, int64_t deadline) {
    sds lab = rc_sprintf(LABEL_CLUSTER "=%s", name);
    sds filter = lab ? rc_cat(rc_json_str(sdsnew("{\"label\":["), lab), "]}") : NULL;
    sds path = filter ? docker_urlencode(sdsnew("/volumes?filters="), filter) : NULL;
    json_value_s *v = NULL;
    int ret = path ? docker_call_json(d, "GET", path, NULL, &v, 0) : rc_fail_oom(d->rc);
    sdsfree(lab);
    sdsfree(filter);
    sdsfree(path);
    if (ret < 0) return -1;
    ret = 0;
    const json_value_s *vols = json_get(v, "Volumes");
    if (json_length(vols)) rc_progress(d->rc, "Removing %zu volume(s) on this Swarm node", json_length(vols));
    for (size_t k = 0; ret == 0 && k < json_length(vols); k++) {
        const char *vn = json_string(json_get(json_at(vols, k), "Name"));
        sds vp = vn ? docker_urlencode(sdsnew("/volumes/"), vn) : NULL;
        ret = vp ? swarm_delete(d, vp, deadline) : rc_fail(d->rc, "GET /volumes: a volume without a name");
        sdsfree(vp);
    }
    json_free(v);
    return ret;
}

/* down --swarm: on a manager, the Swarm nodes that held a node (their volumes stay
 * there); on any other daemon (a worker) only its volumes are ours to delete. */
static int swarm_down_inspect(struct down_run *r) {
    const struct up_opts *o = r->o;
    struct swarm_plan p;
    memset(&p, 0, sizeof p);
    p.o = o;
    json_value_s *svcs = NULL;
    r->manager = swarm_role(&r->d, p.self_id);
    if (r->manager < 0) return -1;
    int ret = 0;
    if (!r->manager) {   /* not an error here: --purge deletes this daemon's volumes */
        sdsfree(r->rc->err);
        r->rc->err = NULL;
    } else {
        ret = swarm_list_hosts(&r->d, &p);
        if (ret == 0) ret = docker_list_by_label(&r->d, "services", LABEL_CLUSTER, o->name, &svcs);
        r->services = json_length(svcs);
    }
    r->elsewhere = sdsempty();
    for (size_t k = 0; ret == 0 && r->elsewhere && k < json_length(svcs); k++) {
        const json_value_s *spec = json_get(json_at(svcs, k), "Spec");
        int h = swarm_host_index(&p, docker_label(spec, LABEL_SWARM_NODE));
        sds desc = h >= 0 && strcmp(p.hosts[h].id, p.self_id) != 0 ? swarm_host_desc(&p, h) : NULL;
        if (desc && !strstr(r->elsewhere, desc)) r->elsewhere = rc_catprintf(r->elsewhere, "  %s\n", desc);
        sdsfree(desc);
    }
    json_free(svcs);
    free(p.hosts);
    if (ret < 0) return -1;
    r->question = rc_sprintf("Delete Swarm cluster '%s' and its data volumes?", o->name);
    r->kept = rc_sprintf("Kept the data volumes %s-I-data on their Swarm nodes (delete them with --purge)", o->name);
    return r->elsewhere && r->question && r->kept ? 0 : rc_fail_oom(r->rc);
}

/* On a manager: the services, configs (but the manifest, unless purging), the secret and
 * the network, all labelled. */
static int swarm_down_remove(struct down_run *r) {
    if (!r->manager) {
        if (!r->o->purge) rc_progress(r->rc, "This daemon is not a Swarm manager: nothing to do here without --purge (its volumes)");
        return 0;
    }
    if (!r->services) rc_progress(r->rc, "No services labelled %s=%s", LABEL_CLUSTER, r->o->name);
    const char *kinds[] = { "services", "configs", "secrets", "networks" };
    int ret = 0;
    for (size_t k = 0; ret == 0 && k < sizeof kinds / sizeof kinds[0]; k++)
        ret = swarm_remove_kind(&r->d, kinds[k], r->o->name, !r->o->purge, r->deadline);
    return ret;
}

/* --purge: the labelled volumes on this daemon, and what to run on the other Swarm nodes
 * that held a node (a manager cannot reach their daemons). */
static int swarm_down_purge(struct down_run *r) {
    if (swarm_remove_volumes(&r->d, r->o->name, r->deadline) < 0) return -1;
    if (r->elsewhere && sdslen(r->elsewhere))
        rc_warn(r->rc, "the manager cannot reach other nodes' daemons: volumes %s-I-data stay on\n%son each, run `DOCKER_HOST=<its "
                       "daemon> rcluster down --swarm --purge --name %s`", r->o->name, r->elsewhere, r->o->name);
    return 0;
}

/* ---- status --swarm -------------------------------------------------------------------- */

/* status --swarm's own: the services as a plan (Swarm nodes, published ports), the seed,
 * the nodes on lost Swarm nodes and those Swarm nodes. */
struct swarm_status {
    struct swarm_plan p;
    int seed;                 /* a node whose task runs on a ready Swarm node; -1: none */
    sds lost;                 /* "NAME-2, NAME-5": nodes whose Swarm node is down or gone */
    sds lost_hosts;           /* "Swarm node ... is down; ..." */
};

static void swarm_status_free(struct swarm_status *w) {
    if (!w) return;
    free(w->p.hosts);
    free(w->p.nodes);
    sdsfree(w->lost);
    sdsfree(w->lost_hosts);
    free(w);
}

/* The nodes of p (1..the highest node number) from the labelled services: name, Swarm
 * node, published port; --announce container. 0, or -1 on OOM. */
static int swarm_status_nodes(struct swarm_plan *p, const json_value_s *svcs) {
    size_t ns = json_length(svcs);
    p->n = 0;
    for (size_t k = 0; k < ns; k++) {
        long i;
        const char *nl = docker_label(json_get(json_at(svcs, k), "Spec"), LABEL_NODE);
        if (nl && rc_parse_int(nl, 1, UP_MAX_NODES, &i) == 0 && i > p->n) p->n = (int)i;
    }
    p->nodes = calloc((size_t)p->n + 1, sizeof *p->nodes);
    if (!p->nodes) return -1;
    for (int k = 0; k < p->n; k++) { p->nodes[k].i = k + 1; p->nodes[k].host = -1; }
    for (size_t k = 0; k < ns; k++) {
        const json_value_s *spec = json_get(json_at(svcs, k), "Spec");
        const char *nl = docker_label(spec, LABEL_NODE), *nm = json_string(json_get(spec, "Name"));
        long i;
        if (!nl || !nm || rc_parse_int(nl, 1, p->n, &i) < 0) continue;
        struct swarm_node *x = &p->nodes[i - 1];
        x->exists = 1;
        snprintf(x->name, sizeof x->name, "%s", nm);
        x->host = swarm_host_index(p, docker_label(spec, LABEL_SWARM_NODE));
        x->port = (int)json_number(json_get(json_at(json_get(json_get(spec, "EndpointSpec"), "Ports"), 0), "PublishedPort"), 0);
        p->container |= docker_label(spec, LABEL_ANNOUNCE) != NULL;
    }
    return 0;
}

/* One row per service: its cells, its JSON object, the running count, the seed and the
 * lost nodes (their tasks read from the manager). */
static int swarm_status_rows(struct docker *d, struct swarm_status *w, struct status_view *v) {
    struct swarm_plan *p = &w->p;
    for (int k = 0; k < p->n; k++) {
        struct swarm_node *x = &p->nodes[k];
        if (!x->exists) continue;
        struct swarm_task_view tv;
        if (swarm_read_tasks(d, p, x, &tv) < 0) return -1;
        sdsfree(tv.err);
        const struct swarm_host *h = x->host >= 0 ? &p->hosts[x->host] : NULL;
        const char *task = tv.running ? "running" : tv.state[0] ? tv.state : "none";
        int ready = h && h->ready;
        v->running += tv.running;
        if (tv.running && ready && w->seed < 0) { w->seed = k; status_view_seed(v, h->addr, x->port); }
        if (!ready) w->lost = rc_catprintf(w->lost, "%s%s", sdslen(w->lost) ? ", " : "", x->name);
        sds *row = &v->cell[v->nrows * 5], hd = swarm_host_desc(p, x->host);
        row[0] = sdsnew(x->name);
        row[1] = sdsnew(hd ? hd : "?");
        row[2] = sdsnew(ready ? "ready" : "DOWN");
        row[3] = sdsnew(task);
        row[4] = rc_sprintf("%s:%d", h ? h->addr : "?", x->port);
        sdsfree(hd);
        sds js = rc_json_str(sdsnew("{\"name\":"), x->name);
        js = rc_json_str(rc_cat(js, ",\"swarm_node\":"), h ? h->id : NULL);
        js = rc_json_str(rc_cat(js, ",\"host\":"), h ? h->addr : NULL);
        js = rc_json_str(rc_catprintf(js, ",\"host_ready\":%s,\"task\":", ready ? "true" : "false"), task);
        v->json[v->nrows++] = rc_catprintf(js, ",\"port\":%d}", x->port);
        for (int c = 0; c < 5; c++) if (!row[c]) return rc_fail_oom(d->rc);
        if (!v->json[v->nrows - 1] || !w->lost) return rc_fail_oom(d->rc);
    }
    for (int h = 0; sdslen(w->lost) && h < p->nhosts; h++) {   /* the Swarm nodes that took them down */
        int used = 0;
        for (int k = 0; k < p->n; k++) used |= p->nodes[k].exists && p->nodes[k].host == h;
        sds hd = used && !p->hosts[h].ready ? swarm_host_desc(p, h) : NULL;
        if (hd) w->lost_hosts = rc_catprintf(w->lost_hosts, "%sSwarm node %s is down", sdslen(w->lost_hosts) ? "; " : "", hd);
        sdsfree(hd);
        if (!w->lost_hosts) return rc_fail_oom(d->rc);
    }
    return 0;
}

/* status on Swarm (a manager): the labelled services, one row each with its Swarm node,
 * whether that is ready, its task and published address. Prints nothing. */
static int swarm_status_view(struct docker *d, const struct up_opts *o, struct status_view *v) {
    static const char *const head[] = { "SERVICE", "SWARM NODE", "HOST", "TASK", "ADDRESS" };
    struct swarm_status *w = v->sw = calloc(1, sizeof *v->sw);
    if (!w || !(w->lost = sdsempty()) || !(w->lost_hosts = sdsempty())) return rc_fail_oom(d->rc);
    w->seed = -1;
    w->p.o = o;
    v->rows_key = "services";
    v->swarm = 1;
    json_value_s *svcs = NULL;
    int ret = swarm_role(d, w->p.self_id) == 1 ? 0 : -1;
    if (ret == 0) ret = swarm_list_hosts(d, &w->p);
    if (ret == 0) ret = docker_list_by_label(d, "services", LABEL_CLUSTER, o->name, &svcs);
    if (ret == 0 && !json_length(svcs))
        ret = rc_fail(d->rc, "no Swarm cluster named '%s' (no services labelled %s=%s); create it with `rcluster up --swarm --name %s`",
                      o->name, LABEL_CLUSTER, o->name, o->name);
    if (ret == 0 && (swarm_status_nodes(&w->p, svcs) < 0 || status_view_alloc(v, (size_t)w->p.n, 5, head) < 0)) ret = rc_fail_oom(d->rc);
    if (ret == 0) ret = swarm_status_rows(d, w, v);
    json_free(svcs);
    return ret;
}

/* What became of node x (on a lost Swarm node), as its peers see it. NULL: unknown. */
static sds swarm_failover_note(const struct cview *v, const char *ip, int port) {
    for (int k = 0; k < v->n; k++) {
        const struct nodeinfo *ni = &v->nodes[k];
        if (strcmp(ni->ip, ip) != 0 || ni->port != port) continue;
        if (!(ni->flags & (NF_FAIL | NF_PFAIL))) return sdsnew("not marked failed yet (within cluster-node-timeout)");
        if (ni->flags & NF_SLAVE) return sdsnew("a replica: marked failed; its master keeps serving, with one replica fewer");
        if (ni->nranges == 0) return sdsnew("was a master: marked failed and FAILED OVER, a replica now serves its slots");
        return sdsnew("a master marked failed whose slots are NOT served: no replica has taken over (yet)");
    }
    return NULL;
}

/* "\n  NAME-2: was a master: ... FAILED OVER ..." for each node on a lost Swarm node,
 * as the seed's CLUSTER NODES sees it; "" when it cannot tell; NULL on OOM. */
static sds swarm_failover_notes(struct rc *rc, const struct swarm_status *w) {
    const struct swarm_plan *p = &w->p;
    const struct swarm_node *s = &p->nodes[w->seed];
    struct rconn c;
    sds text = NULL, notes = sdsempty();
    if (rconn_open(rc, &c, p->hosts[s->host].addr, s->port) == 0) text = rconn_call_str(rc, &c, "CLUSTER NODES", "CLUSTER", "NODES", RESP_END);
    rconn_free(&c);
    struct cview v = { 0 };
    if (text && cview_parse(text, sdslen(text), &v) == 0)
        for (int k = 0; notes && k < p->n; k++) {
            const struct swarm_node *x = &p->nodes[k];
            if (!x->exists || x->host < 0 || p->hosts[x->host].ready) continue;
            sds what = swarm_failover_note(&v, p->hosts[x->host].addr, x->port);
            if (what) notes = rc_catprintf(notes, "\n  %s: %s", x->name, what);
            sdsfree(what);
        }
    cview_free(&v);
    sdsfree(text);
    return notes;
}

/* status's judge on Swarm: check from the seed (its report follows the table), then
 * what is wrong: a lost host (and what became of its nodes), or no node to ask. 0
 * healthy, 1 not (rc->err says why), -1 when nobody can be asked (no password). */
static int swarm_status_judge(struct rc *rc, struct status_view *v, const char *name) {
    struct swarm_status *w = v->sw;
    int health = 1;
    sds notes = NULL;
    if (w->seed >= 0) {
        health = swarm_check(rc, &w->p, w->seed, rc->json);
        if (health < 0 && rc->err_kind == RC_ERR_AUTH)
            return rc_fail_as(rc, RC_ERR_AUTH, "cluster '%s': its nodes refuse us without the password "
                                               "(give it with --password-file F or RCLUSTER_PASSWORD)", name);
        if (sdslen(w->lost)) notes = swarm_failover_notes(rc, w);
    }
    if (sdslen(w->lost)) {
        rc_fail(rc, "cluster '%s': lost host: %s; its Redis nodes %s are lost with it%s%s", name,
                sdslen(w->lost_hosts) ? w->lost_hosts : "a Swarm node that held a node is gone", w->lost,
                notes && sdslen(notes) ? "; as the cluster sees them:" : "", notes ? notes : "");
        health = 1;
    } else if (w->seed < 0) {
        rc_fail(rc, "cluster '%s': no task runs on a Swarm node that is up", name);
        health = 1;
    }
    sdsfree(notes);
    return health == 0 ? 0 : 1;
}

/* ====================================================================== */
/* 9c. Data: backup, restore, import (replication stream, RDB reader)      */
/* ====================================================================== */

/* backup reads every master's RDB at once over the replication protocol (REPLCONF
 * rdb-only, SYNC) into DIR with a manifest; restore reads RDB files with a bounded
 * reader and sends each key to the master owning its slot (RESTORE ... ABSTTL);
 * import copies a standalone server's keys in itself: SCAN, DUMP and PTTL on the source,
 * RESTORE on the masters, and (a move) a script on the source that deletes each key
 * the cluster took while it still holds the value DUMPed. */

/* --- CRC-64 (Jones) ---------------------------------------------------------------- */

/* Reflected table of poly 0xad93d23594c935a9 (reversed: 0x95ac9329ac4bc9b5). */
static const uint64_t crc64_table[256] = {
    0x0000000000000000ULL, 0x7ad870c830358979ULL, 0xf5b0e190606b12f2ULL, 0x8f689158505e9b8bULL,
    0xc038e5739841b68fULL, 0xbae095bba8743ff6ULL, 0x358804e3f82aa47dULL, 0x4f50742bc81f2d04ULL,
    0xab28ecb46814fe75ULL, 0xd1f09c7c5821770cULL, 0x5e980d24087fec87ULL, 0x24407dec384a65feULL,
    0x6b1009c7f05548faULL, 0x11c8790fc060c183ULL, 0x9ea0e857903e5a08ULL, 0xe478989fa00bd371ULL,
    0x7d08ff3b88be6f81ULL, 0x07d08ff3b88be6f8ULL, 0x88b81eabe8d57d73ULL, 0xf2606e63d8e0f40aULL,
    0xbd301a4810ffd90eULL, 0xc7e86a8020ca5077ULL, 0x4880fbd87094cbfcULL, 0x32588b1040a14285ULL,
    0xd620138fe0aa91f4ULL, 0xacf86347d09f188dULL, 0x2390f21f80c18306ULL, 0x594882d7b0f40a7fULL,
    0x1618f6fc78eb277bULL, 0x6cc0863448deae02ULL, 0xe3a8176c18803589ULL, 0x997067a428b5bcf0ULL,
    0xfa11fe77117cdf02ULL, 0x80c98ebf2149567bULL, 0x0fa11fe77117cdf0ULL, 0x75796f2f41224489ULL,
    0x3a291b04893d698dULL, 0x40f16bccb908e0f4ULL, 0xcf99fa94e9567b7fULL, 0xb5418a5cd963f206ULL,
    0x513912c379682177ULL, 0x2be1620b495da80eULL, 0xa489f35319033385ULL, 0xde51839b2936bafcULL,
    0x9101f7b0e12997f8ULL, 0xebd98778d11c1e81ULL, 0x64b116208142850aULL, 0x1e6966e8b1770c73ULL,
    0x8719014c99c2b083ULL, 0xfdc17184a9f739faULL, 0x72a9e0dcf9a9a271ULL, 0x08719014c99c2b08ULL,
    0x4721e43f0183060cULL, 0x3df994f731b68f75ULL, 0xb29105af61e814feULL, 0xc849756751dd9d87ULL,
    0x2c31edf8f1d64ef6ULL, 0x56e99d30c1e3c78fULL, 0xd9810c6891bd5c04ULL, 0xa3597ca0a188d57dULL,
    0xec09088b6997f879ULL, 0x96d1784359a27100ULL, 0x19b9e91b09fcea8bULL, 0x636199d339c963f2ULL,
    0xdf7adabd7a6e2d6fULL, 0xa5a2aa754a5ba416ULL, 0x2aca3b2d1a053f9dULL, 0x50124be52a30b6e4ULL,
    0x1f423fcee22f9be0ULL, 0x659a4f06d21a1299ULL, 0xeaf2de5e82448912ULL, 0x902aae96b271006bULL,
    0x74523609127ad31aULL, 0x0e8a46c1224f5a63ULL, 0x81e2d7997211c1e8ULL, 0xfb3aa75142244891ULL,
    0xb46ad37a8a3b6595ULL, 0xceb2a3b2ba0eececULL, 0x41da32eaea507767ULL, 0x3b024222da65fe1eULL,
    0xa2722586f2d042eeULL, 0xd8aa554ec2e5cb97ULL, 0x57c2c41692bb501cULL, 0x2d1ab4dea28ed965ULL,
    0x624ac0f56a91f461ULL, 0x1892b03d5aa47d18ULL, 0x97fa21650afae693ULL, 0xed2251ad3acf6feaULL,
    0x095ac9329ac4bc9bULL, 0x7382b9faaaf135e2ULL, 0xfcea28a2faafae69ULL, 0x8632586aca9a2710ULL,
    0xc9622c4102850a14ULL, 0xb3ba5c8932b0836dULL, 0x3cd2cdd162ee18e6ULL, 0x460abd1952db919fULL,
    0x256b24ca6b12f26dULL, 0x5fb354025b277b14ULL, 0xd0dbc55a0b79e09fULL, 0xaa03b5923b4c69e6ULL,
    0xe553c1b9f35344e2ULL, 0x9f8bb171c366cd9bULL, 0x10e3202993385610ULL, 0x6a3b50e1a30ddf69ULL,
    0x8e43c87e03060c18ULL, 0xf49bb8b633338561ULL, 0x7bf329ee636d1eeaULL, 0x012b592653589793ULL,
    0x4e7b2d0d9b47ba97ULL, 0x34a35dc5ab7233eeULL, 0xbbcbcc9dfb2ca865ULL, 0xc113bc55cb19211cULL,
    0x5863dbf1e3ac9decULL, 0x22bbab39d3991495ULL, 0xadd33a6183c78f1eULL, 0xd70b4aa9b3f20667ULL,
    0x985b3e827bed2b63ULL, 0xe2834e4a4bd8a21aULL, 0x6debdf121b863991ULL, 0x1733afda2bb3b0e8ULL,
    0xf34b37458bb86399ULL, 0x8993478dbb8deae0ULL, 0x06fbd6d5ebd3716bULL, 0x7c23a61ddbe6f812ULL,
    0x3373d23613f9d516ULL, 0x49aba2fe23cc5c6fULL, 0xc6c333a67392c7e4ULL, 0xbc1b436e43a74e9dULL,
    0x95ac9329ac4bc9b5ULL, 0xef74e3e19c7e40ccULL, 0x601c72b9cc20db47ULL, 0x1ac40271fc15523eULL,
    0x5594765a340a7f3aULL, 0x2f4c0692043ff643ULL, 0xa02497ca54616dc8ULL, 0xdafce7026454e4b1ULL,
    0x3e847f9dc45f37c0ULL, 0x445c0f55f46abeb9ULL, 0xcb349e0da4342532ULL, 0xb1eceec59401ac4bULL,
    0xfebc9aee5c1e814fULL, 0x8464ea266c2b0836ULL, 0x0b0c7b7e3c7593bdULL, 0x71d40bb60c401ac4ULL,
    0xe8a46c1224f5a634ULL, 0x927c1cda14c02f4dULL, 0x1d148d82449eb4c6ULL, 0x67ccfd4a74ab3dbfULL,
    0x289c8961bcb410bbULL, 0x5244f9a98c8199c2ULL, 0xdd2c68f1dcdf0249ULL, 0xa7f41839ecea8b30ULL,
    0x438c80a64ce15841ULL, 0x3954f06e7cd4d138ULL, 0xb63c61362c8a4ab3ULL, 0xcce411fe1cbfc3caULL,
    0x83b465d5d4a0eeceULL, 0xf96c151de49567b7ULL, 0x76048445b4cbfc3cULL, 0x0cdcf48d84fe7545ULL,
    0x6fbd6d5ebd3716b7ULL, 0x15651d968d029fceULL, 0x9a0d8ccedd5c0445ULL, 0xe0d5fc06ed698d3cULL,
    0xaf85882d2576a038ULL, 0xd55df8e515432941ULL, 0x5a3569bd451db2caULL, 0x20ed197575283bb3ULL,
    0xc49581ead523e8c2ULL, 0xbe4df122e51661bbULL, 0x3125607ab548fa30ULL, 0x4bfd10b2857d7349ULL,
    0x04ad64994d625e4dULL, 0x7e7514517d57d734ULL, 0xf11d85092d094cbfULL, 0x8bc5f5c11d3cc5c6ULL,
    0x12b5926535897936ULL, 0x686de2ad05bcf04fULL, 0xe70573f555e26bc4ULL, 0x9ddd033d65d7e2bdULL,
    0xd28d7716adc8cfb9ULL, 0xa85507de9dfd46c0ULL, 0x273d9686cda3dd4bULL, 0x5de5e64efd965432ULL,
    0xb99d7ed15d9d8743ULL, 0xc3450e196da80e3aULL, 0x4c2d9f413df695b1ULL, 0x36f5ef890dc31cc8ULL,
    0x79a59ba2c5dc31ccULL, 0x037deb6af5e9b8b5ULL, 0x8c157a32a5b7233eULL, 0xf6cd0afa9582aa47ULL,
    0x4ad64994d625e4daULL, 0x300e395ce6106da3ULL, 0xbf66a804b64ef628ULL, 0xc5bed8cc867b7f51ULL,
    0x8aeeace74e645255ULL, 0xf036dc2f7e51db2cULL, 0x7f5e4d772e0f40a7ULL, 0x05863dbf1e3ac9deULL,
    0xe1fea520be311aafULL, 0x9b26d5e88e0493d6ULL, 0x144e44b0de5a085dULL, 0x6e963478ee6f8124ULL,
    0x21c640532670ac20ULL, 0x5b1e309b16452559ULL, 0xd476a1c3461bbed2ULL, 0xaeaed10b762e37abULL,
    0x37deb6af5e9b8b5bULL, 0x4d06c6676eae0222ULL, 0xc26e573f3ef099a9ULL, 0xb8b627f70ec510d0ULL,
    0xf7e653dcc6da3dd4ULL, 0x8d3e2314f6efb4adULL, 0x0256b24ca6b12f26ULL, 0x788ec2849684a65fULL,
    0x9cf65a1b368f752eULL, 0xe62e2ad306bafc57ULL, 0x6946bb8b56e467dcULL, 0x139ecb4366d1eea5ULL,
    0x5ccebf68aecec3a1ULL, 0x2616cfa09efb4ad8ULL, 0xa97e5ef8cea5d153ULL, 0xd3a62e30fe90582aULL,
    0xb0c7b7e3c7593bd8ULL, 0xca1fc72bf76cb2a1ULL, 0x45775673a732292aULL, 0x3faf26bb9707a053ULL,
    0x70ff52905f188d57ULL, 0x0a2722586f2d042eULL, 0x854fb3003f739fa5ULL, 0xff97c3c80f4616dcULL,
    0x1bef5b57af4dc5adULL, 0x61372b9f9f784cd4ULL, 0xee5fbac7cf26d75fULL, 0x9487ca0fff135e26ULL,
    0xdbd7be24370c7322ULL, 0xa10fceec0739fa5bULL, 0x2e675fb4576761d0ULL, 0x54bf2f7c6752e8a9ULL,
    0xcdcf48d84fe75459ULL, 0xb71738107fd2dd20ULL, 0x387fa9482f8c46abULL, 0x42a7d9801fb9cfd2ULL,
    0x0df7adabd7a6e2d6ULL, 0x772fdd63e7936bafULL, 0xf8474c3bb7cdf024ULL, 0x829f3cf387f8795dULL,
    0x66e7a46c27f3aa2cULL, 0x1c3fd4a417c62355ULL, 0x935745fc4798b8deULL, 0xe98f353477ad31a7ULL,
    0xa6df411fbfb21ca3ULL, 0xdc0731d78f8795daULL, 0x536fa08fdfd90e51ULL, 0x29b7d047efec8728ULL,
};

/* CRC-64/Jones (reflected, init 0, no final xor): RDB files' trailer and DUMP payloads'
 * checksum. Start with crc 0; pass the last value to continue over more bytes. Pure. */
static uint64_t crc64_jones(uint64_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) crc = crc64_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

/* Slicing-by-8 tables for CRC-64/Jones: t[k][b] is the CRC of byte b followed by k zero
 * bytes. 16 KB, built once by whoever needs the speed (backup: every byte it receives). */
struct crc64_tab { uint64_t t[8][256]; };

static void crc64_tab_init(struct crc64_tab *c) {
    for (int b = 0; b < 256; b++) {
        c->t[0][b] = crc64_table[b];
        for (int k = 1; k < 8; k++) c->t[k][b] = (c->t[k - 1][b] >> 8) ^ crc64_table[c->t[k - 1][b] & 0xff];
    }
}

/* crc64_jones, eight bytes a step: the same value, about five times faster. Pure. */
static uint64_t crc64_jones_fast(const struct crc64_tab *c, uint64_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);   /* one load; -Oz would keep a byte loop */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        uint64_t v = crc ^ w;
        crc = c->t[7][v & 0xff] ^ c->t[6][(v >> 8) & 0xff] ^ c->t[5][(v >> 16) & 0xff] ^ c->t[4][(v >> 24) & 0xff] ^
              c->t[3][(v >> 32) & 0xff] ^ c->t[2][(v >> 40) & 0xff] ^ c->t[1][(v >> 48) & 0xff] ^ c->t[0][v >> 56];
    }
    return crc64_jones(crc, p, len);
}

static uint64_t le64_get(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void le64_put(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* --- RDB reader: bounded, over a buffer (an mmap'd file) ------------------------------- */

/* Value types both families agree on (Valkey and Redis give 22 and up other meanings). */
enum { RDB_T_STRING = 0, RDB_T_LIST, RDB_T_SET, RDB_T_ZSET, RDB_T_HASH, RDB_T_ZSET2, RDB_T_MODULE_PRE_GA, RDB_T_MODULE2,
       RDB_T_HASH_ZIPMAP = 9, RDB_T_LIST_ZIPLIST, RDB_T_SET_INTSET, RDB_T_ZSET_ZIPLIST, RDB_T_HASH_ZIPLIST,
       RDB_T_LIST_QUICKLIST, RDB_T_STREAM, RDB_T_HASH_LISTPACK, RDB_T_ZSET_LISTPACK, RDB_T_LIST_QUICKLIST2,
       RDB_T_STREAM2, RDB_T_SET_LISTPACK, RDB_T_STREAM3, RDB_T_COMMON_END };
/* Valkey >= 9.0 (VALKEY080): a hash with field expiries, (field, value, 8-byte expiry ms
 * or -1) triples. In Redis' numbering 22 is a pre-release type of its own. */
enum { RDB_T_VALKEY_HASH2 = 22 };
/* Redis' own from 22 on: hashes with field expiries (22, 23: 7.4 release candidates,
 * expiries absolute; 24, 25 (RDB 12): an 8-byte minimum expiry first, 24's relative to
 * it), streams with IDMP producers (26, RDB 13) and with NACKed entries (27, RDB 14).
 * 28 and up (RDB 15 and later) are not read. */
enum { RDB_T_REDIS_HASH_META_RC = 22, RDB_T_REDIS_HASH_LPEX_RC, RDB_T_REDIS_HASH_META, RDB_T_REDIS_HASH_LPEX,
       RDB_T_REDIS_STREAM4, RDB_T_REDIS_STREAM5, RDB_T_REDIS_END };
/* Redis' defaults for a stream's IDMP settings (stream-idmp-duration, -maxsize). */
#define RDB_IDMP_DEFAULT 100
/* Opcodes, counted down from 255. 243 is Valkey's SLOT_IMPORT but Redis' KEY_META. */
enum { RDB_OP_SLOT_INFO = 244, RDB_OP_FUNCTION2, RDB_OP_FUNCTION_PRE_GA, RDB_OP_MODULE_AUX, RDB_OP_IDLE, RDB_OP_FREQ,
       RDB_OP_AUX, RDB_OP_RESIZEDB, RDB_OP_EXPIRE_MS, RDB_OP_EXPIRE, RDB_OP_SELECTDB, RDB_OP_EOF };

#define RDB_MAX_KEY RESP_MAX_BULK   /* a key name longer than this is refused */

/* A cursor over an RDB image. Every read checks the bytes left first: no length in the
 * file is trusted. The first failure is kept in msg with its offset. */
struct rdb_rd {
    const unsigned char *p;
    size_t len, pos;
    int valkey;             /* the VALKEY family's numbering (set by the header) */
    uint64_t db;            /* the database of the keys that follow (SELECTDB) */
    size_t *cut;            /* when set: (offset, length) pairs of a stream's parts that */
    size_t ncut, capcut;    /*   an older stream type lacks (re-encoding) */
    int cut_active;         /*   the consumers' active times too (STREAM3 -> STREAM2) */
    uint64_t nacks, pids;   /* a stream's NACKed entries and IDMP producers */
    int idmp_custom;        /* its IDMP settings are not Redis' defaults */
    int failed;
    size_t at;              /* offset of the first failure */
    char msg[200];
};

/* The file's header: "REDIS" + 4 digits or "VALKEY" + 3 digits. */
struct rdb_head {
    char magic[10];
    int valkey;             /* the VALKEY family (its own numbers from 80 on) */
    int version;
};

/* Keep the first failure's message and offset. */
__attribute__((format(printf, 2, 3)))
static void rdb_set_msg(struct rdb_rd *r, const char *fmt, ...) {
    if (r->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->failed = 1;
    r->at = r->pos;
}

/* rdb_set_msg, then -1: a macro so that the static analyzer sees the -1. */
#define rdb_bad(r, ...) (rdb_set_msg((r), __VA_ARGS__), -1)

static int rdb_need(struct rdb_rd *r, uint64_t n) {
    return n <= r->len - r->pos ? 0 : rdb_bad(r, "truncated: %llu more byte(s) needed, %zu left", (unsigned long long)n, r->len - r->pos);
}

/* Note len bytes at `at` for cutting out (only when r->cut is set). */
static int rdb_cut_add(struct rdb_rd *r, size_t at, size_t len) {
    if (!r->cut) return 0;
    if (r->ncut + 2 > r->capcut) {
        size_t cap = r->capcut * 2 + 16;
        size_t *c = realloc(r->cut, cap * sizeof *c);
        if (!c) return rdb_bad(r, "out of memory");
        r->cut = c;
        r->capcut = cap;
    }
    r->cut[r->ncut++] = at;
    r->cut[r->ncut++] = len;
    return 0;
}

static int rdb_skip(struct rdb_rd *r, uint64_t n) {
    if (rdb_need(r, n) < 0) return -1;
    r->pos += (size_t)n;
    return 0;
}

static int rdb_byte(struct rdb_rd *r, unsigned *v) {
    if (rdb_need(r, 1) < 0) return -1;
    *v = r->p[r->pos++];
    return 0;
}

/* An RDB length: 00xxxxxx, 01xxxxxx xxxxxxxx, 0x80 + 32 bits or 0x81 + 64 bits (big
 * endian). 11xxxxxx is a string encoding: allowed (*enc = 1, *len = the encoding) only
 * where enc is given. */
static int rdb_len(struct rdb_rd *r, uint64_t *len, int *enc) {
    unsigned b, b2;
    if (enc) *enc = 0;
    if (rdb_byte(r, &b) < 0) return -1;
    switch (b >> 6) {
    case 0: *len = b & 0x3f; return 0;
    case 1:
        if (rdb_byte(r, &b2) < 0) return -1;
        *len = (uint64_t)(b & 0x3f) << 8 | b2;
        return 0;
    case 2: {
        if (b != 0x80 && b != 0x81) return rdb_bad(r, "bad length byte 0x%02x", b);
        size_t n = b == 0x80 ? 4 : 8;
        if (rdb_need(r, n) < 0) return -1;
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) v = v << 8 | r->p[r->pos++];
        *len = v;
        return 0;
    }
    default:
        if (!enc) return rdb_bad(r, "a string encoding (0x%02x) where a length belongs", b);
        *enc = 1;
        *len = b & 0x3f;
        return 0;
    }
}

/* A length that counts elements of at least `min_bytes` each: more than the bytes
 * left can hold is a corrupt file, found before any loop over it. */
static int rdb_count(struct rdb_rd *r, uint64_t min_bytes, uint64_t *n) {
    if (rdb_len(r, n, NULL) < 0) return -1;
    if (*n > (r->len - r->pos) / min_bytes) return rdb_bad(r, "count %llu larger than the bytes left allow", (unsigned long long)*n);
    return 0;
}

/* A string as stored: raw bytes, an integer (8, 16 or 32 bits) or LZF. */
enum { RDB_STR_RAW, RDB_STR_INT, RDB_STR_LZF };
struct rdb_str {
    int kind;
    const unsigned char *p; /* RAW: the bytes; LZF: the compressed bytes */
    uint64_t len;           /* RAW: length; LZF: compressed length */
    uint64_t ulen;          /* LZF: length once decompressed */
    long long ival;         /* INT */
};

static int rdb_string(struct rdb_rd *r, struct rdb_str *s) {
    uint64_t len, ulen;
    int enc;
    memset(s, 0, sizeof *s);
    if (rdb_len(r, &len, &enc) < 0) return -1;
    if (!enc) {
        if (rdb_need(r, len) < 0) return -1;
        s->p = r->p + r->pos;
        s->len = len;
        r->pos += (size_t)len;
        return 0;
    }
    if (len <= 2) {
        size_t n = (size_t)1 << len;
        if (rdb_need(r, n) < 0) return -1;
        uint32_t u = 0;
        for (size_t i = 0; i < n; i++) u |= (uint32_t)r->p[r->pos + i] << (8 * i);
        r->pos += n;
        s->kind = RDB_STR_INT;
        s->ival = n == 1 ? (int8_t)(uint8_t)u : n == 2 ? (int16_t)(uint16_t)u : (int32_t)u;
        return 0;
    }
    if (len != 3) return rdb_bad(r, "unknown string encoding %llu", (unsigned long long)len);
    if (rdb_len(r, &len, NULL) < 0 || rdb_len(r, &ulen, NULL) < 0 || rdb_need(r, len) < 0) return -1;
    if (len == 0 || ulen == 0) return rdb_bad(r, "empty LZF string");
    s->kind = RDB_STR_LZF;
    s->p = r->p + r->pos;
    s->len = len;
    s->ulen = ulen;
    r->pos += (size_t)len;
    return 0;
}

/* liblzf's format: a control byte < 32 copies ctrl+1 literal bytes; else a back
 * reference of (ctrl >> 5) + 2 bytes (7: plus the next byte) at distance
 * ((ctrl & 31) << 8) + next byte + 1. 0 only when it decodes to exactly outlen bytes. Pure. */
static int lzf_decompress(const unsigned char *in, size_t inlen, unsigned char *out, size_t outlen) {
    size_t ip = 0, op = 0;
    while (ip < inlen) {
        size_t ctrl = in[ip++];
        if (ctrl < 32) {
            size_t n = ctrl + 1;
            if (n > inlen - ip || n > outlen - op) return -1;
            memcpy(out + op, in + ip, n);
            ip += n;
            op += n;
            continue;
        }
        size_t n = ctrl >> 5, back = (ctrl & 0x1f) << 8;
        if (n == 7) { if (ip >= inlen) return -1; n += in[ip++]; }
        if (ip >= inlen) return -1;
        back += (size_t)in[ip++] + 1;
        n += 2;
        if (back > op || n > outlen - op) return -1;
        for (size_t i = 0; i < n; i++, op++) out[op] = out[op - back];
    }
    return op == outlen ? 0 : -1;
}

/* The bytes of a string (a key name, a function's code) as a new sds; -1 with r's
 * message when it is longer than max or its LZF does not decode. */
static int rdb_str_decode(struct rdb_rd *r, const struct rdb_str *s, size_t max, sds *out) {
    *out = NULL;
    if (s->kind == RDB_STR_INT) *out = rc_sprintf("%lld", s->ival);
    else if (s->kind == RDB_STR_RAW) {
        if (s->len > max) return rdb_bad(r, "string of %llu bytes, more than %zu", (unsigned long long)s->len, max);
        *out = sdsnewlen(s->p, (size_t)s->len);
    } else {
        if (s->ulen > max) return rdb_bad(r, "compressed string of %llu bytes, more than %zu", (unsigned long long)s->ulen, max);
        if (!(*out = sdsnewlen(NULL, (size_t)s->ulen))) return rdb_bad(r, "out of memory");
        if (lzf_decompress(s->p, (size_t)s->len, (unsigned char *)*out, (size_t)s->ulen) < 0) {
            sdsfree(*out);
            *out = NULL;
            return rdb_bad(r, "corrupt LZF string");
        }
    }
    return *out ? 0 : rdb_bad(r, "out of memory");
}

static int rdb_skip_strings(struct rdb_rd *r, uint64_t n) {
    struct rdb_str s;
    for (uint64_t i = 0; i < n; i++) if (rdb_string(r, &s) < 0) return -1;
    return 0;
}

/* A sorted set score of type 3: one length byte, 253-255 standing for nan, +inf, -inf. */
static int rdb_skip_text_double(struct rdb_rd *r) {
    unsigned b;
    if (rdb_byte(r, &b) < 0) return -1;
    return b >= 253 ? 0 : rdb_skip(r, b);
}

static int rdb_skip_lens(struct rdb_rd *r, int n) {
    uint64_t v;
    for (int i = 0; i < n; i++) if (rdb_len(r, &v, NULL) < 0) return -1;
    return 0;
}

/* A consumer group: name, last id, [entries read], pending entries (16-byte id,
 * 8-byte delivery time, delivery count), consumers (name, seen time, [active time],
 * their pending ids), [Redis' 27: the NACKed ids]. */
static int rdb_skip_stream_group(struct rdb_rd *r, unsigned type) {
    uint64_t pel, consumers, own, nacked;
    struct rdb_str name;
    if (rdb_string(r, &name) < 0 || rdb_skip_lens(r, type >= RDB_T_STREAM2 ? 3 : 2) < 0) return -1;
    if (rdb_count(r, 25, &pel) < 0) return -1;
    for (uint64_t i = 0; i < pel; i++)
        if (rdb_skip(r, 24) < 0 || rdb_skip_lens(r, 1) < 0) return -1;
    if (rdb_count(r, 10, &consumers) < 0) return -1;
    for (uint64_t i = 0; i < consumers; i++) {
        if (rdb_string(r, &name) < 0 || rdb_skip(r, 8) < 0) return -1;
        if (type >= RDB_T_STREAM3 && r->cut_active && rdb_cut_add(r, r->pos, 8) < 0) return -1;
        if (type >= RDB_T_STREAM3 && rdb_skip(r, 8) < 0) return -1;
        if (rdb_count(r, 16, &own) < 0 || rdb_skip(r, own * 16) < 0) return -1;
    }
    if (r->valkey || type != RDB_T_REDIS_STREAM5) return 0;
    size_t at = r->pos;
    if (rdb_count(r, 16, &nacked) < 0 || rdb_skip(r, nacked * 16) < 0) return -1;
    r->nacks += nacked;
    return rdb_cut_add(r, at, r->pos - at);
}

/* Redis' 26 and 27 end with the IDMP state: duration, max size, producers (name,
 * their ids: name, entry id ms and seq), ids added, duplicates. */
static int rdb_skip_stream_idmp(struct rdb_rd *r) {
    uint64_t duration, maxsize, pids, iids;
    size_t at = r->pos;
    if (rdb_len(r, &duration, NULL) < 0 || rdb_len(r, &maxsize, NULL) < 0 || rdb_count(r, 2, &pids) < 0) return -1;
    for (uint64_t i = 0; i < pids; i++) {
        if (rdb_skip_strings(r, 1) < 0 || rdb_count(r, 3, &iids) < 0) return -1;
        for (uint64_t j = 0; j < iids; j++) if (rdb_skip_strings(r, 1) < 0 || rdb_skip_lens(r, 2) < 0) return -1;
    }
    if (rdb_skip_lens(r, 2) < 0) return -1;
    r->pids += pids;
    r->idmp_custom |= duration != RDB_IDMP_DEFAULT || maxsize != RDB_IDMP_DEFAULT;
    return rdb_cut_add(r, at, r->pos - at);
}

/* A stream: listpack nodes (key, listpack), length, last id, [first id, max deleted
 * id, entries added], consumer groups, [Redis' IDMP state]. */
static int rdb_skip_stream(struct rdb_rd *r, unsigned type) {
    uint64_t nodes, groups;
    if (rdb_count(r, 2, &nodes) < 0 || rdb_skip_strings(r, nodes * 2) < 0) return -1;
    if (rdb_skip_lens(r, type >= RDB_T_STREAM2 ? 8 : 3) < 0) return -1;
    if (rdb_count(r, 4, &groups) < 0) return -1;
    for (uint64_t i = 0; i < groups; i++) if (rdb_skip_stream_group(r, type) < 0) return -1;
    return !r->valkey && type >= RDB_T_REDIS_STREAM4 ? rdb_skip_stream_idmp(r) : 0;
}

/* A hash with field expiries in Redis' 22 or 24: [8-byte minimum expiry], count, then
 * (expiry as a length, field, value). */
static int rdb_skip_redis_hash_meta(struct rdb_rd *r, unsigned type) {
    uint64_t n;
    if (type == RDB_T_REDIS_HASH_META && rdb_skip(r, 8) < 0) return -1;
    if (rdb_count(r, 3, &n) < 0) return -1;
    for (uint64_t i = 0; i < n; i++) if (rdb_skip_lens(r, 1) < 0 || rdb_skip_strings(r, 2) < 0) return -1;
    return 0;
}

/* Step over a value of `type` (one of the common types, modules excepted). */
static int rdb_skip_value(struct rdb_rd *r, unsigned type) {
    uint64_t n;
    switch (type) {
    case RDB_T_STRING: case RDB_T_HASH_ZIPMAP: case RDB_T_LIST_ZIPLIST: case RDB_T_SET_INTSET: case RDB_T_ZSET_ZIPLIST:
    case RDB_T_HASH_ZIPLIST: case RDB_T_HASH_LISTPACK: case RDB_T_ZSET_LISTPACK: case RDB_T_SET_LISTPACK:
        return rdb_skip_strings(r, 1);
    case RDB_T_LIST: case RDB_T_SET: case RDB_T_LIST_QUICKLIST:
        return rdb_count(r, 1, &n) < 0 ? -1 : rdb_skip_strings(r, n);
    case RDB_T_HASH:
        return rdb_count(r, 2, &n) < 0 ? -1 : rdb_skip_strings(r, n * 2);
    case RDB_T_ZSET:
        if (rdb_count(r, 2, &n) < 0) return -1;
        for (uint64_t i = 0; i < n; i++) if (rdb_skip_strings(r, 1) < 0 || rdb_skip_text_double(r) < 0) return -1;
        return 0;
    case RDB_T_ZSET2:
        if (rdb_count(r, 9, &n) < 0) return -1;
        for (uint64_t i = 0; i < n; i++) if (rdb_skip_strings(r, 1) < 0 || rdb_skip(r, 8) < 0) return -1;
        return 0;
    case RDB_T_LIST_QUICKLIST2:
        if (rdb_count(r, 2, &n) < 0) return -1;
        for (uint64_t i = 0; i < n; i++) if (rdb_skip_lens(r, 1) < 0 || rdb_skip_strings(r, 1) < 0) return -1;
        return 0;
    case RDB_T_STREAM: case RDB_T_STREAM2: case RDB_T_STREAM3:
        return rdb_skip_stream(r, type);
    case RDB_T_VALKEY_HASH2:   /* = RDB_T_REDIS_HASH_META_RC */
        if (!r->valkey) return rdb_skip_redis_hash_meta(r, type);
        if (rdb_count(r, 10, &n) < 0) return -1;
        for (uint64_t i = 0; i < n; i++) if (rdb_skip_strings(r, 2) < 0 || rdb_skip(r, 8) < 0) return -1;
        return 0;
    case RDB_T_REDIS_HASH_LPEX_RC: case RDB_T_REDIS_HASH_LPEX:
        if (r->valkey || (type == RDB_T_REDIS_HASH_LPEX && rdb_skip(r, 8) < 0)) break;
        return rdb_skip_strings(r, 1);
    case RDB_T_REDIS_HASH_META:
        return r->valkey ? rdb_bad(r, "unknown value type %u", type) : rdb_skip_redis_hash_meta(r, type);
    case RDB_T_REDIS_STREAM4: case RDB_T_REDIS_STREAM5:
        return r->valkey ? rdb_bad(r, "unknown value type %u", type) : rdb_skip_stream(r, type);
    }
    return r->failed ? -1 : rdb_bad(r, "unknown value type %u", type);
}

/* Whether the reader knows value type t in a file of the family valkey. Pure. */
static int rdb_type_known(unsigned t, int valkey) {
    if (t == RDB_T_MODULE_PRE_GA || t == RDB_T_MODULE2 || t == 8) return 0;
    return t < RDB_T_COMMON_END || (valkey ? t == RDB_T_VALKEY_HASH2 : t < RDB_T_REDIS_END);
}

/* A hash with field expiries, in either family's numbering. Pure. */
static int rdb_type_is_hfe(unsigned t, int valkey) {
    return valkey ? t == RDB_T_VALKEY_HASH2 : t >= RDB_T_REDIS_HASH_META_RC && t <= RDB_T_REDIS_HASH_LPEX;
}

/* The oldest RDB version that has value type t of the family valkey (a DUMP payload may
 * say any version from there up to what the target reads). Pure. */
static int rdb_type_min_version(unsigned t, int valkey) {
    if (t >= RDB_T_COMMON_END && valkey) return 80;   /* Valkey's HASH_2 */
    if (t >= RDB_T_COMMON_END) return t <= RDB_T_REDIS_HASH_LPEX ? 12 : t == RDB_T_REDIS_STREAM4 ? 13 : 14;
    return t <= RDB_T_HASH ? 1 : t == RDB_T_ZSET2 ? 8 : t <= RDB_T_LIST_QUICKLIST ? 7 : t == RDB_T_STREAM ? 9 : t <= RDB_T_STREAM2 ? 10 : 11;
}

static int rdb_digits(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) if (!isdigit((unsigned char)p[i])) return 0;
    return 1;
}

/* "REDIS0010" -> Redis family, 10; "VALKEY080" -> Valkey family, 80. */
static int rdb_header(struct rdb_rd *r, struct rdb_head *h) {
    memset(h, 0, sizeof *h);
    if (r->len < 9) return rdb_bad(r, "not an RDB file: shorter than its 9-byte header");
    const char *p = (const char *)r->p;
    int redis = !memcmp(p, "REDIS", 5) && rdb_digits(p + 5, 4);
    int valkey = !memcmp(p, "VALKEY", 6) && rdb_digits(p + 6, 3);
    if (!redis && !valkey) return rdb_bad(r, "not an RDB file: the magic is neither REDIS0nnn nor VALKEYnnn");
    memcpy(h->magic, p, 9);
    h->valkey = r->valkey = valkey;
    h->version = (int)strtol(h->magic + (valkey ? 6 : 5), NULL, 10);   /* digits, checked */
    r->pos = 9;
    if ((!valkey && (h->version < 1 || h->version > 14)) || (valkey && h->version != 80))
        return rdb_bad(r, "RDB version %s is not one rcluster reads (REDIS0001-0014, VALKEY080)", h->magic);
    return 0;
}

/* One key as the walk hands it to a visitor; valid during the call only. */
struct rdb_key {
    sds name;
    unsigned type;
    const unsigned char *val;   /* the value's encoding, after the type byte */
    size_t vlen;
    long long expire_ms;        /* absolute unix ms, -1 for none */
    uint64_t db;                /* its database */
};

/* What a walk calls; a visitor returning -1 stops it (the visitor set rc->err). */
struct rdb_visitor {
    int (*on_key)(void *ctx, const struct rdb_key *k);
    int (*on_function)(void *ctx, const unsigned char *enc, size_t len);  /* the code's string encoding */
    void *ctx;
    int verify_crc;             /* check the trailer (the first pass over a file does) */
};

enum { RDB_WALK_BAD = -1, RDB_WALK_STOPPED = -2 };

/* Put the key's name before r's message (the first failure's text stays its cause). */
static void rdb_name_key(struct rdb_rd *r, const char *key) {
    char m[sizeof r->msg];
    snprintf(m, sizeof m, "%s", r->msg);
    snprintf(r->msg, sizeof r->msg, "key '%.60s': %.130s", key, m);
}

/* A key and its value at r: check the type before stepping over it (a module type
 * cannot be stepped over), then hand it to the visitor. */
static int rdb_walk_key(struct rdb_rd *r, unsigned type, long long expire, const struct rdb_visitor *v) {
    struct rdb_str ks;
    struct rdb_key k = { NULL, type, NULL, 0, expire, r->db };
    if (rdb_string(r, &ks) < 0 || rdb_str_decode(r, &ks, RDB_MAX_KEY, &k.name) < 0) return RDB_WALK_BAD;
    size_t start = r->pos;
    if (type == RDB_T_MODULE_PRE_GA || type == RDB_T_MODULE2) rdb_set_msg(r, "a module type (rcluster cannot read module data)");
    else if (!rdb_type_known(type, r->valkey)) rdb_set_msg(r, "value type %u is not one rcluster reads", type);
    else if (rdb_skip_value(r, type) == 0) {
        k.val = r->p + start;
        k.vlen = r->pos - start;
        int ret = v->on_key && v->on_key(v->ctx, &k) < 0 ? RDB_WALK_STOPPED : 0;
        sdsfree(k.name);
        return ret;
    }
    rdb_name_key(r, k.name);
    sdsfree(k.name);
    return RDB_WALK_BAD;
}

/* After the EOF opcode: the CRC-64 of everything before it (0 when the server saved
 * without checksums), then nothing. */
static int rdb_walk_trailer(struct rdb_rd *r, const struct rdb_head *h, const struct rdb_visitor *v) {
    if (h->version < 5 && !h->valkey) return r->pos == r->len ? 0 : rdb_bad(r, "bytes after the end of the RDB");
    size_t end = r->pos;
    if (rdb_need(r, 8) < 0) return RDB_WALK_BAD;
    uint64_t want = le64_get(r->p + end);
    r->pos += 8;
    if (r->pos != r->len) return rdb_bad(r, "%zu byte(s) after the end of the RDB", r->len - r->pos);
    if (v->verify_crc && want && crc64_jones(0, r->p, end) != want) {
        r->pos = end;
        return rdb_bad(r, "checksum mismatch: the file is corrupt (CRC-64 of its bytes is not the one it ends with)");
    }
    return 0;
}

/* The opcodes that carry no key: SELECTDB (the database of the keys that follow),
 * RESIZEDB, AUX, FREQ, IDLE, SLOT_INFO, FUNCTION2. 1 when op was EOF. */
static int rdb_walk_opcode(struct rdb_rd *r, unsigned op, long long *expire, const struct rdb_visitor *v) {
    uint64_t a;
    size_t start = r->pos;
    struct rdb_str s;
    switch (op) {
    case RDB_OP_EOF: return 1;
    case RDB_OP_SELECTDB:
        if (rdb_len(r, &a, NULL) < 0) return -1;
        if (a > INT_MAX) return rdb_bad(r, "database %llu: not a database number", (unsigned long long)a);
        r->db = a;
        return 0;
    case RDB_OP_RESIZEDB: return rdb_skip_lens(r, 2);
    case RDB_OP_AUX: return rdb_skip_strings(r, 2);
    case RDB_OP_FREQ: return rdb_skip(r, 1);
    case RDB_OP_IDLE: return rdb_skip_lens(r, 1);
    case RDB_OP_SLOT_INFO: return rdb_skip_lens(r, 3);
    case RDB_OP_EXPIRE:
        if (rdb_need(r, 4) < 0) return -1;
        *expire = (long long)((uint32_t)r->p[r->pos] | (uint32_t)r->p[r->pos + 1] << 8 | (uint32_t)r->p[r->pos + 2] << 16 | (uint32_t)r->p[r->pos + 3] << 24) * 1000;
        r->pos += 4;
        return 0;
    case RDB_OP_EXPIRE_MS:
        if (rdb_need(r, 8) < 0) return -1;
        *expire = (long long)le64_get(r->p + r->pos);
        if (*expire < 0) *expire = 0;   /* before 1970: expired */
        r->pos += 8;
        return 0;
    case RDB_OP_FUNCTION2:
        if (rdb_string(r, &s) < 0) return -1;
        return v->on_function && v->on_function(v->ctx, r->p + start, r->pos - start) < 0 ? RDB_WALK_STOPPED : 0;
    case RDB_OP_FUNCTION_PRE_GA: return rdb_bad(r, "functions of a Redis 7.0 release candidate (opcode 246)");
    case RDB_OP_MODULE_AUX: return rdb_bad(r, "module data (opcode 247): rcluster cannot read module data");
    }
    return rdb_bad(r, "unknown opcode %u", op);
}

/* Walk a whole RDB image: header, opcodes, keys, EOF, checksum. 0 when every byte was
 * read; RDB_WALK_BAD with r->msg at r->at; RDB_WALK_STOPPED when a visitor stopped it. */
static int rdb_walk(struct rdb_rd *r, struct rdb_head *h, const struct rdb_visitor *v) {
    if (rdb_header(r, h) < 0) return RDB_WALK_BAD;
    long long expire = -1;
    for (;;) {
        unsigned op;
        if (rdb_byte(r, &op) < 0) return RDB_WALK_BAD;
        if (op < RDB_OP_SLOT_INFO - 1) {   /* a value type (243 is an opcode in both families) */
            int k = rdb_walk_key(r, op, expire, v);
            if (k < 0) return k;
            expire = -1;
            continue;
        }
        int o = rdb_walk_opcode(r, op, &expire, v);
        if (o == 1) return rdb_walk_trailer(r, h, v) < 0 ? RDB_WALK_BAD : 0;
        if (o < 0) return o == RDB_WALK_STOPPED ? o : RDB_WALK_BAD;
    }
}

/* RESTORE's payload (DUMP's format): type byte, the value's encoding, RDB version (2
 * bytes, little endian), CRC-64 of all that (8 bytes, little endian). NULL on OOM. */
static sds rdb_dump_payload(unsigned type, const unsigned char *val, size_t vlen, int version) {
    sds p = sdsnewlen(NULL, 1 + vlen + 10);
    if (!p) return NULL;
    unsigned char *u = (unsigned char *)p;
    u[0] = (unsigned char)type;
    if (vlen) memcpy(u + 1, val, vlen);
    u[1 + vlen] = (unsigned char)(version & 0xff);
    u[2 + vlen] = (unsigned char)(version >> 8);
    le64_put(u + 3 + vlen, crc64_jones(0, u, 3 + vlen));
    return p;
}

/* --- Shared by backup, restore and import ------------------------------------------ */

static long long rc_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-12-02T00:01:34Z" */
static void iso_time(long long unix_ms, char *out, size_t len) {
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tmv;
    if (!gmtime_r(&t, &tmv)) snprintf(out, len, "?");
    else snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", (tmv.tm_year + 1900) % 10000, (tmv.tm_mon + 1) % 100,
                  tmv.tm_mday % 100, tmv.tm_hour % 100, tmv.tm_min % 100, tmv.tm_sec % 100);   /* not strftime: it pulls in musl's tz code */
}

/* "*3\r\n" / "$5\r\n" at p; returns the bytes written (at most 23). Pure. */
static size_t resp_put_header(char *p, char type, size_t n) {
    char digits[20];
    size_t k = 0;
    do { digits[k++] = (char)('0' + n % 10); n /= 10; } while (n);
    p[0] = type;
    for (size_t i = 0; i < k; i++) p[1 + i] = digits[k - 1 - i];
    p[1 + k] = '\r';
    p[2 + k] = '\n';
    return k + 3;
}

/* resp_append_command for binary words, the buffer sized once and no printf: a restore
 * sends a command per key. NULL on OOM (out is freed then). */
static sds resp_append_bin(sds out, int argc, const char **argv, const size_t *lens) {
    size_t need = 24;
    for (int i = 0; i < argc; i++) need += lens[i] + 25;
    sds t = out ? sdsMakeRoomFor(out, need) : NULL;
    if (!t) { sdsfree(out); return NULL; }
    char *p = t + sdslen(t);
    p += resp_put_header(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        p += resp_put_header(p, '$', lens[i]);
        if (lens[i]) memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    sdsIncrLen(t, (ssize_t)(p - (t + sdslen(t))));
    return t;
}

/* Queue a command whose words may hold any bytes (key names, RESTORE payloads) on x;
 * its reply is owed. */
static int sess_queue_bin(struct session *s, struct snode *x, int argc, const char **argv, const size_t *lens) {
    if (!x->up) return rc_fail_as(s->rc, RC_ERR_UNREACHABLE, "%s:%d is not reachable: %s", x->ip, x->port, x->err ? x->err : "?");
    if (!x->c.wbuf && !(x->c.wbuf = sdsempty())) return rc_fail_oom(s->rc);
    x->c.wbuf = resp_append_bin(x->c.wbuf, argc, argv, lens);
    if (!x->c.wbuf) return rc_fail_oom(s->rc);
    x->owed++;
    return 0;
}

/* --- backup -------------------------------------------------------------------------- */

#define BK_MARK 40

/* The last bytes of a stream, held back until more arrive: the 40-byte EOF mark of a
 * diskless transfer, or the 8-byte CRC trailer (not part of what it sums). */
struct tailhold {
    unsigned char b[BK_MARK];
    size_t n;
};

typedef int (*tail_emit_fn)(void *ctx, const unsigned char *p, size_t n);

/* Push n bytes through h, keeping its last `keep` (<= BK_MARK); what falls out goes to
 * emit, in order. */
static int tailhold_push(struct tailhold *h, size_t keep, const unsigned char *d, size_t n, tail_emit_fn emit, void *ctx) {
    if (h->n + n <= keep) {
        memcpy(h->b + h->n, d, n);
        h->n += n;
        return 0;
    }
    size_t out = h->n + n - keep, from_h = out < h->n ? out : h->n, from_d = out - from_h;
    if (from_h && emit(ctx, h->b, from_h) < 0) return -1;
    if (from_d && emit(ctx, d, from_d) < 0) return -1;
    memmove(h->b, h->b + from_h, h->n - from_h);
    h->n -= from_h;
    memcpy(h->b + h->n, d + from_d, n - from_d);
    h->n += n - from_d;
    return 0;
}

enum { BK_HEAD, BK_BODY, BK_DONE };

/* One RDB being fetched. */
struct bk_src {
    struct snode *x;            /* where it comes from */
    const struct snode *master; /* whose data it is: x, or the master x replicates */
    struct rconn c;
    int fd;
    sds path, part;             /* DIR/<master id>.rdb, and DIR/<master id>.rdb.part while it streams */
    int state;                  /* BK_* */
    int eofmark;                /* a diskless "$EOF:<mark>" transfer, else "$<len>" */
    char mark[BK_MARK];
    uint64_t left;              /* "$<len>": bytes still to come */
    sds head;                   /* the header line so far */
    struct tailhold markhold, crchold;
    uint64_t crc, bytes;
    uint64_t flushed;           /* bytes handed to the kernel's writeback (sync_file_range) */
    const struct crc64_tab *crctab;
    unsigned char magic[10];
    int64_t t_start, t_last;    /* monotonic ms: SYNC sent, last byte */
    double seconds;
    long long unix_ms;          /* wall clock at SYNC: when the snapshot was taken */
    int crc_ok;                 /* the RDB's own CRC-64 matched; 0: the server saved without one */
    int renamed;
    long delay_orig;            /* its repl-diskless-sync-delay while rcluster holds it at 0, else -1 */
};

struct backup {
    struct rc *rc;
    struct session s;
    const char *dir;
    int from_replicas;
    int diskless;               /* --diskless: offer diskless transfers whatever their delay */
    int disk;                   /* --disk: a disk-based transfer where a delay is set, no setting changed */
    long max_delay;             /* the longest repl-diskless-sync-delay of the sources, s */
    struct crc64_tab crctab;
    struct bk_src *src;
    int n;
};

static int bk_crc_emit(void *ctx, const unsigned char *p, size_t n) {
    struct bk_src *b = ctx;
    b->crc = crc64_jones_fast(b->crctab, b->crc, p, n);
    return 0;
}

#define BK_WRITEBACK (8u << 20)   /* start writing back every 8 MB, so that fsync has little left */

/* Bytes of the RDB itself: to the file, into the magic, and into the CRC, which lags
 * 8 bytes behind. -1 with errno on a failed write. */
static int bk_file_write(void *ctx, const unsigned char *p, size_t n) {
    struct bk_src *b = ctx;
    for (size_t i = 0; i < n && b->bytes + i < 9; i++) b->magic[b->bytes + i] = p[i];
    for (size_t off = 0; off < n; ) {
        ssize_t w = write(b->fd, p + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { if (w == 0) errno = ENOSPC; return -1; }
        off += (size_t)w;
    }
    b->bytes += n;
    if (b->bytes - b->flushed >= BK_WRITEBACK) {   /* a hint: its failure costs only speed */
        (void)sync_file_range(b->fd, (off64_t)b->flushed, (off64_t)(b->bytes - b->flushed), SYNC_FILE_RANGE_WRITE);
        b->flushed = b->bytes;
    }
    return tailhold_push(&b->crchold, 8, p, n, bk_crc_emit, b);
}

/* The header line: "$<len>" or "$EOF:<40-byte mark>"; "+FULLRESYNC ..." (PSYNC's) is
 * skipped, "-ERR ..." is the master's refusal. */
static int bk_head_line(struct rc *rc, struct bk_src *b) {
    size_t len = sdslen(b->head) - 2;
    const char *h = b->head;
    long long v;
    if (h[0] == '-') return rc_fail(rc, "%s: SYNC: %.*s", b->c.name, (int)len, h + 1);
    if (h[0] == '+') { sdsclear(b->head); return 0; }
    if (len == 5 + BK_MARK && !memcmp(h, "$EOF:", 5)) {
        b->eofmark = 1;
        memcpy(b->mark, h + 5, BK_MARK);
    } else if (len > 1 && h[0] == '$' && resp_parse_ll(h + 1, len - 1, 1, LLONG_MAX, &v) == 0) {
        b->left = (uint64_t)v;
    } else {
        return rc_fail(rc, "%s: SYNC: unexpected reply '%.60s' (not a replication stream)", b->c.name, h);
    }
    sdsclear(b->head);
    b->state = BK_BODY;
    return 0;
}

/* Header bytes; the "\n" keepalives a master sends while it forks come first. Returns
 * the bytes of p used, -1 with rc->err. */
static long bk_head(struct rc *rc, struct bk_src *b, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t hl = sdslen(b->head);
        if (hl == 0 && p[i] == '\n') continue;
        if (hl >= 256) return rc_fail(rc, "%s: SYNC: a header line longer than 256 bytes (not a replication stream)", b->c.name);
        if (!(b->head = rc_catlen(b->head, p + i, 1))) return rc_fail_oom(rc);
        if (p[i] == '\n' && hl > 0 && b->head[hl - 1] == '\r') return bk_head_line(rc, b) < 0 ? -1 : (long)(i + 1);
    }
    return (long)n;
}

static int bk_write_fail(struct rc *rc, struct bk_src *b) {
    return rc_fail(rc, "writing %s: %s", b->part, strerror(errno));
}

static int bk_body(struct rc *rc, struct bk_src *b, const unsigned char *p, size_t n) {
    if (b->eofmark) {
        if (tailhold_push(&b->markhold, BK_MARK, p, n, bk_file_write, b) < 0) return bk_write_fail(rc, b);
        if (b->markhold.n == BK_MARK && !memcmp(b->markhold.b, b->mark, BK_MARK)) b->state = BK_DONE;
        return 0;
    }
    size_t m = n < b->left ? n : (size_t)b->left;
    if (bk_file_write(b, p, m) < 0) return bk_write_fail(rc, b);
    b->left -= m;
    if (!b->left) b->state = BK_DONE;
    return 0;
}

/* Bytes from the master, in order: header, then the RDB (anything after it is ignored). */
static int bk_feed(struct rc *rc, struct bk_src *b, const unsigned char *p, size_t n) {
    while (n && b->state == BK_HEAD) {
        long used = bk_head(rc, b, p, n);
        if (used < 0) return -1;
        p += used;
        n -= (size_t)used;
    }
    return n && b->state == BK_BODY ? bk_body(rc, b, p, n) : 0;
}

/* The whole RDB is on disk: check it is one (magic, its own CRC-64), make it durable
 * and give it its name. */
static int bk_finish(struct rc *rc, struct bk_src *b) {
    b->seconds = (double)(rc_now_ms() - b->t_start) / 1000.0;
    rconn_close(&b->c);
    if (b->bytes < 9 + 1 + 8 || (memcmp(b->magic, "REDIS", 5) != 0 && memcmp(b->magic, "VALKEY", 6) != 0))
        return rc_fail(rc, "%s:%d: SYNC sent %llu bytes that are not an RDB file", b->x->ip, b->x->port, (unsigned long long)b->bytes);
    uint64_t trailer = le64_get(b->crchold.b);
    b->crc_ok = trailer != 0;
    if (trailer && trailer != b->crc)
        return rc_fail(rc, "%s:%d: the RDB's CRC-64 %016llx does not match its bytes (%016llx): transfer corrupted", b->x->ip, b->x->port,
                       (unsigned long long)trailer, (unsigned long long)b->crc);
    int bad = fsync(b->fd) < 0;
    bad |= close(b->fd) < 0;
    b->fd = -1;
    if (bad || rename(b->part, b->path) < 0) return rc_fail(rc, "writing %s: %s", b->path, strerror(errno));
    b->renamed = 1;
    rc_fsync_parent(b->path);
    return 0;
}

/* Each master's source: the master, or with --from-replicas a replica of it whose link
 * is up (else the master, with a warning). Every master with slots must answer. */
static int bk_pick_sources(struct backup *bk) {
    struct session *s = &bk->s;
    if (!(bk->src = calloc((size_t)s->n, sizeof *bk->src))) return rc_fail_oom(bk->rc);
    crc64_tab_init(&bk->crctab);
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i], *from = x;
        if (!snode_is_master(x) || snode_slot_count(x) == 0) continue;
        if (!x->up) return rc_fail_kind_msg(bk->rc, x->err_kind, rc_sprintf("master %s:%d (%.40s) is not reachable: %s; nothing backed up", x->ip, x->port, x->id, x->err));
        for (int j = 0; bk->from_replicas && j < s->n && from == x; j++) {
            struct snode *y = &s->nodes[j];
            if (y->up && !snode_is_master(y) && !strcmp(snode_master_id(y), x->id) && !strcmp(y->link, "up")) from = y;
        }
        if (bk->from_replicas && from == x) rc_warn(bk->rc, "master %s:%d has no replica with its link up: its RDB comes from the master", x->ip, x->port);
        struct bk_src *b = &bk->src[bk->n++];
        if (from->diskless_delay > bk->max_delay) bk->max_delay = from->diskless_delay;
        b->x = from;
        b->master = x;
        b->fd = -1;
        b->c.fd = -1;
        b->delay_orig = -1;
        b->crctab = &bk->crctab;
        b->path = rc_sprintf("%s/%s.rdb", bk->dir, x->id);
        b->part = rc_sprintf("%s/%s.rdb.part", bk->dir, x->id);
        if (!b->path || !b->part || !(b->head = sdsempty())) return rc_fail_oom(bk->rc);
    }
    return bk->n ? 0 : rc_fail(bk->rc, "no master owns slots: nothing to back up");
}

/* A source whose repl-diskless-sync-delay is set would wait that long (5 s by default)
 * before a diskless transfer; saving to its disk first (as redis-cli --cluster backup
 * has it do) costs a write and a read of the whole RDB. So it gets 0 for the moment it
 * forks: set just before its SYNC, its own value back once the transfer's header
 * arrives (the fork has happened then) or on any exit path. 0 when set; -1 (a warning)
 * when it cannot be: the transfer is disk-based then. */
static int bk_delay_hold(struct backup *bk, struct bk_src *b) {
    struct rc *rc = bk->rc;
    struct snode *x = b->x;
    if (x->owed || x->c.fd < 0) return -1;
    struct resp *r = rconn_call(rc, &x->c, "CONFIG SET repl-diskless-sync-delay", "CONFIG", "SET", "repl-diskless-sync-delay", "0", RESP_END);
    if (!r) { rc_warn(rc, "%s (a disk-based transfer then)", rc->err ? rc->err : "CONFIG SET failed"); return -1; }
    resp_free(r);
    b->delay_orig = x->diskless_delay;
    rc_set_abandon_note("repl-diskless-sync-delay 0 on the backup's sources (CONFIG SET it back: 5 is the default)");
    return 0;
}

/* Put a source's own repl-diskless-sync-delay back (a warning when it cannot be). */
static void bk_delay_release(struct backup *bk, struct bk_src *b) {
    struct rc *rc = bk->rc;
    if (b->delay_orig < 0) return;
    char v[24];
    snprintf(v, sizeof v, "%ld", b->delay_orig);
    struct rc_err_saved saved = rc_err_save(rc);
    struct resp *r = rconn_call(rc, &b->x->c, "CONFIG SET repl-diskless-sync-delay", "CONFIG", "SET", "repl-diskless-sync-delay", v, RESP_END);
    if (!r) rc_warn(rc, "%s:%d: repl-diskless-sync-delay is still 0 (was %s): %s; set it back with CONFIG SET repl-diskless-sync-delay %s", b->x->ip,
                    b->x->port, v, rc->err ? rc->err : "?", v);
    resp_free(r);
    rc_err_restore(rc, &saved);
    b->delay_orig = -1;
    int held = 0;
    for (int i = 0; i < bk->n; i++) held |= bk->src[i].delay_orig >= 0;
    if (!held) rc_set_abandon_note(NULL);
}

/* Ask for one RDB and nothing after it: REPLCONF rdb-only 1 (the master ends the link
 * after the RDB), capa eof (diskless transfers: "$EOF:<mark>"), and to Valkey >= 9 its
 * own version so that it sends its native format; then SYNC. A source whose
 * repl-diskless-sync-delay is set has it held at 0 until its transfer starts
 * (bk_delay_hold); with --disk it is not offered a diskless transfer instead, and with
 * --diskless it waits that delay. */
static int bk_ask(struct backup *bk, struct bk_src *b) {
    struct rc *rc = bk->rc;
    struct resp *r[3] = { NULL, NULL, NULL };
    const char *ver = (b->x->caps & SRV_ATOMIC_VALKEY) && !strncmp(b->x->server, "Valkey ", 7) ? b->x->server + 7 : NULL;
    int ret = -1;
    if (rconn_open(rc, &b->c, b->x->conn_ip, b->x->conn_port) < 0) return -1;
    if (rconn_queue(rc, &b->c, "REPLCONF", "rdb-only", "1", RESP_END) < 0 || !(r[0] = rconn_read(rc, &b->c, rc_now_ms() + rc->io_timeout_ms))) goto out;
    if (r[0]->type == RESP_ERROR && !strncmp(r[0]->str, "NOAUTH", 6)) { rc_fail_as(rc, RC_ERR_AUTH, "%s: %s", b->c.name, r[0]->str); goto out; }
    /* A server without rdb-only (before 7.0) streams on after the RDB: only "$<len>" says
     * where the RDB ends then, so it is not offered a diskless transfer. */
    int rdb_only = r[0]->type != RESP_ERROR;
    int hold = rdb_only && !bk->diskless && !bk->disk && b->x->diskless_delay > 0 && bk_delay_hold(bk, b) == 0;
    int eof = rdb_only && (bk->diskless || b->x->diskless_delay <= 0 || hold);
    if (!rdb_only) rc_warn(rc, "%s: REPLCONF rdb-only: %s (an older server: rcluster stops reading after the RDB)", b->c.name, r[0]->str);
    if ((eof && rconn_queue(rc, &b->c, "REPLCONF", "capa", "eof", RESP_END) < 0) || (ver && rconn_queue(rc, &b->c, "REPLCONF", "version", ver, RESP_END) < 0)) goto out;
    for (int k = 1; k < 1 + eof + (ver != NULL); k++)
        if (!(r[k] = rconn_read(rc, &b->c, rc_now_ms() + rc->io_timeout_ms))) goto out;
    b->fd = open(b->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (b->fd < 0) { rc_fail(rc, "creating %s: %s", b->part, strerror(errno)); goto out; }
    if (rconn_queue(rc, &b->c, "SYNC", RESP_END) < 0 || rconn_flush(rc, &b->c, rc_now_ms() + rc->io_timeout_ms) < 0) goto out;
    b->t_start = b->t_last = rc_now_ms();
    b->unix_ms = rc_wall_ms();
    ret = 0;
out:
    for (int k = 0; k < 3; k++) resp_free(r[k]);
    return ret;
}

static int bk_start(struct backup *bk, struct bk_src *b) {
    if (!b->x) return rc_fail(bk->rc, "backup: a source without a node");
    return bk_ask(bk, b) < 0 ? rc_wrap(bk->rc, "asking %s:%d for its RDB", b->x->ip, b->x->port) : 0;
}

/* "12.3 MB" */
static void bytes_human(double v, char *out, size_t len) {
    static const char *const unit[] = { "B", "KB", "MB", "GB", "TB" };
    int u = 0;
    while (v >= 1000 && u < 4) { v /= 1000; u++; }
    snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void bk_progress(struct backup *bk) {
    uint64_t got = 0, total = 0;
    int done = 0, known = 1;
    for (int i = 0; i < bk->n; i++) {
        struct bk_src *b = &bk->src[i];
        got += b->bytes;
        done += b->state == BK_DONE;
        if (b->state == BK_HEAD || b->eofmark) known = 0;
        else total += b->bytes + b->left;
    }
    double secs = (double)(rc_now_ms() - bk->rc->t0) / 1000.0;
    char g[32], t[32], rate[32];
    bytes_human((double)got, g, sizeof g);
    bytes_human((double)total, t, sizeof t);
    bytes_human(secs > 0 ? (double)got / secs : 0, rate, sizeof rate);
    rc_progress(bk->rc, "backup: %s%s%s received, %s/s, %d of %d RDB file(s) done", g, known ? " of " : "", known ? t : "", rate, done, bk->n);
}

/* Read one source that poll says has bytes; done with it once its RDB is complete. */
static int bk_read(struct backup *bk, struct bk_src *b, unsigned char *buf, size_t cap) {
    struct rc *rc = bk->rc;
    ssize_t got = recv(b->c.fd, buf, cap, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    if (got <= 0)
        return rc_fail_as(rc, RC_ERR_UNREACHABLE, "%s: the connection ended before the end of the RDB (%llu bytes received)%s%s", b->c.name,
                          (unsigned long long)b->bytes, got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
    b->t_last = rc_now_ms();
    if (bk_feed(rc, b, buf, (size_t)got) < 0) return -1;
    if (b->state != BK_HEAD) bk_delay_release(bk, b);
    return b->state == BK_DONE ? bk_finish(rc, b) : 0;
}

/* Read every stream at once until each RDB is complete; a source silent for --timeout
 * seconds (masters send "\n" every second while they fork) is a failure. */
static int bk_pump(struct backup *bk) {
    struct rc *rc = bk->rc;
    size_t cap = (size_t)1 << 20;
    unsigned char *buf = malloc(cap);
    struct pollfd *pf = calloc((size_t)bk->n, sizeof *pf);
    int *idx = calloc((size_t)bk->n, sizeof *idx), ret = 0;
    int64_t next_report = rc_now_ms() + 1000, idle_ms = (int64_t)(rc->timeout * 1000);
    if (!buf || !pf || !idx) ret = rc_fail_oom(rc);
    while (ret == 0) {
        int active = 0;
        for (int i = 0; i < bk->n; i++)
            if (bk->src[i].state != BK_DONE) { pf[active] = (struct pollfd){ bk->src[i].c.fd, POLLIN, 0 }; idx[active++] = i; }
        if (!active) break;
        int r = poll(pf, (nfds_t)active, 200);
        if (rc_interrupted()) { ret = rc_fail_as(rc, RC_ERR_INTERRUPTED, "backup interrupted"); break; }
        if (r < 0 && errno != EINTR) { ret = rc_fail_errno(rc, "poll"); break; }
        for (int k = 0; ret == 0 && r > 0 && k < active; k++)
            if (pf[k].revents) ret = bk_read(bk, &bk->src[idx[k]], buf, cap);
        for (int k = 0; ret == 0 && k < active; k++) {
            struct bk_src *b = &bk->src[idx[k]];
            if (b->state != BK_DONE && rc_now_ms() - b->t_last > idle_ms)
                ret = rc_fail_as(rc, RC_ERR_TIMEOUT, "%s: nothing received for %.0f s (%llu bytes so far)", b->c.name, rc->timeout, (unsigned long long)b->bytes);
        }
        if (ret == 0 && rc_now_ms() >= next_report) { bk_progress(bk); next_report = rc_now_ms() + 1000; }
    }
    free(buf);
    free(pf);
    free(idx);
    return ret;
}

/* One file of the backup as JSON (the manifest and --json say the same). */
static sds bk_file_json(sds js, const struct bk_src *b) {
    char when[32];
    iso_time(b->unix_ms, when, sizeof when);
    const char *slash = strrchr(b->path, '/');
    js = rc_cat(js, "{\"file\":");
    js = rc_json_str(js, slash ? slash + 1 : b->path);
    js = rc_catprintf(js, ",\"master\":\"%s\",\"source\":\"%s\",\"source_addr\":\"%s:%d\",\"source_role\":\"%s\",\"server\":", b->master->id, b->x->id,
                      b->x->ip, b->x->port, b->x == b->master ? "master" : "replica");
    js = rc_json_str(js, b->x->server);
    js = rc_cat(js, ",\"magic\":");
    js = rc_json_str(js, (const char *)b->magic);
    js = rc_catprintf(js, ",\"rdb_version\":%d,\"bytes\":%llu,\"crc64\":\"%016llx\",\"rdb_checksum\":\"%s\",\"snapshot_time\":\"%s\","
                      "\"snapshot_unix_ms\":%lld,\"seconds\":%.3f}", (int)strtol((const char *)b->magic + (b->magic[0] == 'V' ? 6 : 5), NULL, 10),
                      (unsigned long long)b->bytes, (unsigned long long)b->crc, b->crc_ok ? "verified" : "absent", when, b->unix_ms, b->seconds);
    return js;
}

/* The cluster as it was: every node, its role, master and slots. */
static sds bk_nodes_json(sds js, const struct session *s) {
    js = rc_cat(js, "[");
    for (int i = 0; js && i < s->n; i++) {
        const struct snode *x = &s->nodes[i];
        const struct nodeinfo *ni = snode_slots(x);
        int m = snode_is_master(x);
        js = rc_catprintf(js, "%s{\"id\":\"%s\",\"addr\":\"%s:%d\",\"role\":\"%s\",\"master\":%s%s%s,\"reachable\":%s,\"ranges\":[", i ? "," : "", x->id,
                          x->ip, x->port, m ? "master" : "replica", m ? "" : "\"", m ? "null" : snode_master_id(x), m ? "" : "\"", x->up ? "true" : "false");
        for (int r = 0; js && m && ni && r < ni->nranges; r++) js = rc_catprintf(js, "%s[%d,%d]", r ? "," : "", ni->ranges[r][0], ni->ranges[r][1]);
        js = rc_cat(js, "],\"server\":");
        js = rc_json_str(js, x->up ? x->server : NULL);
        js = rc_cat(js, "}");
    }
    return rc_cat(js, "]");
}

static sds bk_manifest(const struct backup *bk, long long started_ms) {
    char when[32];
    iso_time(started_ms, when, sizeof when);
    sds servers = sess_servers(&bk->s);
    sds js = rc_catprintf(sdsempty(), "{\"format\":\"rcluster-backup\",\"format_version\":1,\"created\":\"%s\",\"created_unix_ms\":%lld,"
                          "\"rcluster\":\"%s\",\"seed\":\"%s:%d\",\"server\":", when, started_ms, RCLUSTER_VERSION,
                          bk->s.nodes[bk->s.seed].conn_ip, bk->s.nodes[bk->s.seed].conn_port);
    js = rc_json_str(js, servers);
    js = rc_cat(js, ",\"nodes\":");
    js = bk_nodes_json(js, &bk->s);
    js = rc_cat(js, ",\"files\":[");
    for (int i = 0; js && i < bk->n; i++) js = bk_file_json(i ? rc_cat(js, ",") : js, &bk->src[i]);
    sdsfree(servers);
    return rc_cat(js, "]}\n");
}

/* On failure nothing of this run stays: partial and finished files alike. */
static void bk_cleanup(struct backup *bk, int failed) {
    for (int i = 0; i < bk->n; i++) bk_delay_release(bk, &bk->src[i]);
    for (int i = 0; i < bk->n; i++) {
        struct bk_src *b = &bk->src[i];
        rconn_free(&b->c);
        if (b->fd >= 0) close(b->fd);
        if (failed && b->part) unlink(b->part);
        if (failed && b->renamed) unlink(b->path);
        sdsfree(b->path);
        sdsfree(b->part);
        sdsfree(b->head);
    }
    free(bk->src);
    sess_free(&bk->s);
}

static void bk_report(const struct backup *bk) {
    struct rc *rc = bk->rc;
    uint64_t total = 0;
    for (int i = 0; i < bk->n; i++) total += bk->src[i].bytes;
    double secs = (double)(rc_now_ms() - rc->t0) / 1000.0;
    char t[32], rate[32];
    bytes_human((double)total, t, sizeof t);
    bytes_human(secs > 0 ? (double)total / secs : 0, rate, sizeof rate);
    if (rc->json) {
        sds js = rc_cat(sdsempty(), "{\"ok\":true,\"command\":\"backup\",\"dir\":");
        js = rc_catprintf(rc_json_str(js, bk->dir), ",\"bytes\":%llu,\"seconds\":%.3f,\"files\":[", (unsigned long long)total, secs);
        for (int i = 0; js && i < bk->n; i++) js = bk_file_json(i ? rc_cat(js, ",") : js, &bk->src[i]);
        js = rc_cat(js, "]}\n");
        rc_json_out(rc, js);
        sdsfree(js);
        return;
    }
    printf("backup: %d RDB file(s), %s in %.1f s (%s/s) to %s/ (manifest.json)\n", bk->n, t, secs, rate, bk->dir);
    for (int i = 0; i < bk->n; i++) {
        const struct bk_src *b = &bk->src[i];
        printf("  %.40s.rdb  %s:%d (%s)  %s  %llu bytes  crc64 %016llx%s\n", b->master->id, b->x->ip, b->x->port, b->x == b->master ? "master" : "replica",
               (const char *)b->magic, (unsigned long long)b->bytes, (unsigned long long)b->crc, b->crc_ok ? "" : " (the server saved none)");
    }
}

static void usage_backup(FILE *f) {
    fputs("usage: rcluster backup ADDR DIR [--from-replicas] [--disk | --diskless] [--json]\n"
          "\n"
          "Fetch every master's RDB at once over the replication protocol (REPLCONF rdb-only,\n"
          "SYNC) into DIR/<master id>.rdb, each fsynced, and write\n"
          "DIR/manifest.json: the topology (ids, addresses, roles, slot ranges), the server,\n"
          "each file's RDB magic and version, size, CRC-64 and snapshot time. DIR is created;\n"
          "one that already holds a manifest is refused. --from-replicas takes each master's\n"
          "RDB from one of its replicas (its link up), sparing the masters. On failure the\n"
          "files of this run are removed. Put a backup back with `rcluster restore`.\n"
          "Each source sends its RDB diskless (no file on its disk): one whose\n"
          "repl-diskless-sync-delay is set gets 0 from just before its SYNC until its\n"
          "transfer starts, then its own value back (on every exit path). --disk: such a\n"
          "source saves to its own disk first and no setting is changed (as redis-cli\n"
          "--cluster backup does); --diskless: it waits its delay.\n", f);
}

enum { OPT_DATA_FROM_REPLICAS = OPT_FIRST_COMMAND_OPT + 120, OPT_DATA_REPLACE, OPT_DATA_DRY_RUN, OPT_DATA_FROM, OPT_DATA_COPY,
       OPT_DATA_FROM_USER, OPT_DATA_FROM_PASS, OPT_DATA_FROM_PASS_FILE, OPT_DATA_PIPELINE, OPT_DATA_MIGRATE_TIMEOUT, OPT_DATA_DISKLESS, OPT_DATA_DISK };

/* Options of backup, restore and import. */
struct data_opts {
    int from_replicas, replace, dry_run, copy, diskless, disk;
    const char *from;
    sds from_user, from_pass;
    int pipeline, migrate_timeout_ms;
};

static int data_on_opt(struct rc *rc, int opt, const char *arg, void *ctx) {
    struct data_opts *o = ctx;
    switch (opt) {
    case OPT_DATA_FROM_REPLICAS: o->from_replicas = 1; return 0;
    case OPT_DATA_DISKLESS: o->diskless = 1; return 0;
    case OPT_DATA_DISK: o->disk = 1; return 0;
    case OPT_DATA_REPLACE: o->replace = 1; return 0;
    case OPT_DATA_DRY_RUN: o->dry_run = 1; return 0;
    case OPT_DATA_COPY: o->copy = 1; return 0;
    case OPT_DATA_FROM: o->from = arg; return 0;
    case OPT_DATA_FROM_USER:
        sdsfree(o->from_user);
        return (o->from_user = sdsnew(arg)) ? 0 : rc_fail_oom(rc);
    case OPT_DATA_FROM_PASS:
        sdsfree(o->from_pass);
        return (o->from_pass = sdsnew(arg)) ? 0 : rc_fail_oom(rc);
    case OPT_DATA_FROM_PASS_FILE: return rc_read_password_file(rc, "--from-password-file", arg, &o->from_pass);
    case OPT_DATA_PIPELINE: return parse_migrate_opt(rc, 1, arg, &o->pipeline);
    case OPT_DATA_MIGRATE_TIMEOUT: return parse_migrate_opt(rc, 0, arg, &o->migrate_timeout_ms);
    }
    return rc_fail(rc, "unknown option");
}

/* Parse a data command's options and expect `want` positional arguments (ADDR may be
 * redis-cli's `HOST PORT`). 1 after --help. */
static int data_parse(struct rc *rc, int argc, char **argv, const struct option *opts, int nopts, void (*usage)(FILE *),
                      struct data_opts *o, int want) {
    memset(o, 0, sizeof *o);
    o->pipeline = 2000;   /* keys per SCAN of import: 2000 measured ~7% faster than 1000, 4000 no better */
    o->migrate_timeout_ms = 60000;
    int r = cmd_parse_opts(rc, argc, argv, opts, nopts, usage, data_on_opt, o);
    if (r) return r;
    argc = args_join_host_port(rc, argc, argv, optind, 0);
    if (argc - optind != want) {
        return rc_fail_as(rc, RC_ERR_USAGE, "%s: expected %d argument(s), got %d (see rcluster %s --help)", argv[0], want, argc - optind, argv[0]);
    }
    return 0;
}

static void data_opts_free(struct data_opts *o) {
    sdsfree(o->from_user);
    sdsfree(o->from_pass);
}

/* Create DIR; refuse one that already holds a backup. */
static int bk_prepare_dir(struct rc *rc, const char *dir) {
    if (conf_mkdirs(rc, dir, 0755, NULL) < 0) return rc_wrap(rc, "backup dir");
    sds m = rc_sprintf("%s/manifest.json", dir);
    if (!m) return rc_fail_oom(rc);
    int exists = access(m, F_OK) == 0;
    sdsfree(m);
    if (exists) { return rc_fail_as(rc, RC_ERR_USAGE, "%s already holds a backup (manifest.json); give another DIR", dir); }
    return access(dir, W_OK | X_OK) == 0 ? 0 : rc_fail(rc, "backup dir %s is not writable: %s", dir, strerror(errno));
}

/* backup ADDR DIR: every master's RDB at once into DIR, with a manifest; 0 when all arrived intact. */
static int cmd_backup(struct rc *rc, int argc, char **argv) {
    static const struct option opts[] = { { "from-replicas", no_argument, NULL, OPT_DATA_FROM_REPLICAS },
                                          { "diskless", no_argument, NULL, OPT_DATA_DISKLESS }, { "disk", no_argument, NULL, OPT_DATA_DISK } };
    struct data_opts o;
    int r = data_parse(rc, argc, argv, opts, 3, usage_backup, &o, 2);
    if (r == 0 && o.disk && o.diskless) r = rc_fail_as(rc, RC_ERR_USAGE, "backup: --disk and --diskless exclude each other");
    if (r) { data_opts_free(&o); return r < 0 ? -1 : 0; }
    struct backup bk;
    memset(&bk, 0, sizeof bk);
    bk.rc = rc;
    bk.dir = argv[optind + 1];
    bk.from_replicas = o.from_replicas;
    bk.diskless = o.diskless;
    bk.disk = o.disk;
    long long started = rc_wall_ms();
    int ret = -1;
    if (day2_open(rc, &bk.s, argv[optind]) < 0 || bk_pick_sources(&bk) < 0 || bk_prepare_dir(rc, bk.dir) < 0) goto out;
    rc_progress(rc, "backup: fetching %d RDB file(s) at once into %s", bk.n, bk.dir);
    if (bk.max_delay > 0 && bk.diskless) rc_progress(rc, "backup: a diskless transfer starts after the source's repl-diskless-sync-delay (%ld s)", bk.max_delay);
    for (int i = 0; i < bk.n; i++)
        if (bk_start(&bk, &bk.src[i]) < 0) goto out;
    if (bk_pump(&bk) < 0) goto out;
    sds manifest = bk_manifest(&bk, started), mpath = rc_sprintf("%s/manifest.json", bk.dir);
    if (!manifest || !mpath) rc_fail_oom(rc);
    else if (rc_write_file(rc, mpath, manifest, sdslen(manifest), 0644) == 0) ret = 0;
    sdsfree(manifest);
    sdsfree(mpath);
    if (ret == 0) bk_report(&bk);
out:
    bk_cleanup(&bk, ret < 0);
    data_opts_free(&o);
    return ret;
}

/* --- restore ------------------------------------------------------------------------- */

/* An RDB file mapped read-only: the reader walks it as a buffer and RESTORE payloads
 * are cut from it. */
struct rdb_map {
    sds path;
    const unsigned char *p;
    size_t len;
};

static int rdb_map_open(struct rc *rc, const char *path, struct rdb_map *m) {
    memset(m, 0, sizeof *m);
    if (!(m->path = sdsnew(path))) return rc_fail_oom(rc);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return rc_fail(rc, "reading %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 9) {
        close(fd);
        return rc_fail_as(rc, RC_ERR_CORRUPT, "%s: not an RDB file (%s); nothing written", path, S_ISREG(st.st_mode) ? "shorter than its header" : "not a regular file");
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return rc_fail(rc, "reading %s: mmap: %s", path, strerror(errno));
    m->p = p;
    m->len = (size_t)st.st_size;
    return 0;
}

static void rdb_map_close(struct rdb_map *m) {
    if (m->p) munmap((void *)(uintptr_t)m->p, m->len);
    sdsfree(m->path);
    memset(m, 0, sizeof *m);
}

#define RS_BATCH        512             /* replies owed by one master before all are read */
#define RS_BATCH_BYTES  (8L << 20)      /* or this much queued for it */
#define RS_NAMES        5               /* existing keys named in the message */

/* Per master: the keys whose replies are owed, in order (to name them in errors). */
struct rs_lane {
    sds *keys;
    int n, cap;
};

enum { RS_PREFLIGHT, RS_EXISTS, RS_WRITE };

struct restore {
    struct rc *rc;
    struct session s;
    int owner[CLUSTER_SLOTS];
    struct rs_lane *lanes;      /* one per session node */
    long long *per_node;        /* keys per master */
    struct rdb_map *files;
    int nfiles;
    int replace, dry_run;
    int tgt_max, tgt_v80;       /* payload versions every master reads */
    int tgt_dbs;                /* databases every master has (cluster-databases), RS_ANY_DB */
    int *node_db;               /* per session node: the database its connection has selected */
    struct rs_db { uint64_t db; long long keys; } *dbs;   /* keys per database of the files */
    int ndbs;
    int pass;                   /* RS_* */
    struct rdb_head head;       /* of the file being walked */
    const char *file;
    long long now_ms;
    int64_t next_report;        /* monotonic ms of the next progress line */
    int64_t t0;                 /* monotonic ms: the restore began (up --restore: after forming) */
    long long keys, expired, restored, busy, errors;
    long long reencoded;        /* values re-encoded for older masters */
    sds busy_names, first_error;
    sds *fns;                   /* function libraries (their string encodings), deduplicated */
    sds *fn_names;              /* their names (NULL: none found in the code) */
    int nfns;
};

/* --- Re-encoding for older targets: a listpack set (RDB 11) as a plain set, a STREAM3
 * (RDB 11) as a STREAM2 (RDB 10): what Redis 7.0 reads. --- */

static sds rdb_put_len(sds out, uint64_t v) {
    unsigned char b[9];
    size_t n;
    if (v < 64) { b[0] = (unsigned char)v; n = 1; }
    else if (v < 16384) { b[0] = (unsigned char)(0x40 | (v >> 8)); b[1] = (unsigned char)v; n = 2; }
    else if (v <= UINT32_MAX) { b[0] = 0x80; for (int i = 0; i < 4; i++) b[1 + i] = (unsigned char)(v >> (24 - 8 * i)); n = 5; }
    else { b[0] = 0x81; for (int i = 0; i < 8; i++) b[1 + i] = (unsigned char)(v >> (56 - 8 * i)); n = 9; }
    return rc_catlen(out, b, n);
}

/* Bytes of a listpack entry's back length, for an entry of l bytes. Pure. */
static size_t lp_backlen_size(size_t l) {
    return l < 128 ? 1 : l < 16384 ? 2 : l < 2097152 ? 3 : l < 268435456 ? 4 : 5;
}

static long long lp_int_le(const unsigned char *p, size_t n) {
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++) u |= (uint64_t)p[i] << (8 * i);
    if (n < 8 && (u >> (8 * n - 1)) & 1) u |= ~(uint64_t)0 << (8 * n);   /* sign-extend */
    return (long long)u;
}

/* One listpack entry at lp[p]: a string (*s, *slen) or an integer (*s NULL, *iv); its
 * size with the back length in *size. -1 when malformed. Pure. */
static int lp_entry(const unsigned char *lp, size_t len, size_t p, const unsigned char **s, size_t *slen, long long *iv, size_t *size) {
    unsigned b = lp[p];
    size_t hdr = 1, dlen = 0, left = len - p;
    *s = NULL;
    if (!(b & 0x80)) *iv = b;
    else if ((b & 0xC0) == 0x80) dlen = b & 0x3f;
    else if ((b & 0xE0) == 0xC0) { if (left < 2) return -1; unsigned v = (b & 0x1f) << 8 | lp[p + 1]; *iv = v >= 4096 ? (long long)v - 8192 : v; hdr = 2; }
    else if ((b & 0xF0) == 0xE0) { if (left < 2) return -1; dlen = (b & 0x0f) << 8 | lp[p + 1]; hdr = 2; }
    else if (b == 0xF0) { if (left < 5) return -1; dlen = (size_t)lp_int_le(lp + p + 1, 4) & 0xffffffffu; hdr = 5; }
    else if (b >= 0xF1 && b <= 0xF4) {
        static const size_t w[4] = { 2, 3, 4, 8 };
        if (left < 1 + w[b - 0xF1]) return -1;
        *iv = lp_int_le(lp + p + 1, w[b - 0xF1]);
        hdr = 1 + w[b - 0xF1];
    } else return -1;
    if ((b & 0xC0) == 0x80 || (b & 0xF0) == 0xE0 || b == 0xF0) { *s = lp + p + hdr; *slen = dlen; }
    if (dlen > left || hdr + dlen > left) return -1;
    *size = hdr + dlen + lp_backlen_size(hdr + dlen);
    return *size <= left ? 0 : -1;
}

/* A listpack's elements as RDB strings after their count: the body of a plain set
 * (type 2). NULL when the listpack is malformed or on OOM. */
static sds lp_to_rdb_set(const unsigned char *lp, size_t len) {
    if (len < 7 || lp[len - 1] != 0xFF || (size_t)lp_int_le(lp, 4) != len) return NULL;
    sds items = sdsempty();
    uint64_t n = 0;
    for (size_t p = 6; items && p < len - 1; n++) {
        const unsigned char *str;
        size_t slen = 0, size;
        long long iv = 0;
        char num[24];
        if (lp_entry(lp, len - 1, p, &str, &slen, &iv, &size) < 0) { sdsfree(items); return NULL; }
        if (!str) { slen = (size_t)snprintf(num, sizeof num, "%lld", iv); str = (const unsigned char *)num; }
        items = rc_catlen(rdb_put_len(items, slen), str, slen);
        p += size;
    }
    sds out = items ? rdb_put_len(sdsempty(), n) : NULL;
    if (out) out = rc_catlen(out, items, sdslen(items));
    sdsfree(items);
    return out;
}

/* The version a RESTORE payload says: the file's own when every master reads it, else
 * the newest they read when the value's type is that old; -1 when they cannot read it. Pure. */
static int rs_payload_version(const struct rdb_head *h, int tgt_max, int tgt_v80, unsigned type) {
    if (h->valkey && tgt_v80) return 80;
    int need = rdb_type_min_version(type, h->valkey), own = h->valkey ? 11 : h->version;   /* below 22 Valkey's types are RDB 11's */
    if (need > own) return -1;   /* HASH_2: only Valkey >= 9 reads it */
    if (own <= tgt_max) return own;
    return need <= tgt_max ? tgt_max : -1;
}

/* A stream as an older type: STREAM3 (RDB 11) for masters reading 11, else STREAM2
 * (RDB 10, without the consumers' active times). Redis' 26/27 lose their IDMP state and
 * NACK lists, so only streams where those are empty and default go. */
static sds rdb_reencode_stream(int valkey, unsigned *type, const unsigned char *val, size_t vlen, int max, const char **why, int *corrupt) {
    if (max < 10) { *why = "a stream with consumer group offsets needs RDB 10 or newer"; return NULL; }
    struct rdb_rd r;
    memset(&r, 0, sizeof r);
    r.p = val;
    r.len = vlen;
    r.valkey = valkey;
    r.cut_active = max < 11 && *type >= RDB_T_STREAM3;
    sds out = NULL;
    if (!(r.cut = malloc(16 * sizeof *r.cut))) return NULL;
    r.capcut = 16;
    if (rdb_skip_stream(&r, *type) < 0 || r.pos != vlen) { *why = "a corrupt stream"; *corrupt = 1; }
    else if (r.nacks) *why = "a stream with NACKed entries (XNACK), which older stream types cannot hold";
    else if (r.pids) *why = "a stream with IDMP producers (XADD IDMP), which older stream types cannot hold";
    else if (r.idmp_custom) *why = "a stream with its own IDMP settings (XCFGSET), which older stream types cannot hold";
    else if ((out = sdsempty())) {
        size_t from = 0;
        for (size_t i = 0; out && i + 1 < r.ncut; i += 2) { out = rc_catlen(out, val + from, r.cut[i] - from); from = r.cut[i] + r.cut[i + 1]; }
        out = rc_catlen(out, val + from, vlen - from);
        if (out) *type = max < 11 ? RDB_T_STREAM2 : RDB_T_STREAM3;
    }
    free(r.cut);
    return out;
}

/* The fields of a hash with field expiries: each one's field and value as RDB strings,
 * one after the other in fv, and its expiry (unix ms, -1: none). */
struct hfe_fields {
    sds fv;
    size_t *end;            /* where field i's pair ends in fv */
    long long *exp;
    size_t n, cap;
};

static int hfe_add(struct hfe_fields *h, const unsigned char *pair, size_t len, long long exp) {
    if (h->n == h->cap) {
        size_t cap = h->cap * 2 + 16;
        size_t *e = realloc(h->end, cap * sizeof *e);
        if (e) h->end = e;
        long long *x = e ? realloc(h->exp, cap * sizeof *x) : NULL;
        if (!x) return -1;
        h->exp = x;
        h->cap = cap;
    }
    if (!(h->fv = rc_catlen(h->fv, pair, len))) return -1;
    h->end[h->n] = sdslen(h->fv);
    h->exp[h->n++] = exp;
    return 0;
}

static void hfe_free(struct hfe_fields *h) {
    sdsfree(h->fv);
    free(h->end);
    free(h->exp);
}

/* A listpack entry as an RDB string: its bytes, or an integer's decimal digits. */
static sds lp_entry_as_rdb(sds out, const unsigned char *str, size_t slen, long long iv) {
    char num[24];
    if (!str) { slen = (size_t)snprintf(num, sizeof num, "%lld", iv); str = (const unsigned char *)num; }
    return rc_catlen(rdb_put_len(out, slen), str, slen);
}

/* Redis' listpack hashes with field expiries (23, 25): (field, value, expiry) triples,
 * expiry 0 for none. */
static int hfe_read_listpack(struct rdb_rd *r, struct hfe_fields *h) {
    struct rdb_str st;
    sds lp = NULL, pair = sdsempty();
    int ret = -1;
    if (!pair || rdb_string(r, &st) < 0 || rdb_str_decode(r, &st, (size_t)RESP_MAX_BULK * 8, &lp) < 0) goto out;
    const unsigned char *b = (const unsigned char *)lp;
    size_t len = sdslen(lp), p = 6;
    if (len < 7 || b[len - 1] != 0xFF || (size_t)lp_int_le(b, 4) != len) goto out;
    int k = 0;
    for (; p < len - 1; k = (k + 1) % 3) {
        const unsigned char *str;
        size_t slen = 0, size;
        long long iv = 0;
        if (lp_entry(b, len - 1, p, &str, &slen, &iv, &size) < 0) goto out;
        p += size;
        if (k < 2) {   /* field, value: kept until their expiry comes */
            if (!(pair = lp_entry_as_rdb(pair, str, slen, iv))) goto out;
            continue;
        }
        if (str || iv < 0 || hfe_add(h, (const unsigned char *)pair, sdslen(pair), iv ? iv : -1) < 0) goto out;
        sdsclear(pair);
    }
    ret = k == 0 ? 0 : -1;   /* no field without its expiry */
out:
    sdsfree(lp);
    sdsfree(pair);
    return ret;
}

/* Any hash with field expiries into hfe_fields: Valkey's HASH_2, Redis' 22-25. */
static int hfe_read(int valkey, unsigned type, const unsigned char *val, size_t vlen, struct hfe_fields *h) {
    struct rdb_rd r;
    memset(&r, 0, sizeof r);
    r.p = val;
    r.len = vlen;
    if (!(h->fv = sdsempty())) return -1;
    if (!valkey && (type == RDB_T_REDIS_HASH_LPEX || type == RDB_T_REDIS_HASH_META) && rdb_skip(&r, 8) < 0) return -1;
    uint64_t min = type == RDB_T_REDIS_HASH_META && !valkey ? le64_get(val) : 0;
    if (!valkey && (type == RDB_T_REDIS_HASH_LPEX || type == RDB_T_REDIS_HASH_LPEX_RC))
        return hfe_read_listpack(&r, h) == 0 && r.pos == vlen ? 0 : -1;
    uint64_t n, ttl = 0;
    if (rdb_count(&r, 3, &n) < 0) return -1;
    for (uint64_t i = 0; i < n; i++) {
        if (!valkey && rdb_len(&r, &ttl, NULL) < 0) return -1;
        size_t at = r.pos;
        if (rdb_skip_strings(&r, 2) < 0) return -1;
        size_t end = r.pos;
        uint64_t exp = UINT64_MAX;   /* none */
        if (valkey) {
            if (rdb_need(&r, 8) < 0) return -1;
            exp = le64_get(val + r.pos);
            r.pos += 8;
        } else if (ttl) {
            exp = type == RDB_T_REDIS_HASH_META ? ttl + min - 1 : ttl;
        }
        if (hfe_add(h, val + at, end - at, exp > (uint64_t)LLONG_MAX ? -1 : (long long)exp) < 0) return -1;
    }
    return r.pos == vlen ? 0 : -1;
}

/* A hash with field expiries for masters that read another type: Valkey's HASH_2 (RDB
 * 80) for Valkey >= 9, Redis' 24 (RDB 12) for Redis >= 7.4, else a plain hash when no
 * field has an expiry. *ver says the payload's version. */
static sds rdb_reencode_hfe(const struct rdb_head *hd, unsigned *type, int *ver, const unsigned char *val, size_t vlen, int max, int v80,
                            const char **why, int *corrupt) {
    struct hfe_fields h;
    memset(&h, 0, sizeof h);
    if (hfe_read(hd->valkey, *type, val, vlen, &h) < 0) { *why = "a corrupt hash with field expiries"; *corrupt = 1; hfe_free(&h); return NULL; }
    long long min = -1;
    for (size_t i = 0; i < h.n; i++) if (h.exp[i] >= 0 && (min < 0 || h.exp[i] < min)) min = h.exp[i];
    int to = -1;
    if (v80) to = RDB_T_VALKEY_HASH2;                               /* Valkey >= 9.0 */
    else if (min < 0) to = RDB_T_HASH;                              /* no field expires */
    else if (max >= 12 && hd->valkey) to = RDB_T_REDIS_HASH_META;   /* Redis >= 7.4 */
    if (to < 0) {
        *why = "a hash with field expiries (HPEXPIRE), which these masters cannot hold (Valkey >= 9.0 and Redis >= 7.4 can)";
        hfe_free(&h);
        return NULL;
    }
    unsigned char b8[8];
    le64_put(b8, (uint64_t)min);
    sds out = to == RDB_T_REDIS_HASH_META ? rc_catlen(sdsempty(), b8, 8) : sdsempty();
    out = out ? rdb_put_len(out, h.n) : NULL;
    for (size_t i = 0, from = 0; out && i < h.n; from = h.end[i++]) {
        if (to == RDB_T_REDIS_HASH_META) out = rdb_put_len(out, h.exp[i] < 0 ? 0 : (uint64_t)(h.exp[i] - min) + 1);
        out = out ? rc_catlen(out, h.fv + from, h.end[i] - from) : NULL;
        if (to == RDB_T_VALKEY_HASH2 && out) { le64_put(b8, (uint64_t)h.exp[i]); out = rc_catlen(out, b8, 8); }
    }
    hfe_free(&h);
    if (!out) return NULL;
    *ver = to == RDB_T_VALKEY_HASH2 ? 80 : to == RDB_T_REDIS_HASH_META ? 12 : rs_payload_version(hd, max, v80, RDB_T_HASH);
    *type = (unsigned)to;
    return out;
}

/* A value whose type the masters cannot read, re-encoded into one they can: *type and
 * *ver become the payload's. NULL with *why when it cannot be (*corrupt: because the
 * value is broken), or with *why NULL when its type has no other encoding. */
static sds rdb_reencode(const struct rdb_head *h, unsigned *type, int *ver, const unsigned char *val, size_t vlen, int max, int v80,
                        const char **why, int *corrupt) {
    *why = NULL;
    *corrupt = 0;
    if (rdb_type_is_hfe(*type, h->valkey)) return rdb_reencode_hfe(h, type, ver, val, vlen, max, v80, why, corrupt);
    sds out = NULL;
    if (*type == RDB_T_SET_LISTPACK) {
        struct rdb_rd r;
        struct rdb_str st;
        sds lp = NULL;
        memset(&r, 0, sizeof r);
        r.p = val;
        r.len = vlen;
        if (rdb_string(&r, &st) == 0 && rdb_str_decode(&r, &st, (size_t)RESP_MAX_BULK * 8, &lp) == 0) out = lp_to_rdb_set((const unsigned char *)lp, sdslen(lp));
        sdsfree(lp);
        if (out) *type = RDB_T_SET;
        else { *why = "a corrupt listpack set"; *corrupt = 1; }
    } else if (*type == RDB_T_STREAM3 || (!h->valkey && (*type == RDB_T_REDIS_STREAM4 || *type == RDB_T_REDIS_STREAM5))) {
        out = rdb_reencode_stream(h->valkey, type, val, vlen, max, why, corrupt);
    }
    if (out) *ver = rs_payload_version(h, max, v80, *type);
    if (out && *ver < 0) { sdsfree(out); out = NULL; *why = NULL; }
    return out;
}

static int rs_lane_push(struct rc *rc, struct rs_lane *l, sds key) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        sds *k = realloc(l->keys, (size_t)cap * sizeof *k);
        if (!k) return rc_fail_oom(rc);
        l->keys = k;
        l->cap = cap;
    }
    if (key && !(l->keys[l->n] = sdsdup(key))) return rc_fail_oom(rc);
    if (!key) l->keys[l->n] = NULL;   /* a SELECT */
    l->n++;
    return 0;
}

static void rs_lane_clear(struct rs_lane *l) {
    for (int i = 0; i < l->n; i++) sdsfree(l->keys[i]);
    l->n = 0;
}

static void rs_note_busy(struct restore *rs, const char *key) {
    if (rs->busy++ >= RS_NAMES) return;
    if (!rs->busy_names) rs->busy_names = sdsempty();
    rs->busy_names = rc_catprintf(rs->busy_names, "%s'%.60s'", sdslen(rs->busy_names) ? ", " : "", key);
}

/* One reply: EXISTS says whether the key is there; RESTORE says OK, BUSYKEY or why not;
 * SELECT (key NULL) says OK. */
static void rs_take_reply(struct restore *rs, const struct snode *x, const char *key, const struct resp *r) {
    if (!key) {
        if (r->type == RESP_ERROR && !rs->first_error) rs->first_error = rc_sprintf("%s:%d: SELECT: %s", x->ip, x->port, r->str);
        rs->errors += r->type == RESP_ERROR;
        return;
    }
    if (rs->pass == RS_EXISTS) {
        if (r->type == RESP_INTEGER && r->integer > 0) rs_note_busy(rs, key);
        else if (r->type == RESP_ERROR && !rs->first_error) rs->first_error = rc_sprintf("%s:%d: EXISTS '%.60s': %s", x->ip, x->port, key, r->str);
        return;
    }
    if (r->type != RESP_ERROR) { rs->restored++; return; }
    if (!strncmp(r->str, "BUSYKEY", 7)) { rs_note_busy(rs, key); return; }
    rs->errors++;
    if (!rs->first_error) rs->first_error = rc_sprintf("%s:%d: RESTORE '%.60s': %s", x->ip, x->port, key, r->str);
}

/* Send what is queued on every master and read every reply. */
static int rs_settle(struct restore *rs) {
    struct session *s = &rs->s;
    if (sess_flush_all(s) < 0) return -1;
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        for (int k = 0; x->owed > 0; k++) {
            struct resp *r = sess_reply(s, x, 0);
            if (!r) return rc_wrap(rs->rc, "%s:%d", x->ip, x->port);
            rs_take_reply(rs, x, k < rs->lanes[i].n ? rs->lanes[i].keys[k] : "?", r);
            resp_free(r);
        }
        rs_lane_clear(&rs->lanes[i]);
    }
    return 0;
}

static int rs_after_queue(struct restore *rs, int o) {
    struct snode *x = &rs->s.nodes[o];
    if (x->owed < RS_BATCH && (!x->c.wbuf || (long)sdslen(x->c.wbuf) < RS_BATCH_BYTES)) return 0;
    if (rs_settle(rs) < 0) return -1;
    if (rc_interrupted()) return rc_fail_as(rs->rc, RC_ERR_INTERRUPTED, "restore interrupted after %lld keys", rs->restored);
    if (rs->pass == RS_WRITE && rc_now_ms() >= rs->next_report) {
        rc_progress(rs->rc, "restore: %lld of %lld keys", rs->restored, rs->keys - rs->expired);
        rs->next_report = rc_now_ms() + 1000;
    }
    return 0;
}

/* How k goes to the masters: its own bytes (*out NULL) or re-encoded (*out), with the
 * payload's *type and *ver. -1 with *why (NULL: the type has no other encoding) and
 * *corrupt when it cannot. */
static int rs_value(const struct restore *rs, const struct rdb_key *k, unsigned *type, int *ver, sds *out, const char **why, int *corrupt) {
    *type = k->type;
    *out = NULL;
    *why = NULL;
    *corrupt = 0;
    if ((*ver = rs_payload_version(&rs->head, rs->tgt_max, rs->tgt_v80, k->type)) >= 0) return 0;
    *out = rdb_reencode(&rs->head, type, ver, k->val, k->vlen, rs->tgt_max, rs->tgt_v80, why, corrupt);
    return *out ? 0 : -1;
}

/* Queue SELECT db on master o when its connection has another selected (its reply is
 * owed like a key's, with no key). */
static int rs_select(struct restore *rs, int o, uint64_t db) {
    if ((uint64_t)rs->node_db[o] == db) return 0;
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)db);
    const char *argv[2] = { "SELECT", num };
    size_t lens[2] = { 6, strlen(num) };
    if (sess_queue_bin(&rs->s, &rs->s.nodes[o], 2, argv, lens) < 0 || rs_lane_push(rs->rc, &rs->lanes[o], NULL) < 0) return -1;
    rs->node_db[o] = (int)db;
    return 0;
}

static int rs_queue_exists(struct restore *rs, int o, const struct rdb_key *k) {
    const char *argv[2] = { "EXISTS", k->name };
    size_t lens[2] = { 6, sdslen(k->name) };
    if (rs_select(rs, o, k->db) < 0 || sess_queue_bin(&rs->s, &rs->s.nodes[o], 2, argv, lens) < 0 || rs_lane_push(rs->rc, &rs->lanes[o], k->name) < 0) return -1;
    return rs_after_queue(rs, o);
}

static int rs_queue_restore(struct restore *rs, int o, const struct rdb_key *k) {
    unsigned type;
    int ver, corrupt;
    sds val, payload;
    const char *why;
    if (rs_value(rs, k, &type, &ver, &val, &why, &corrupt) < 0)   /* the preflight found it goes */
        return rc_fail(rs->rc, "%s: key '%.60s': cannot re-encode it for RDB %d: %s", rs->file, k->name, rs->tgt_max, why ? why : "?");
    if (val) {
        payload = rdb_dump_payload(type, (const unsigned char *)val, sdslen(val), ver);
        sdsfree(val);
        rs->reencoded++;
    } else payload = rdb_dump_payload(k->type, k->val, k->vlen, ver);
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", k->expire_ms >= 0 ? k->expire_ms : 0);
    const char *argv[6] = { "RESTORE", k->name, ttl, payload, "ABSTTL", "REPLACE" };
    size_t lens[6] = { 7, sdslen(k->name), strlen(ttl), payload ? sdslen(payload) : 0, 6, 7 };
    int ret = payload ? rs_select(rs, o, k->db) : rc_fail_oom(rs->rc);
    if (ret == 0) ret = sess_queue_bin(&rs->s, &rs->s.nodes[o], rs->replace ? 6 : 5, argv, lens);
    sdsfree(payload);
    if (ret == 0) ret = rs_lane_push(rs->rc, &rs->lanes[o], k->name);
    return ret < 0 ? -1 : rs_after_queue(rs, o);
}

/* Count a key of database db (the preflight says which the masters lack). */
static int rs_count_db(struct restore *rs, uint64_t db) {
    for (int i = 0; i < rs->ndbs; i++) if (rs->dbs[i].db == db) { rs->dbs[i].keys++; return 0; }
    struct rs_db *d = realloc(rs->dbs, (size_t)(rs->ndbs + 1) * sizeof *d);
    if (!d) return rc_fail_oom(rs->rc);
    rs->dbs = d;
    rs->dbs[rs->ndbs++] = (struct rs_db){ db, 1 };
    return 0;
}

/* Preflight of one key: its type must be one every master reads, or re-encode into one. */
static int rs_check_key(struct restore *rs, int o, const struct rdb_key *k, int expired) {
    rs->keys++;
    if (expired) { rs->expired++; return 0; }
    unsigned type;
    int ver, corrupt;
    sds val;
    const char *why;
    if (rs_value(rs, k, &type, &ver, &val, &why, &corrupt) < 0) {
        if (corrupt) return rc_fail_as(rs->rc, RC_ERR_CORRUPT, "%s: key '%.60s': %s; nothing written", rs->file, k->name, why);
        if (why) return rc_fail_as(rs->rc, RC_ERR_INCOMPATIBLE, "%s: key '%.60s': %s; the cluster's masters read payloads up to RDB %d; nothing written",
                                   rs->file, k->name, why, rs->tgt_max);
        return rc_fail_as(rs->rc, RC_ERR_INCOMPATIBLE, "%s: key '%.60s': value type %u needs RDB %d or newer; the cluster's masters read up to %d; nothing written",
                          rs->file, k->name, k->type, rdb_type_min_version(k->type, rs->head.valkey), rs->tgt_max);
    }
    sdsfree(val);
    rs->per_node[o]++;
    return rs_count_db(rs, k->db);
}

/* Keys of a database the masters lack are refused before the first write, naming it. */
static int rs_check_dbs(struct restore *rs) {
    for (int i = 0; i < rs->ndbs; i++) {
        if (rs->tgt_dbs == RS_ANY_DB || rs->dbs[i].db < (uint64_t)rs->tgt_dbs) continue;
        return rc_fail_as(rs->rc, RC_ERR_INCOMPATIBLE, "%lld key(s) in database %llu: the cluster's masters have %s%d database%s (Valkey >= 9.0 in cluster mode "
                          "has cluster-databases N; Redis only database 0); nothing written", rs->dbs[i].keys, (unsigned long long)rs->dbs[i].db,
                          rs->tgt_dbs == 1 ? "only " : "", rs->tgt_dbs, rs->tgt_dbs == 1 ? " (0)" : "s");
    }
    return 0;
}

/* The databases every master with slots has: CONFIG GET cluster-databases (Valkey >= 9.0),
 * 1 where it is not known. */
static int rs_target_dbs(struct restore *rs) {
    struct session *s = &rs->s;
    rs->tgt_dbs = INT_MAX;
    for (int i = 0; i < s->n; i++) {
        struct snode *x = &s->nodes[i];
        if (!x->up || !snode_is_master(x) || !snode_slot_count(x)) continue;
        const char *argv[3] = { "CONFIG", "GET", "cluster-databases" };
        size_t lens[3] = { 6, 3, 17 };
        if (sess_queue_bin(s, x, 3, argv, lens) < 0 || sess_flush_all(s) < 0) return -1;
        struct resp *r = sess_reply(s, x, 0);
        if (!r) return rc_wrap(rs->rc, "%s:%d: CONFIG GET cluster-databases", x->ip, x->port);
        long long v = 1;
        if (r->type != RESP_ARRAY || r->n != 2 || r->elem[1]->type != RESP_BULK || resp_parse_ll(r->elem[1]->str, sdslen(r->elem[1]->str), 1, INT_MAX, &v) < 0) v = 1;
        resp_free(r);
        if (v < rs->tgt_dbs) rs->tgt_dbs = (int)v;
    }
    if (rs->tgt_dbs == INT_MAX) rs->tgt_dbs = 1;
    return 0;
}

static int rs_on_key(void *ctx, const struct rdb_key *k) {
    struct restore *rs = ctx;
    int expired = k->expire_ms >= 0 && k->expire_ms <= rs->now_ms;
    int o = rs->owner[cluster_key_slot(k->name, sdslen(k->name))];
    if (o < 0) return rc_fail(rs->rc, "key '%.60s': no master owns slot %d", k->name, cluster_key_slot(k->name, sdslen(k->name)));
    if (rs->pass == RS_PREFLIGHT) return rs_check_key(rs, o, k, expired);
    if (expired) return 0;
    return rs->pass == RS_EXISTS ? rs_queue_exists(rs, o, k) : rs_queue_restore(rs, o, k);
}

/* The library name in a function's code: its first line is "#!<engine> name=<name> ...".
 * NULL when there is none (or on OOM). Pure. */
static sds fn_library_name(const char *code, size_t len) {
    size_t eol = 0;
    while (eol < len && code[eol] != '\n') eol++;
    if (eol < 2 || memcmp(code, "#!", 2) != 0) return NULL;
    for (size_t i = 3; i + 5 <= eol; i++) {
        if (code[i - 1] != ' ' || memcmp(code + i, "name=", 5) != 0) continue;
        size_t b = i + 5, e = b;
        while (e < eol && code[e] != ' ' && code[e] != '\r') e++;
        return e > b ? sdsnewlen(code + b, e - b) : NULL;
    }
    return NULL;
}

/* The library name of a FUNCTION2 record (the code's string encoding), or NULL. */
static sds fn_record_name(const unsigned char *enc, size_t len) {
    struct rdb_rd r;
    struct rdb_str st;
    sds code = NULL, name = NULL;
    memset(&r, 0, sizeof r);
    r.p = enc;
    r.len = len;
    if (rdb_string(&r, &st) == 0 && rdb_str_decode(&r, &st, RDB_MAX_KEY, &code) == 0) name = fn_library_name(code, sdslen(code));
    sdsfree(code);
    return name;
}

/* Every master has every function library: keep one copy of each. */
static int rs_on_function(void *ctx, const unsigned char *enc, size_t len) {
    struct restore *rs = ctx;
    if (rs->pass != RS_PREFLIGHT) return 0;
    for (int i = 0; i < rs->nfns; i++)
        if (sdslen(rs->fns[i]) == len && !memcmp(rs->fns[i], enc, len)) return 0;
    sds *grown = realloc(rs->fns, (size_t)(rs->nfns + 1) * sizeof *grown);
    if (grown) rs->fns = grown;
    sds *names = grown ? realloc(rs->fn_names, (size_t)(rs->nfns + 1) * sizeof *names) : NULL;
    if (!names) return rc_fail_oom(rs->rc);
    rs->fn_names = names;
    if (!(rs->fns[rs->nfns] = sdsnewlen(enc, len))) return rc_fail_oom(rs->rc);
    rs->fn_names[rs->nfns++] = fn_record_name(enc, len);
    return 0;
}

/* Without --replace a function library the cluster already has is refused before any
 * write, like a key (FUNCTION LIST LIBRARYNAME on every master). */
static int rs_check_functions(struct restore *rs) {
    struct session *s = &rs->s;
    for (int f = 0; f < rs->nfns; f++) {
        if (!rs->fn_names[f]) continue;
        for (int i = 0; i < s->n; i++) {
            struct snode *x = &s->nodes[i];
            if (!x->up || !snode_is_master(x) || !snode_slot_count(x)) continue;
            const char *argv[4] = { "FUNCTION", "LIST", "LIBRARYNAME", rs->fn_names[f] };
            size_t lens[4] = { 8, 4, 11, sdslen(rs->fn_names[f]) };
            if (sess_queue_bin(s, x, 4, argv, lens) < 0) return -1;
        }
        if (sess_flush_all(s) < 0) return -1;
        for (int i = 0; i < s->n; i++) {
            struct snode *x = &s->nodes[i];
            while (x->owed > 0) {
                struct resp *r = sess_reply(s, x, 0);
                if (!r) return rc_wrap(rs->rc, "%s:%d: FUNCTION LIST", x->ip, x->port);
                int there = r->type == RESP_ARRAY && r->n > 0;
                resp_free(r);
                if (there) {
                    sess_drain_all(s, "FUNCTION LIST");
                    return rc_fail_as(rs->rc, RC_ERR_EXISTS, "function library '%.60s' already exists on %s:%d; nothing written (--replace replaces it)",
                                      rs->fn_names[f], x->ip, x->port);
                }
            }
        }
    }
    return 0;
}

/* One pass over every file: preflight (every byte and checksum, before any write),
 * EXISTS, or RESTORE. */
static int rs_walk_all(struct restore *rs, int pass) {
    struct rc *rc = rs->rc;
    rs->pass = pass;
    for (int i = 0; i < rs->nfiles; i++) {
        struct rdb_map *m = &rs->files[i];
        struct rdb_rd r;
        memset(&r, 0, sizeof r);
        r.p = m->p;
        r.len = m->len;
        struct rdb_visitor v = { rs_on_key, rs_on_function, rs, pass == RS_PREFLIGHT };
        rs->file = m->path;
        int w = rdb_walk(&r, &rs->head, &v);
        if (w == RDB_WALK_BAD)
            return rc_fail_as(rc, RC_ERR_CORRUPT, "%s: at byte %zu: %s%s", m->path, r.at, r.msg, pass == RS_PREFLIGHT ? "; nothing written" : "");
        if (w == RDB_WALK_STOPPED) return -1;
        if (pass != RS_PREFLIGHT && rs_settle(rs) < 0) return -1;
    }
    return 0;
}

/* The payload versions every master with slots reads (server_payload_versions; one
 * that is not known sets no limit). */
static void rs_target_versions(struct restore *rs) {
    rs->tgt_max = 1000;
    rs->tgt_v80 = 1;
    for (int i = 0; i < rs->s.n; i++) {
        const struct snode *x = &rs->s.nodes[i];
        if (!x->up || !snode_is_master(x) || !snode_slot_count(x)) continue;
        if (x->payload_r && x->payload_r < rs->tgt_max) rs->tgt_max = x->payload_r;
        rs->tgt_v80 &= (x->caps & SRV_ATOMIC_VALKEY) != 0;
    }
}

/* The files of a backup: those its manifest lists (each must be there, its size as
 * written), else every DIR/ *.rdb; or the one FILE given. */
static int rs_list_manifest(struct rc *rc, const char *dir, const char *manifest, sds **out, int *n) {
    json_error_s je;
    json_value_s *root = json_parse(manifest, strlen(manifest), &je);
    const json_value_s *files = json_get(root, "files");
    int ret = 0;
    if (!root || json_type(files) != JSON_ARRAY) { json_free(root); return rc_fail_as(rc, RC_ERR_CORRUPT, "%s/manifest.json: not a backup manifest%s%s", dir, root ? "" : ": ", root ? "" : je.message); }
    *n = 0;
    sds *names = calloc(json_length(files) + 1, sizeof *names);
    if (!names) { json_free(root); return rc_fail_oom(rc); }
    *out = names;
    for (size_t i = 0; ret == 0 && i < json_length(files); i++) {
        const char *name = json_string(json_get(json_at(files, i), "file"));
        double bytes = json_number(json_get(json_at(files, i), "bytes"), -1);
        struct stat st;
        if (!name || strchr(name, '/')) { ret = rc_fail_as(rc, RC_ERR_CORRUPT, "%s/manifest.json: file %zu has no valid name", dir, i); break; }
        sds path = rc_sprintf("%s/%s", dir, name);
        if (!path) { ret = rc_fail_oom(rc); break; }
        names[(*n)++] = path;
        if (stat(path, &st) < 0) ret = rc_fail_as(rc, RC_ERR_CORRUPT, "%s: listed in the manifest: %s; nothing written", path, strerror(errno));
        else if ((double)st.st_size != bytes)
            ret = rc_fail_as(rc, RC_ERR_CORRUPT, "%s: %lld bytes, the manifest says %.0f (truncated or changed); nothing written", path, (long long)st.st_size, bytes);
    }
    json_free(root);
    return ret;
}

static int rs_list_files(struct rc *rc, const char *path, sds **out, int *n) {
    struct stat st;
    *out = NULL;
    *n = 0;
    if (stat(path, &st) < 0) { return rc_fail_as(rc, RC_ERR_USAGE, "%s: %s", path, strerror(errno)); }
    if (!S_ISDIR(st.st_mode)) {
        if (!(*out = calloc(1, sizeof **out)) || !((*out)[0] = sdsnew(path))) return rc_fail_oom(rc);
        *n = 1;
        return 0;
    }
    sds mpath = rc_sprintf("%s/manifest.json", path);
    if (!mpath) return rc_fail_oom(rc);
    if (access(mpath, F_OK) == 0) {
        sds manifest = rc_read_file(rc, mpath, 64L << 20);
        sdsfree(mpath);
        if (!manifest) return -1;
        int r = rs_list_manifest(rc, path, manifest, out, n);
        sdsfree(manifest);
        return r;
    }
    sdsfree(mpath);
    sds pat = rc_sprintf("%s/*.rdb", path);
    size_t ng = 0;
    if (!pat || rc_glob_simple(rc, pat, out, &ng) < 0) { sdsfree(pat); return pat ? -1 : rc_fail_oom(rc); }
    sdsfree(pat);
    *n = (int)ng;
    if (*n == 0) { return rc_fail_as(rc, RC_ERR_USAGE, "%s: no manifest.json and no *.rdb file in it", path); }
    return 0;
}

static int rs_open_files(struct restore *rs, const char *path) {
    sds *names = NULL;
    int n = 0, ret = rs_list_files(rs->rc, path, &names, &n);
    if (ret == 0 && n == 0) ret = rc_fail_as(rs->rc, RC_ERR_USAGE, "%s: no RDB file to restore", path);
    if (ret == 0 && !(rs->files = calloc((size_t)n, sizeof *rs->files))) ret = rc_fail_oom(rs->rc);
    for (int i = 0; ret == 0 && i < n; i++) {
        ret = rdb_map_open(rs->rc, names[i], &rs->files[i]);
        if (ret == 0) rs->nfiles++;
    }
    for (int i = 0; i < n; i++) sdsfree(names[i]);
    free(names);
    return ret;
}

/* Functions go first, to every master: a library that is already there stops the
 * restore before any key is written (unless --replace). */
static int rs_restore_functions(struct restore *rs) {
    struct session *s = &rs->s;
    for (int f = 0; f < rs->nfns; f++) {
        sds payload = rdb_dump_payload(RDB_OP_FUNCTION2, (const unsigned char *)rs->fns[f], sdslen(rs->fns[f]),
                                       rs_payload_version(&rs->head, rs->tgt_max, rs->tgt_v80, RDB_T_STRING));
        if (!payload) return rc_fail_oom(rs->rc);
        for (int i = 0; i < s->n; i++) {
            struct snode *x = &s->nodes[i];
            if (!x->up || !snode_is_master(x) || !snode_slot_count(x)) continue;
            const char *argv[4] = { "FUNCTION", "RESTORE", payload, rs->replace ? "REPLACE" : "APPEND" };
            size_t lens[4] = { 8, 7, sdslen(payload), strlen(argv[3]) };
            if (sess_queue_bin(s, x, 4, argv, lens) < 0) { sdsfree(payload); return -1; }
        }
        sdsfree(payload);
        if (sess_drain_all(s, "FUNCTION RESTORE") < 0) return rc_wrap(rs->rc, "restoring function libraries (--replace replaces them)");
    }
    return 0;
}

static void rs_free(struct restore *rs) {
    for (int i = 0; rs->lanes && i < rs->s.n; i++) { rs_lane_clear(&rs->lanes[i]); free(rs->lanes[i].keys); }
    free(rs->lanes);
    free(rs->per_node);
    free(rs->node_db);
    free(rs->dbs);
    for (int i = 0; i < rs->nfiles; i++) rdb_map_close(&rs->files[i]);
    free(rs->files);
    for (int i = 0; i < rs->nfns; i++) { sdsfree(rs->fns[i]); sdsfree(rs->fn_names[i]); }
    free(rs->fns);
    free(rs->fn_names);
    sdsfree(rs->busy_names);
    sdsfree(rs->first_error);
    sess_free(&rs->s);
}

static void rs_report(struct restore *rs) {
    struct rc *rc = rs->rc;
    double secs = (double)(rc_now_ms() - rs->t0) / 1000.0;
    long long live = rs->keys - rs->expired;
    if (rc->json) {
        sds js = rc_catprintf(sdsempty(), "{\"ok\":true,\"command\":\"restore\",\"dry_run\":%s,\"files\":%d,\"keys\":%lld,\"restored\":%lld,"
                              "\"expired_skipped\":%lld,\"reencoded\":%lld,\"functions\":%d,\"seconds\":%.3f,\"keys_per_second\":%.0f,\"masters\":[",
                              rs->dry_run ? "true" : "false", rs->nfiles, live, rs->restored, rs->expired, rs->reencoded, rs->nfns, secs, secs > 0 ? (double)rs->restored / secs : 0);
        for (int i = 0, first = 1; js && i < rs->s.n; i++) {
            if (!rs->per_node[i]) continue;
            js = rc_catprintf(js, "%s{\"id\":\"%s\",\"addr\":\"%s:%d\",\"keys\":%lld}", first ? "" : ",", rs->s.nodes[i].id, rs->s.nodes[i].ip, rs->s.nodes[i].port, rs->per_node[i]);
            first = 0;
        }
        js = rc_cat(js, "]}\n");
        rc_json_out(rc, js);
        sdsfree(js);
        return;
    }
    for (int i = 0; i < rs->s.n; i++)
        if (rs->per_node[i]) printf("  %s:%d (%.8s...)  %lld keys\n", rs->s.nodes[i].ip, rs->s.nodes[i].port, rs->s.nodes[i].id, rs->per_node[i]);
    if (rs->dry_run)
        printf("restore: dry run: %lld keys and %d function librar%s from %d file(s) would be restored (%lld expired skipped); nothing written\n",
               live, rs->nfns, rs->nfns == 1 ? "y" : "ies", rs->nfiles, rs->expired);
    else
        printf("restore: %lld keys and %d function librar%s restored from %d file(s) in %.1f s (%.0f keys/s); %lld expired skipped%s\n", rs->restored,
               rs->nfns, rs->nfns == 1 ? "y" : "ies", rs->nfiles, secs, secs > 0 ? (double)rs->restored / secs : 0, rs->expired,
               rs->reencoded ? "; listpack sets and newer streams re-encoded for the older masters" : "");
}

static void usage_restore(FILE *f) {
    fputs("usage: rcluster restore ADDR DIR|FILE.rdb [--replace] [--dry-run] [--json]\n"
          "\n"
          "Put a backup (DIR with manifest.json, or any *.rdb files) into the running cluster\n"
          "ADDR belongs to, whatever its shape or server: each key goes to the master owning\n"
          "its slot (pipelined RESTORE key ttl payload ABSTTL), function libraries to every\n"
          "master (FUNCTION RESTORE). Before the first write every file is read to the end\n"
          "and its CRC-64 checked; a truncated or corrupt file, a module type or a value the\n"
          "masters cannot hold is refused, naming the key (listpack sets, newer streams and\n"
          "hashes with field expiries are re-encoded where the masters have an equivalent).\n"
          "Keys of database N go into database N where every master has it (Valkey >= 9.0,\n"
          "cluster-databases), else they are refused, naming the database.\n"
          "Keys already expired are skipped. Keys that already exist are refused unless\n"
          "--replace. --dry-run does all the checks and says what would be written.\n", f);
}

/* A restore of the backup at path into the cluster addr belongs to; 0 when every key
 * is in. report: print the result (text or --json) when done. */
static int restore_run(struct rc *rc, const char *addr, const char *path, int replace, int dry_run, int report) {
    struct restore rs;
    memset(&rs, 0, sizeof rs);
    rs.rc = rc;
    rs.replace = replace;
    rs.dry_run = dry_run;
    rs.now_ms = rc_wall_ms();
    rs.next_report = rc_now_ms() + 1000;
    rs.t0 = rc_now_ms();
    int ret = -1;
    if (rs_open_files(&rs, path) < 0 || day2_open(rc, &rs.s, addr) < 0 || day2_preflight(&rs.s, 0, -1) < 0) goto out;
    sess_owner_map(&rs.s, rs.owner);
    rs_target_versions(&rs);
    if (!(rs.lanes = calloc((size_t)rs.s.n, sizeof *rs.lanes)) || !(rs.per_node = calloc((size_t)rs.s.n, sizeof *rs.per_node)) ||
        !(rs.node_db = calloc((size_t)rs.s.n, sizeof *rs.node_db))) { rc_fail_oom(rc); goto out; }
    if (rs_target_dbs(&rs) < 0 || rs_walk_all(&rs, RS_PREFLIGHT) < 0 || rs_check_dbs(&rs) < 0) goto out;
    rc_progress(rc, "restore: %d file(s) read and checked: %lld keys (%lld already expired), %d function librar%s", rs.nfiles, rs.keys, rs.expired,
                rs.nfns, rs.nfns == 1 ? "y" : "ies");
    if (!rs.replace && (rs_check_functions(&rs) < 0 || rs_walk_all(&rs, RS_EXISTS) < 0)) goto out;
    if (rs.busy || rs.first_error) {
        if (rs.busy) rc_fail_as(rc, RC_ERR_EXISTS, "%lld key(s) already exist in the cluster (%s%s); nothing written (--replace overwrites them)", rs.busy,
                                rs.busy_names ? rs.busy_names : "", rs.busy > RS_NAMES ? ", ..." : "");
        else rc_fail(rc, "%s; nothing written", rs.first_error);
        goto out;
    }
    if (!rs.dry_run && (rs_restore_functions(&rs) < 0 || rs_walk_all(&rs, RS_WRITE) < 0)) goto out;
    if (rs.busy) { rc_fail_as(rc, RC_ERR_EXISTS, "%lld key(s) appeared in the cluster meanwhile and were not overwritten (%s)", rs.busy, rs.busy_names); goto out; }
    if (rs.errors) { rc_fail(rc, "%lld key(s) not restored; the first: %s", rs.errors, rs.first_error); goto out; }
    if (report) rs_report(&rs);
    else rc_progress(rc, "restore: %lld keys and %d function librar%s restored from %d file(s)", rs.restored, rs.nfns, rs.nfns == 1 ? "y" : "ies", rs.nfiles);
    ret = 0;
out:
    rs_free(&rs);
    return ret;
}

/* Check a backup before there is a cluster to put it in (up --restore): every file
 * read to its end with its checksum, and every value against masters that read
 * payloads up to max (and Valkey's 80 when v80) and have dbs databases (RS_ANY_DB: not
 * known). *keys: the keys it would restore. */
static int restore_precheck(struct rc *rc, const char *path, int max, int v80, int dbs, long long *keys) {
    struct restore rs;
    memset(&rs, 0, sizeof rs);
    rs.rc = rc;
    rs.now_ms = rc_wall_ms();
    rs.tgt_max = max;
    rs.tgt_v80 = v80;
    rs.tgt_dbs = dbs;
    for (int i = 0; i < CLUSTER_SLOTS; i++) rs.owner[i] = 0;   /* one imaginary master */
    int ret = -1;
    if (!(rs.per_node = calloc(1, sizeof *rs.per_node))) rc_fail_oom(rc);
    else if (rs_open_files(&rs, path) == 0 && rs_walk_all(&rs, RS_PREFLIGHT) == 0 && rs_check_dbs(&rs) == 0) ret = 0;
    *keys = rs.keys - rs.expired;
    if (ret == 0) rc_progress(rc, "restore: %d file(s) of %s read and checked: %lld keys (%lld already expired), %d function librar%s", rs.nfiles, path,
                              rs.keys, rs.expired, rs.nfns, rs.nfns == 1 ? "y" : "ies");
    rs_free(&rs);
    return ret;
}

/* restore ADDR PATH: every key of the RDB files into the cluster; 0 when all are in. */
static int cmd_restore(struct rc *rc, int argc, char **argv) {
    static const struct option opts[] = { { "replace", no_argument, NULL, OPT_DATA_REPLACE }, { "dry-run", no_argument, NULL, OPT_DATA_DRY_RUN } };
    struct data_opts o;
    int r = data_parse(rc, argc, argv, opts, 2, usage_restore, &o, 2);
    if (r) { data_opts_free(&o); return r < 0 ? -1 : 0; }
    int ret = restore_run(rc, argv[optind], argv[optind + 1], o.replace, o.dry_run, 1);
    data_opts_free(&o);
    return ret;
}

/* --- import -------------------------------------------------------------------------- */

#define IM_FLUSH_BYTES  (64L << 10)    /* a master's queued RESTOREs go out once this much waits */

/* A growing list of key names (with their DUMP payloads when they are to be moved), in
 * the order their replies come. */
struct im_keys {
    sds *v;
    sds *pay;                   /* pay[i]: v[i]'s payload, or NULL */
    int n, cap;
};

/* Deletes each key only while it still holds the payload the masters restored, and
 * returns the keys a client changed meanwhile: a write between DUMP and DEL is never
 * lost (MIGRATE gets that by blocking the source; this keeps the source free). */
#define IM_DEL_SCRIPT \
    "local kept = {} " \
    "for i, k in ipairs(KEYS) do " \
    "local v = redis.call('DUMP', k) " \
    "if v == ARGV[i] then redis.call('DEL', k) elseif v then kept[#kept + 1] = k end " \
    "end return kept"

/* One target master and the keys whose RESTORE replies it owes, in order. */
struct im_lane {
    struct snode *dst;
    struct im_keys owed;
    int settle;                 /* the first of owed, sent last round: read this round */
    long long planned;
};

/* The copy runs in rcluster: pipelined DUMP and PTTL on the source, pipelined RESTORE on
 * every master at once, then (unless --copy) one EVAL of IM_DEL_SCRIPT on the source
 * deleting the keys the masters acknowledged, those unchanged since their DUMP. A round sends the source its next SCAN and a batch's DUMPs
 * before reading the previous batch's, and reads the masters' replies a round after
 * sending them: the source always has work queued, the masters restore meanwhile, and
 * the source's thread does nothing but SCAN, serialize and DEL. */
struct import {
    struct rc *rc;
    struct session s;
    const struct data_opts *o;
    struct addr from;
    struct rconn scan;          /* the source: SCAN, DUMP, PTTL, DEL */
    char src_server[64];
    int owner[CLUSTER_SLOTS];
    int *lane_of;               /* session node -> lane, -1 */
    struct im_lane *lanes;
    int nlanes;
    sds cursor;                 /* SCAN's next cursor */
    int scan_owed, scan_done, stop;
    long long src_keys;         /* DBSIZE of the source when the import began */
    struct im_keys next;        /* from the last SCAN reply: DUMPed this round */
    struct im_keys dumped;      /* DUMPed last round: their replies are read this round */
    struct im_keys acked;       /* the masters hold them: DEL on the source next round */
    int del_owed;               /* keys in the EVAL (DEL) in flight on the source (0: none) */
    uint64_t *seen;             /* FNV-1a hashes of the keys taken (SCAN may repeat one) */
    size_t seen_n, seen_cap;    /* open addressing, capacity a power of two */
    long long scanned, moved, busy, errors, gone, changed;
    sds busy_names, changed_names, first_error;
};

static void im_keys_clear(struct im_keys *k) {
    for (int i = 0; i < k->n; i++) { sdsfree(k->v[i]); sdsfree(k->pay[i]); }
    k->n = 0;
}

static void im_keys_free(struct im_keys *k) {
    im_keys_clear(k);
    free(k->v);
    free(k->pay);
    memset(k, 0, sizeof *k);
}

/* Append key and its payload (or NULL), owned by the list from now on (freed on failure). */
static int im_keys_push(struct rc *rc, struct im_keys *k, sds key, sds pay) {
    if (k->n == k->cap) {
        int cap = k->cap ? k->cap * 2 : 256;
        sds *v = realloc(k->v, (size_t)cap * sizeof *v), *p = v ? realloc(k->pay, (size_t)cap * sizeof *p) : NULL;
        if (v) k->v = v;
        if (p) k->pay = p;
        if (!v || !p) { sdsfree(key); sdsfree(pay); return rc_fail_oom(rc); }
        k->cap = cap;
    }
    k->v[k->n] = key;
    k->pay[k->n++] = pay;
    return 0;
}

/* Drop the first n entries (their strings freed). */
static void im_keys_shift(struct im_keys *k, int n) {
    if (n == 0) return;   /* k->v may be NULL: memmove of NULL is undefined even for 0 bytes */
    for (int i = 0; i < n; i++) { sdsfree(k->v[i]); sdsfree(k->pay[i]); }
    memmove(k->v, k->v + n, (size_t)(k->n - n) * sizeof *k->v);
    memmove(k->pay, k->pay + n, (size_t)(k->n - n) * sizeof *k->pay);
    k->n -= n;
}

/* Add key to a list of up to RS_NAMES names for a message. */
static void im_name(sds *names, long long count, const char *key) {
    if (count > RS_NAMES) return;
    if (!*names) *names = sdsempty();
    if (*names) *names = rc_catprintf(*names, "%s'%.60s'", sdslen(*names) ? ", " : "", key);
}

/* 64-bit FNV-1a of a key name, never 0 (0 marks a free cell). Pure. */
static uint64_t im_key_hash(const char *p, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h ? h : 1;
}

/* 1 when the key was taken before (SCAN returns a key twice when the source's table is
 * resized meanwhile), else remembers it and returns 0; -1 on OOM. */
static int im_seen(struct import *im, const char *key, size_t len) {
    if (2 * (im->seen_n + 1) > im->seen_cap) {   /* sized from DBSIZE at first: grows only when keys are added meanwhile */
        size_t cap = im->seen_cap ? im->seen_cap * 2 : 4096;
        while (!im->seen_cap && cap < 2 * (size_t)im->src_keys + 2) cap *= 2;
        uint64_t *t = calloc(cap, sizeof *t);
        if (!t) return rc_fail_oom(im->rc);
        for (size_t i = 0; i < im->seen_cap; i++) {
            if (!im->seen[i]) continue;
            size_t j = im->seen[i] & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = im->seen[i];
        }
        free(im->seen);
        im->seen = t;
        im->seen_cap = cap;
    }
    uint64_t h = im_key_hash(key, len);
    size_t j = h & (im->seen_cap - 1);
    for (; im->seen[j]; j = (j + 1) & (im->seen_cap - 1)) if (im->seen[j] == h) return 1;
    im->seen[j] = h;
    im->seen_n++;
    return 0;
}

/* A connection to the source, authenticated with --from-user/--from-password-file. */
static int im_source_connect(struct import *im, struct rconn *c) {
    struct rc *rc = im->rc;
    if (rconn_connect(rc, c, im->from.ip, im->from.port, rc->io_timeout_ms) < 0) return rc_wrap(rc, "source");
    if (!im->o->from_pass) return 0;
    struct resp *r = im->o->from_user ? rconn_call(rc, c, "AUTH", "AUTH", im->o->from_user, im->o->from_pass, RESP_END)
                                      : rconn_call(rc, c, "AUTH", "AUTH", im->o->from_pass, RESP_END);
    if (!r) return rc_fail_kind_msg(rc, c->fd >= 0 ? RC_ERR_AUTH : rc->err_kind, rc_sprintf("source %s", rc->err ? rc->err : "AUTH failed"));
    resp_free(r);
    return 0;
}

/* The source must be a standalone server whose DUMP payloads every master reads. */
static int im_check_source(struct import *im) {
    struct rc *rc = im->rc;
    char buf[16];
    struct resp *cl = rconn_queue(rc, &im->scan, "INFO", "cluster", RESP_END) < 0 ? NULL : rconn_read(rc, &im->scan, rc_now_ms() + rc->io_timeout_ms);
    sds sv = NULL;
    if (!cl) return rc_wrap(rc, "source");
    if (cl->type != RESP_BULK) {
        int noauth = cl->type == RESP_ERROR && !strncmp(cl->str, "NOAUTH", 6);
        rc_fail_as(rc, noauth ? RC_ERR_AUTH : RC_ERR_FAIL, "source %s: INFO cluster: %s%s", im->scan.name, cl->type == RESP_ERROR ? cl->str : "unexpected reply",
                   noauth ? " (give its password with --from-password-file)" : "");
        resp_free(cl);
        return -1;
    }
    int clustered = info_field(cl->str, "cluster_enabled", buf, sizeof buf) == 0 && !strcmp(buf, "1");
    resp_free(cl);
    if (clustered) return rc_fail_as(rc, RC_ERR_INCOMPATIBLE, "source %s is cluster-enabled: import takes a standalone server (to move slots between clusters, back up and restore)", im->scan.name);
    if (!(sv = rconn_call_str(rc, &im->scan, "INFO server", "INFO", "server", RESP_END))) return rc_wrap(rc, "source");
    int src, src_reads;
    info_server_desc(sv, im->src_server, sizeof im->src_server);
    server_payload_versions(sv, &src, &src_reads);
    sdsfree(sv);
    for (int i = 0; i < im->s.n; i++) {
        const struct snode *x = &im->s.nodes[i];
        if (!x->up || !snode_is_master(x) || !snode_slot_count(x)) continue;
        if (payload_readable(src, x->payload_r, (x->caps & SRV_ATOMIC_VALKEY) != 0)) continue;
        return rc_fail_as(rc, RC_ERR_INCOMPATIBLE, "source %s runs %s (DUMP payload version %d), newer than master %s:%d runs (%s, reads up to %d): "
                          "RESTORE would fail with \"DUMP payload version or checksum are wrong\"; nothing moved",
                          im->scan.name, im->src_server, src, x->ip, x->port, x->server, x->payload_r);
    }
    return 0;
}

/* The source's DBSIZE (progress, the size of the seen set) and, to move, whether it
 * runs a script for this user (the deletes are one). */
static int im_check_script(struct import *im) {
    struct rc *rc = im->rc;
    struct resp *n = rconn_call(rc, &im->scan, "DBSIZE", "DBSIZE", RESP_END);
    if (!n) return rc_wrap(rc, "source");
    im->src_keys = n->type == RESP_INTEGER && n->integer > 0 ? n->integer : 0;
    resp_free(n);
    if (im->o->copy || im->o->dry_run) return 0;
    struct resp *e = rconn_queue(rc, &im->scan, "EVAL", "return 1", "0", RESP_END) < 0 ? NULL : rconn_read(rc, &im->scan, rc_now_ms() + rc->io_timeout_ms);
    if (!e) return rc_wrap(rc, "source");
    int refused = e->type == RESP_ERROR;
    if (refused) rc_fail_as(rc, RC_ERR_INCOMPATIBLE, "source %s: EVAL: %s: a move deletes each key from the source with a script, only while it holds the value the "
                            "cluster took; nothing moved (--copy needs no script)", im->scan.name, e->str);
    resp_free(e);
    return refused ? -1 : 0;
}

/* A lane per master with slots. */
static int im_open_lanes(struct import *im) {
    struct session *s = &im->s;
    if (!(im->lane_of = malloc((size_t)s->n * sizeof *im->lane_of)) || !(im->lanes = calloc((size_t)s->n, sizeof *im->lanes))) return rc_fail_oom(im->rc);
    for (int i = 0; i < s->n; i++) {
        im->lane_of[i] = -1;
        struct snode *x = &s->nodes[i];
        if (!snode_is_master(x) || !snode_slot_count(x)) continue;
        im->lanes[im->nlanes].dst = x;
        im->lane_of[i] = im->nlanes++;
    }
    return 0;
}

/* Queue on the source: the DEL (IM_DEL_SCRIPT) of the acknowledged keys, the next SCAN,
 * DUMP and PTTL of the keys the last SCAN gave; then send it all. */
static int im_queue_source(struct import *im) {
    struct rc *rc = im->rc;
    struct rconn *c = &im->scan;
    if (!c->wbuf && !(c->wbuf = sdsempty())) return rc_fail_oom(rc);
    if (im->acked.n) {   /* EVAL script n k1 .. kn payload1 .. payloadn */
        int n = im->acked.n;
        const char **argv = malloc((2 * (size_t)n + 3) * sizeof *argv);
        size_t *lens = malloc((2 * (size_t)n + 3) * sizeof *lens);
        char num[16];
        if (!argv || !lens) { free(argv); free(lens); return rc_fail_oom(rc); }
        snprintf(num, sizeof num, "%d", n);
        argv[0] = "EVAL"; argv[1] = IM_DEL_SCRIPT; argv[2] = num;
        for (int i = 0; i < 3; i++) lens[i] = strlen(argv[i]);
        for (int i = 0; i < n; i++) {
            argv[3 + i] = im->acked.v[i]; lens[3 + i] = sdslen(im->acked.v[i]);
            argv[3 + n + i] = im->acked.pay[i]; lens[3 + n + i] = sdslen(im->acked.pay[i]);
        }
        c->wbuf = resp_append_bin(c->wbuf, 2 * n + 3, argv, lens);
        free(argv);
        free(lens);
        im->del_owed = n;
        im_keys_clear(&im->acked);
    }
    if (c->wbuf && !im->scan_done && !im->stop) {   /* before the DUMPs: its reply opens the next round */
        char count[16];
        snprintf(count, sizeof count, "%d", im->o->pipeline);
        const char *argv[4] = { "SCAN", im->cursor, "COUNT", count };
        size_t lens[4] = { 4, sdslen(im->cursor), 5, strlen(count) };
        c->wbuf = resp_append_bin(c->wbuf, 4, argv, lens);
        im->scan_owed = 1;
    }
    for (int i = 0; c->wbuf && i < im->next.n; i++) {
        const char *argv[2] = { "DUMP", im->next.v[i] };
        size_t lens[2] = { 4, sdslen(im->next.v[i]) };
        c->wbuf = resp_append_bin(c->wbuf, 2, argv, lens);
        argv[0] = "PTTL";
        if (c->wbuf) c->wbuf = resp_append_bin(c->wbuf, 2, argv, lens);
    }
    if (!c->wbuf) return rc_fail_oom(rc);
    if (rconn_flush(rc, c, rc_now_ms() + rc->io_timeout_ms) < 0) return rc_wrap(rc, "source");
    return 0;
}

/* Count a refusal of key by a master: BUSYKEY (named) or another error (the first kept). */
static void im_note_refusal(struct import *im, const struct im_lane *l, const char *key, const char *err) {
    if (!strncmp(err, "BUSYKEY", 7)) { im_name(&im->busy_names, ++im->busy, key); return; }
    im->errors++;
    if (!im->first_error) im->first_error = rc_sprintf("RESTORE '%.60s' on %s:%d: %s", key, l->dst->ip, l->dst->port, err);
}

/* Read the RESTORE replies of last round's keys; the keys the masters took are
 * acknowledged, the others stay on the source. */
static int im_settle_targets(struct import *im) {
    struct rc *rc = im->rc;
    for (int i = 0; i < im->nlanes; i++) {
        struct im_lane *l = &im->lanes[i];
        for (int k = 0; k < l->settle; k++) {
            struct resp *r = sess_reply(&im->s, l->dst, im->o->migrate_timeout_ms);
            if (!r) return rc_wrap(rc, "RESTORE on %s:%d", l->dst->ip, l->dst->port);
            int ok = r->type == RESP_STATUS;
            if (!ok) im_note_refusal(im, l, l->owed.v[k], r->type == RESP_ERROR ? r->str : "unexpected reply");
            resp_free(r);
            if (!ok) continue;
            im->moved++;
            if (im->o->copy) continue;
            sds key = l->owed.v[k], pay = l->owed.pay[k];
            l->owed.v[k] = l->owed.pay[k] = NULL;
            if (im_keys_push(rc, &im->acked, key, pay) < 0) return -1;
        }
        im_keys_shift(&l->owed, l->settle);
        l->settle = 0;
    }
    return 0;
}

/* RESTORE key ttl payload [REPLACE] on the master owning key's slot (the key, and unless
 * --copy the payload, move to its lane); a lane with enough queued is sent at once so
 * that its master starts. */
static int im_queue_restore(struct import *im, sds key, struct resp *payload, long long pttl) {
    struct rc *rc = im->rc;
    struct im_lane *l = &im->lanes[im->lane_of[im->owner[cluster_key_slot(key, sdslen(key))]]];
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", pttl > 0 ? pttl : 0);
    const char *argv[5] = { "RESTORE", key, ttl, payload->str, "REPLACE" };
    size_t lens[5] = { 7, sdslen(key), strlen(ttl), sdslen(payload->str), 7 };
    if (sess_queue_bin(&im->s, l->dst, im->o->replace ? 5 : 4, argv, lens) < 0) { sdsfree(key); return -1; }
    sds pay = NULL;
    if (!im->o->copy) { pay = payload->str; payload->str = NULL; }   /* the DEL compares it */
    if (im_keys_push(rc, &l->owed, key, pay) < 0) return -1;
    struct rconn *c = &l->dst->c;
    if ((long)sdslen(c->wbuf) >= IM_FLUSH_BYTES && rconn_flush(rc, c, rc_now_ms() + rc->io_timeout_ms) < 0) return rc_wrap(rc, "%s:%d", l->dst->ip, l->dst->port);
    return 0;
}

/* The DUMP and PTTL replies of one key: queued as a RESTORE; a key gone meanwhile is skipped. */
static int im_take_dump(struct import *im, sds key) {
    struct rc *rc = im->rc;
    struct resp *d = rconn_read(rc, &im->scan, rc_now_ms() + rc->io_timeout_ms), *t = d ? rconn_read(rc, &im->scan, rc_now_ms() + rc->io_timeout_ms) : NULL;
    int ret = 0;
    if (!t) ret = rc_wrap(rc, "source");
    else if (d->type == RESP_ERROR || t->type == RESP_ERROR) {
        im->errors++;
        if (!im->first_error) im->first_error = rc_sprintf("source %s: DUMP '%.60s': %s", im->scan.name, key, d->type == RESP_ERROR ? d->str : t->str);
    } else if (d->type != RESP_BULK || !d->str || t->type != RESP_INTEGER || t->integer == -2) im->gone++;
    else { ret = im_queue_restore(im, key, d, t->integer); key = NULL; }
    sdsfree(key);
    resp_free(d);
    resp_free(t);
    return ret;
}

/* The replies that open a round: the DEL's (keys changed meanwhile), SCAN's keys (the next batch). */
static int im_read_scan(struct import *im) {
    struct rc *rc = im->rc;
    if (im->del_owed) {   /* the keys changed meanwhile: on the source still, an earlier value in the cluster */
        struct resp *r = rconn_read(rc, &im->scan, rc_now_ms() + rc->io_timeout_ms);
        if (!r) return rc_wrap(rc, "source %s: DEL of %d key(s) the cluster holds now", im->scan.name, im->del_owed);
        if (r->type != RESP_ARRAY) {
            im->errors += im->del_owed;
            if (!im->first_error) im->first_error = rc_sprintf("source %s: EVAL (DEL of %d key(s) the cluster holds now; they are in both): %s", im->scan.name, im->del_owed,
                                                               r->type == RESP_ERROR ? r->str : "unexpected reply");
        }
        for (size_t i = 0; r->type == RESP_ARRAY && i < r->n; i++) {
            im->moved--;
            if (r->elem[i]->type == RESP_BULK && r->elem[i]->str) im_name(&im->changed_names, ++im->changed, r->elem[i]->str);
        }
        resp_free(r);
        im->del_owed = 0;
    }
    if (!im->scan_owed) return 0;
    im->scan_owed = 0;
    struct resp *r = rconn_read(rc, &im->scan, rc_now_ms() + rc->io_timeout_ms);
    int ret = 0;
    if (!r) return rc_wrap(rc, "source");
    if (r->type != RESP_ARRAY || r->n != 2 || r->elem[0]->type != RESP_BULK || r->elem[1]->type != RESP_ARRAY) {
        ret = rc_fail(rc, "source %s: SCAN: %s", im->scan.name, r->type == RESP_ERROR ? r->str : "unexpected reply");
        resp_free(r);
        return ret;
    }
    sdsfree(im->cursor);
    im->cursor = sdsdup(r->elem[0]->str);
    im->scan_done = im->cursor && !strcmp(im->cursor, "0");
    for (size_t i = 0; ret == 0 && i < r->elem[1]->n; i++) {
        struct resp *k = r->elem[1]->elem[i];
        if (k->type != RESP_BULK || !k->str) continue;
        int seen = im_seen(im, k->str, sdslen(k->str));
        if (seen) { ret = seen < 0 ? -1 : 0; continue; }
        im->scanned++;
        int node = im->owner[cluster_key_slot(k->str, sdslen(k->str))];
        if (node < 0 || im->lane_of[node] < 0) { ret = rc_fail(rc, "key '%.60s': no master owns slot %d", k->str, cluster_key_slot(k->str, sdslen(k->str))); break; }
        im->lanes[im->lane_of[node]].planned++;
        if (!im->o->dry_run) { ret = im_keys_push(rc, &im->next, k->str, NULL); k->str = NULL; }
    }
    resp_free(r);
    return ret == 0 && !im->cursor ? rc_fail_oom(rc) : ret;
}

/* The DUMP and PTTL replies of last round's batch, each queued as a RESTORE. */
static int im_read_dumps(struct import *im) {
    int ret = 0;
    for (int i = 0; i < im->dumped.n; i++) {
        sds key = im->dumped.v[i];
        im->dumped.v[i] = NULL;
        if (ret == 0) ret = im_take_dump(im, key);
        else sdsfree(key);
    }
    im->dumped.n = 0;
    return ret;
}

/* 1 while a round has work: keys to SCAN, DUMP, RESTORE or DEL. Pure. */
static int im_busy(const struct import *im) {
    if ((!im->scan_done && !im->stop) || im->scan_owed || im->del_owed || im->next.n || im->dumped.n || im->acked.n) return 1;
    for (int i = 0; i < im->nlanes; i++) if (im->lanes[i].owed.n) return 1;
    return 0;
}

/* One round: open it (DEL's and SCAN's replies), keep the source busy (DEL, SCAN, DUMPs),
 * turn last round's DUMPs into RESTOREs, read last round's RESTORE replies, send. */
static int im_round(struct import *im) {
    if (im_read_scan(im) < 0) return -1;
    if (im->stop) im_keys_clear(&im->next);   /* not DUMPed: they stay on the source */
    if (im_queue_source(im) < 0 || im_read_dumps(im) < 0 || im_settle_targets(im) < 0) return -1;
    struct im_keys t = im->dumped;            /* empty now */
    im->dumped = im->next;
    im->next = t;
    for (int i = 0; i < im->nlanes; i++) im->lanes[i].settle = im->lanes[i].owed.n;
    return sess_flush_all(&im->s);
}

/* SCAN the whole source in rounds; Ctrl-C (taken between rounds, as the mover does)
 * stops the scan, and what is in flight still finishes: RESTOREs read, DEL sent. */
static int im_scan(struct import *im) {
    struct rc *rc = im->rc;
    int ret = (im->cursor = sdsnew("0")) ? 0 : rc_fail_oom(rc);
    int64_t next_report = rc_now_ms() + 1000;
    sigset_t old;
    if (!im->o->copy) rc_set_abandon_note("the import's keys in flight: still on the source, some maybe in the cluster too");
    while (ret == 0 && im_busy(im)) {
        if (rc_interrupted()) im->stop = 1;
        mover_hold_signals(&old);
        ret = im_round(im);
        mover_release_signals(&old);
        if (ret == 0 && rc_now_ms() >= next_report) {
            rc_progress(rc, "import: %lld of ~%lld keys scanned, %lld %s", im->scanned, im->src_keys, im->moved, im->o->copy ? "copied" : "moved");
            next_report = rc_now_ms() + 1000;
        }
    }
    rc_set_abandon_note(NULL);
    if (ret == 0 && im->stop) ret = rc_fail_as(rc, RC_ERR_INTERRUPTED, "import interrupted after %lld keys scanned: %lld %s, the others stay on the source", im->scanned, im->moved, im->o->copy ? "copied" : "moved");
    else if (ret < 0 && !im->o->copy)
        rc_wrap(rc, "import stopped after %lld key(s) moved (keys in flight are still on the source, and may be in the cluster too)", im->moved);
    return ret;
}

static void im_free(struct import *im) {
    for (int i = 0; i < im->nlanes; i++) im_keys_free(&im->lanes[i].owed);
    im_keys_free(&im->next);
    im_keys_free(&im->dumped);
    im_keys_free(&im->acked);
    free(im->seen);
    sdsfree(im->cursor);
    free(im->lanes);
    free(im->lane_of);
    rconn_free(&im->scan);
    sdsfree(im->busy_names);
    sdsfree(im->changed_names);
    sdsfree(im->first_error);
    sess_free(&im->s);
}

static void im_report(const struct import *im) {
    struct rc *rc = im->rc;
    double secs = (double)(rc_now_ms() - rc->t0) / 1000.0;
    const char *verb = im->o->dry_run ? "would be moved" : im->o->copy ? "copied" : "moved";
    if (rc->json) {
        sds js = rc_catprintf(sdsempty(), "{\"ok\":true,\"command\":\"import\",\"dry_run\":%s,\"copy\":%s,\"source\":\"%s\",\"source_server\":",
                              im->o->dry_run ? "true" : "false", im->o->copy ? "true" : "false", im->scan.name);
        js = rc_json_str(js, im->src_server);
        js = rc_catprintf(js, ",\"scanned\":%lld,\"keys\":%lld,\"seconds\":%.3f,\"keys_per_second\":%.0f,\"masters\":[", im->scanned, im->moved, secs,
                          secs > 0 ? (double)im->moved / secs : 0);
        for (int i = 0; js && i < im->nlanes; i++)
            js = rc_catprintf(js, "%s{\"id\":\"%s\",\"addr\":\"%s:%d\",\"keys\":%lld}", i ? "," : "", im->lanes[i].dst->id, im->lanes[i].dst->ip,
                              im->lanes[i].dst->port, im->lanes[i].planned);
        js = rc_cat(js, "]}\n");
        rc_json_out(rc, js);
        sdsfree(js);
        return;
    }
    for (int i = 0; i < im->nlanes; i++)
        printf("  %s:%d (%.8s...)  %lld keys\n", im->lanes[i].dst->ip, im->lanes[i].dst->port, im->lanes[i].dst->id, im->lanes[i].planned);
    printf("import: %lld keys %s from %s (%s) in %.1f s (%.0f keys/s)%s\n", im->o->dry_run ? im->scanned : im->moved, verb, im->scan.name, im->src_server, secs,
           secs > 0 ? (double)im->moved / secs : 0, im->o->dry_run ? "; nothing changed" : "");
}

static void usage_import(FILE *f) {
    fputs("usage: rcluster import ADDR --from HOST:PORT [--copy] [--replace] [--from-user U]\n"
          "                       [--from-password-file F] [--pipeline N] [--dry-run] [--json]\n"
          "\n"
          "Move the keys of a standalone server into the cluster ADDR belongs to: SCAN the\n"
          "source --pipeline keys (default 2000) at a time, DUMP and PTTL each (pipelined),\n"
          "RESTORE it on the master owning its slot (every master at once), then delete from\n"
          "the source the keys the masters took, each only while it still holds the value\n"
          "DUMPed (a script; a key a client changed meanwhile stays there, named). --copy\n"
          "leaves the keys on the source; --replace overwrites keys the cluster already has\n"
          "(else they are refused, named, and stay on the source). Refused before anything\n"
          "moves: a cluster-enabled source, a source whose DUMP format a master cannot read,\n"
          "a move from a source that refuses EVAL. --password is the cluster's,\n"
          "--from-password-file the source's. redis-cli's spellings work: --cluster-from,\n"
          "--cluster-copy, --cluster-replace, --cluster-from-user, --cluster-from-pass P,\n"
          "--cluster-pipeline, --cluster-timeout MS (how long a RESTORE may take). --from\n"
          "FILE.rdb restores that file.\n", f);
}

/* import ADDR --from HOST:PORT: the source's keys into the cluster; 0 when all went. */
static int cmd_import(struct rc *rc, int argc, char **argv) {
    static const struct option opts[] = {
        { "from", required_argument, NULL, OPT_DATA_FROM }, { "cluster-from", required_argument, NULL, OPT_DATA_FROM },
        { "copy", no_argument, NULL, OPT_DATA_COPY }, { "cluster-copy", no_argument, NULL, OPT_DATA_COPY },
        { "replace", no_argument, NULL, OPT_DATA_REPLACE }, { "cluster-replace", no_argument, NULL, OPT_DATA_REPLACE },
        { "from-user", required_argument, NULL, OPT_DATA_FROM_USER }, { "cluster-from-user", required_argument, NULL, OPT_DATA_FROM_USER },
        { "from-password-file", required_argument, NULL, OPT_DATA_FROM_PASS_FILE }, { "cluster-from-pass", required_argument, NULL, OPT_DATA_FROM_PASS },
        { "from-password", required_argument, NULL, OPT_DATA_FROM_PASS }, { "dry-run", no_argument, NULL, OPT_DATA_DRY_RUN },
        { "pipeline", required_argument, NULL, OPT_DATA_PIPELINE }, { "cluster-pipeline", required_argument, NULL, OPT_DATA_PIPELINE },
        { "cluster-timeout", required_argument, NULL, OPT_DATA_MIGRATE_TIMEOUT }, { "migrate-timeout", required_argument, NULL, OPT_DATA_MIGRATE_TIMEOUT },
    };
    struct data_opts o;
    int r = data_parse(rc, argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), usage_import, &o, 1);
    if (r) { data_opts_free(&o); return r < 0 ? -1 : 0; }
    if (!o.from) { data_opts_free(&o); return rc_fail_as(rc, RC_ERR_USAGE, "import: --from HOST:PORT is required (see rcluster import --help)"); }
    struct stat st;
    if (stat(o.from, &st) == 0 && S_ISREG(st.st_mode)) {   /* --from FILE.rdb: a restore of that file */
        char *rargv[5] = { (char *)"restore", argv[optind], (char *)o.from, o.replace ? (char *)"--replace" : NULL, NULL };
        int dry = o.dry_run;
        data_opts_free(&o);
        if (dry) { return rc_fail_as(rc, RC_ERR_USAGE, "import --from FILE: use rcluster restore ADDR FILE --dry-run"); }
        return cmd_restore(rc, rargv[3] ? 4 : 3, rargv);
    }
    struct import im;
    memset(&im, 0, sizeof im);
    im.rc = rc;
    im.o = &o;
    im.scan.fd = -1;
    int ret = -1;
    if (addr_parse(rc, o.from, &im.from) < 0) { rc->err_kind = RC_ERR_USAGE; goto out; }
    if (day2_open(rc, &im.s, argv[optind]) < 0 || day2_preflight(&im.s, 0, -1) < 0) goto out;
    sess_owner_map(&im.s, im.owner);
    if (im_source_connect(&im, &im.scan) < 0 || im_check_source(&im) < 0 || im_check_script(&im) < 0 || im_open_lanes(&im) < 0) goto out;
    rc_progress(rc, "import: %s keys of %s (%s) to %d master(s), %d keys per SCAN%s", o.copy ? "copying" : "moving", im.scan.name, im.src_server,
                im.nlanes, o.pipeline, o.dry_run ? " (dry run: SCAN only)" : "");
    if (im_scan(&im) < 0) goto out;
    if (im.busy) {
        rc_fail_as(rc, RC_ERR_EXISTS, "%lld key(s) already exist in the cluster (%s%s): RESTORE answered BUSYKEY; they stay on the source "
                   "(--replace overwrites them); %lld key(s) %s", im.busy, im.busy_names ? im.busy_names : "", im.busy > RS_NAMES ? ", ..." : "", im.moved,
                   o.copy ? "copied" : "moved");
        goto out;
    }
    if (im.changed) {
        rc_fail(rc, "%lld key(s) changed on the source while they moved (%s%s): they stay there with their new value, the cluster holds the one they had "
                "(import again with --replace to take the new one); %lld key(s) moved", im.changed, im.changed_names ? im.changed_names : "", im.changed > RS_NAMES ? ", ..." : "", im.moved);
        goto out;
    }
    if (im.errors) { rc_fail(rc, "%lld key(s) not moved; the first failure: %s", im.errors, im.first_error); goto out; }
    im_report(&im);
    ret = 0;
out:
    im_free(&im);
    data_opts_free(&o);
    return ret;
}

/* ====================================================================== */
/* 9d. Rolling update: a new image, config or password, node by node       */
/* ====================================================================== */

/* `update` reads the cluster as `up` recorded it (the manifest), makes the wanted
 * options from that and the given changes, and changes one node at a time: replicas
 * first, then each master after a manual failover to an updated replica of it. A node
 * is replaced by stopping its container and renaming it aside (NAME-I.previous),
 * creating the new one on the same data, address and ports, and waiting until it has
 * rejoined and caught up; a node that does not come back gets its old container back.
 * A password is rotated without a restart; a directive the servers take live is set
 * with CONFIG SET. The manifest and each redis.conf are rewritten from the template,
 * their previous text kept beside them (.previous). */

struct update_opts {
    struct up_opts up;              /* --name, --image, --config, --data-dir, --server */
    const char *new_password_file;  /* --new-password-file F */
    int allow_downtime;             /* a master without a replica restarts in place */
    int dry_run;
};

struct update_node {
    struct up_node *n;              /* Docker: in the wanted plan (name, address, ports) */
    struct swarm_node *sn;          /* Swarm: in the wanted plan */
    char name[64];                  /* container or service NAME-I */
    char host[64];                  /* where rcluster reaches it */
    int port;
    char ann_ip[64];                /* what it announces: how the session names it */
    int ann_port;
    char id[41], master_id[41];     /* cluster node id; its master's ("" for a master) */
    int master;                     /* its role now */
    char image[256];                /* what its container runs now ("" when it is missing) */
    int missing;                    /* no container NAME, only NAME.previous (an interrupted run) */
    int stopped;                    /* its container is not running */
    int has_previous;               /* NAME.previous exists (left by an interrupted run) */
    char server[64];                /* "Redis 7.0.15" */
    int payload_w;                  /* the RDB version its files on disk have */
    int restart;                    /* this run replaces its container */
    int empty;                      /* it starts without its files: the new server cannot read them */
    int64_t took_ms, pause_ms;      /* replacement; writes paused by its failover (masters) */
    char failover_to[64];           /* the replica it handed its slots to */
    char slots[96];                 /* a master's slots ("0-5460"), for the report */
    long sync_delay;                /* its repl-diskless-sync-delay before this run, -1 untouched */
    sds conf_id, conf_name;         /* Swarm: the config its service mounts now */
};

struct update_plan;

/* Where the nodes run: Docker containers or Swarm services (the placement layer of
 * update; the steps above it are the same for both). */
struct update_place {
    const char *what;               /* "container" or "service", for messages */
    int conf_restarts;              /* any change of a node's config restarts it (Swarm configs) */
    int can_start_empty;            /* it can set a node's files aside (a downgrade: see empty) */
    /* The config text node x runs with now / would run with; NULL on failure. */
    sds (*conf_now)(struct update_plan *u, const struct update_node *x);
    sds (*conf_want)(struct update_plan *u, const struct update_node *x);
    /* Put back what an interrupted run left half-done, before the health check. */
    int (*recover)(struct update_plan *u);
    /* After the health check: leftovers, the wanted image's server and version. */
    int (*prepare)(struct update_plan *u, int dry_run);
    /* Replace node x with the wanted image and config; wait until it has caught up;
     * on failure put the old one back. */
    int (*replace)(struct update_plan *u, struct update_node *x, int replica);
    /* Will node x come up? 0 with rc->err saying why not. */
    int (*alive)(struct update_plan *u, struct update_node *x);
    /* Node x keeps running: its config on disk as wanted (live changes persisted). */
    int (*persist)(struct update_plan *u, struct update_node *x);
    int (*manifest)(struct update_plan *u);
};

struct update_plan {
    struct rc *rc;
    struct docker *d;
    const struct update_place *place;
    struct up_opts cur, want;       /* as recorded; as wanted (recorded + given) */
    struct up_plan up;              /* Docker: the wanted one's addresses, ports, data dir, image server */
    json_value_s *recorded;         /* Docker: the manifest (cur's strings point into it) */
    sds dir;                        /* Docker: the data dir */
    struct swarm_plan sw_cur, sw_want; /* Swarm: plans as recorded and as wanted */
    int have_sw;
    struct swarm_manifest sm;       /* Swarm: the manifest (cur's strings point into it) */
    sds new_secret_id;              /* Swarm: the secret with the new password */
    sds old_secret_id;
    struct update_node *nodes;      /* in up.nodes order */
    int n;
    char old_server[64];            /* what the nodes run now ("Redis 7.0.15 on 6 nodes") */
    char new_server[64];            /* what the wanted image runs ("Valkey 9.1.0") */
    int new_w, new_r, new_80;       /* its payload versions; new_80: it reads VALKEY080 files */
    int image_change;               /* some container runs another image */
    int restart_config;             /* a changed directive needs a restart */
    char **live;                    /* changed directives CONFIG SET applies (pointers into want) */
    int nlive;
    sds new_password;               /* --new-password-file, NULL when not rotating */
    int rotated;                    /* every node takes the new password already (a resumed run) */
    int restarts;
    int64_t deadline;
};

static void update_plan_free(struct update_plan *u) {
    up_plan_free(&u->up);
    if (u->have_sw) { swarm_plan_free(&u->sw_cur); swarm_plan_free(&u->sw_want); }
    swarm_manifest_free(&u->sm);
    sdsfree(u->new_secret_id);
    sdsfree(u->old_secret_id);
    for (int k = 0; u->nodes && k < u->n; k++) { sdsfree(u->nodes[k].conf_id); sdsfree(u->nodes[k].conf_name); }
    free(u->cur.configs);
    free(u->want.configs);
    free(u->live);
    free(u->nodes);
    json_free(u->recorded);
    sdsfree(u->dir);
    sdsfree(u->new_password);
}

enum { OPT_UPD_NEW_PASSWORD_FILE = OPT_FIRST_COMMAND_OPT + 90, OPT_UPD_ALLOW_DOWNTIME, OPT_UPD_DRY_RUN };

static const struct option update_longopts[] = {
    { "name", required_argument, NULL, OPT_UP_NAME }, { "image", required_argument, NULL, OPT_UP_IMAGE },
    { "config", required_argument, NULL, OPT_UP_CONFIG }, { "data-dir", required_argument, NULL, OPT_UP_DATA_DIR },
    { "server", required_argument, NULL, OPT_UP_SERVER }, { "swarm", no_argument, NULL, OPT_UP_SWARM },
    { "new-password-file", required_argument, NULL, OPT_UPD_NEW_PASSWORD_FILE },
    { "allow-downtime", no_argument, NULL, OPT_UPD_ALLOW_DOWNTIME }, { "dry-run", no_argument, NULL, OPT_UPD_DRY_RUN },
    { "insecure", no_argument, NULL, OPT_UP_INSECURE },
};

static void usage_update(FILE *f) {
    fputs("usage: rcluster update [--name NAME] [--image IMAGE] [--config 'directive value']...\n"
          "                       [--new-password-file F] [--allow-downtime] [--dry-run] [--yes]\n"
          "\n"
          "Change a cluster made by `up`, node by node, while it serves: another server image\n"
          "(a new version, or Redis to Valkey), redis.conf directives, or the password.\n"
          "Replicas are replaced first; each master hands its slots to an updated replica\n"
          "(CLUSTER FAILOVER) before it is replaced. Clients that follow MOVED keep working;\n"
          "writes to a master's slots pause for the moment of its failover.\n"
          "\n"
          "  --name NAME              the cluster (default redis)\n"
          "  --image IMAGE            the server image every node should run\n"
          "  --config 'DIRECTIVE V'   set a directive (repeatable); replaces a recorded line of the\n"
          "                           same directive. Set live with CONFIG SET where the servers\n"
          "                           allow it, else by the rolling restart\n"
          "  --new-password-file F    rotate the password (no restart): give the current one with\n"
          "                           --password-file or RCLUSTER_PASSWORD\n"
          "  --allow-downtime         restart a master that has no replica in place (its slots are\n"
          "                           unavailable meanwhile) instead of refusing\n"
          "  --data-dir DIR           where the cluster's data is, when not where up put it\n"
          "  --swarm                  a cluster made by `up --swarm`: each service's spec is updated\n"
          "                           (a config or password change restarts each service too)\n"
          "  --timeout SEC            how long each node may take to come back (default 60)\n"
          "  --dry-run                print the plan, change nothing\n"
          "\n"
          "Refused before anything changes: an unhealthy cluster, a master without a linked\n"
          "replica, an image whose server cannot take a full sync from the running one (e.g.\n"
          "Valkey to Redis 7.0: both versions are named). Run again with the same options to\n"
          "finish an interrupted update; `rcluster status` shows what each node runs.\n"
          "Exit status: 0 updated (or nothing to do), 1 failed (the node being replaced gets its\n"
          "old container back), 2 usage, 130 interrupted.\n", f);
}

static int update_on_opt(struct rc *rc, int opt, const char *arg, void *ctx) {
    struct update_opts *o = ctx;
    switch (opt) {
    case OPT_UPD_NEW_PASSWORD_FILE: o->new_password_file = arg; return 0;
    case OPT_UPD_ALLOW_DOWNTIME: o->allow_downtime = 1; return 0;
    case OPT_UPD_DRY_RUN: o->dry_run = 1; return 0;
    }
    return up_on_opt(rc, opt, arg, &o->up);
}

/* ---- the plan: recorded options, wanted options, what each node runs -------- */

/* Length of the directive word of a "directive value" line. Pure. */
static size_t update_directive_len(const char *line) {
    while (*line == ' ' || *line == '\t') line++;
    return strcspn(line, " \t");
}

/* Do two config lines set the same directive? Pure. */
static int update_same_directive(const char *a, const char *b) {
    while (*a == ' ' || *a == '\t') a++;
    while (*b == ' ' || *b == '\t') b++;
    size_t la = update_directive_len(a), lb = update_directive_len(b);
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* want->configs = the recorded lines with each given line replacing the recorded one of
 * its directive (else appended); given is up's parsed list. */
static int update_merge_configs(struct rc *rc, struct up_opts *want, char *const *given, int ngiven) {
    char **c = calloc((size_t)want->nconfigs + (size_t)ngiven + 1, sizeof *c);
    if (!c) return rc_fail_oom(rc);
    int n = 0;
    for (int k = 0; k < want->nconfigs; k++) {
        int replaced = 0;
        for (int j = 0; j < ngiven; j++) replaced |= update_same_directive(want->configs[k], given[j]);
        if (!replaced) c[n++] = want->configs[k];
    }
    for (int j = 0; j < ngiven; j++) c[n++] = given[j];
    free(want->configs);
    want->configs = c;
    want->nconfigs = n;
    return 0;
}

/* Is the line one of the recorded ones, word for word? Pure. */
static int update_recorded_line(const struct up_opts *cur, const char *line) {
    for (int k = 0; k < cur->nconfigs; k++) if (!strcmp(cur->configs[k], line)) return 1;
    return 0;
}

/* Does some node's redis.conf lack the line (a change an interrupted run left undone)? */
static int update_line_missing(const struct update_plan *u, const char *line) {
    int missing = 0;
    sds want = rc_sprintf("\n%s\n", line);
    for (int k = 0; want && !missing && k < u->n; k++) {
        sds have = u->place->conf_now((struct update_plan *)u, &u->nodes[k]);
        missing = !have || !strstr(have, want);
        sdsfree(have);
    }
    sdsfree(want);
    return missing;
}

/* Is the line a change: not recorded, or not yet in every node's redis.conf? */
static int update_line_changed(const struct update_plan *u, const char *line) {
    return !update_recorded_line(&u->cur, line) || update_line_missing(u, line);
}

static int update_want(struct rc *rc, const struct update_opts *o, struct update_plan *u);

/* The recorded options (cur, from the manifest) and the wanted ones (want: cur with the
 * given image and config lines). The password must be the recorded one. */
static int update_options(struct rc *rc, struct docker *d, const struct update_opts *o, struct update_plan *u) {
    up_opts_defaults(&u->cur);
    u->cur.name = o->up.name;
    u->cur.data_dir = o->up.data_dir;
    sds dflt = conf_default_data_dir(o->up.name);
    int located = up_locate_data_dir(d, &u->cur, dflt ? dflt : "/nonexistent", &u->dir);
    sdsfree(dflt);
    if (located < 0) return -1;
    int r = u->dir ? up_manifest_read(rc, u->dir, &u->recorded) : 0;
    if (r < 0) return -1;
    if (r == 0)
        return rc_fail(rc, "no cluster '%s' made by `rcluster up` was found (no %s/" CONF_MANIFEST "); update changes only "
                           "clusters that up made; give --data-dir DIR if it lives elsewhere", o->up.name, u->dir ? u->dir : "?");
    if (up_manifest_merge_dir(rc, &u->cur, u->recorded, u->dir) < 0) return -1;
    u->cur.data_dir = u->dir;
    return update_want(rc, o, u);
}

/* want = cur with the given image and config lines (configs copied: want owns its list). */
static int update_want(struct rc *rc, const struct update_opts *o, struct update_plan *u) {
    u->want = u->cur;
    u->want.configs = NULL;
    u->want.nconfigs = 0;
    if (u->cur.nconfigs && !(u->want.configs = calloc((size_t)u->cur.nconfigs, sizeof *u->want.configs))) return rc_fail_oom(rc);
    for (int k = 0; k < u->cur.nconfigs; k++) u->want.configs[u->want.nconfigs++] = u->cur.configs[k];
    if (o->up.image_set) { u->want.image = o->up.image; u->want.image_set = 1; }
    u->want.server = o->up.server;   /* else read from the image itself, as up does */
    return update_merge_configs(rc, &u->want, o->up.configs, o->up.nconfigs);
}

/* A container's image, running state and whether it exists. 1 found, 0 not, -1 error. */
static int update_inspect_container(struct docker *d, const char *name, char *image, size_t len, int *running) {
    json_value_s *v = NULL;
    int r = docker_inspect(d, "containers", name, &v);
    if (r == 1) {
        const char *img = json_string(json_get(json_get(v, "Config"), "Image"));
        snprintf(image, len, "%s", img ? img : "?");
        *running = json_is_true(json_get(json_get(v, "State"), "Running"));
    }
    json_free(v);
    return r;
}

/* Which containers exist, what they run, and what an interrupted run left. */
static int update_inspect_nodes(struct docker *d, struct update_plan *u) {
    struct rc *rc = d->rc;
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        char prev[96], img[256];
        int running = 0, prun = 0;
        snprintf(prev, sizeof prev, "%s" UPDATE_PREVIOUS, x->name);
        int r = update_inspect_container(d, x->name, x->image, sizeof x->image, &running);
        int p = r < 0 ? -1 : update_inspect_container(d, prev, img, sizeof img, &prun);
        if (r < 0 || p < 0) return -1;
        x->has_previous = p == 1;
        x->missing = r == 0;
        if (r == 0 && p == 0)
            return rc_fail(rc, "container %s is missing; repair the cluster first with `rcluster up --name %s`, then update",
                           x->name, u->want.name);
        x->stopped = r == 1 && !running;
        if (x->missing) snprintf(x->image, sizeof x->image, "%s", img);
    }
    return 0;
}

/* Docker: has node x's container not crashed? Else rc->err says why, with its logs. */
static int update_docker_alive(struct update_plan *u, struct update_node *x) {
    if (up_container_alive(u->d, x->n)) return 1;
    up_explain_node(u->d, x->n);
    return 0;
}

/* POST to a container path (stop, start, rename ...); 304 (already so) is fine. */
static int update_container_post(struct docker *d, const char *name, const char *what) {
    sds path = rc_sprintf("/containers/%s/%s", name, what);
    int r = path ? docker_call(d, "POST", path, NULL, NULL, 304) : rc_fail_oom(d->rc);
    sdsfree(path);
    return r < 0 ? -1 : 0;
}

static int update_container_delete(struct docker *d, const char *name) {
    sds path = rc_sprintf("/containers/%s?force=1", name);
    int r = path ? docker_call(d, "DELETE", path, NULL, NULL, 404) : rc_fail_oom(d->rc);
    sdsfree(path);
    return r < 0 ? -1 : 0;
}

/* What server and version an image runs, before anything changes (image_server_version:
 * its Env, else `SERVER-server --version` in a throwaway container). Fills u->new_server
 * and its payload versions; refuses when the version cannot be told. */
static int update_probe_version(struct update_plan *u, const char *image, const char *server) {
    char ver[32], info[128];
    image_server_version(u->d, image, server, u->want.name, ver, sizeof ver);
    if (!ver[0])
        return rc_fail(u->rc, "cannot tell which version of %s-server image %s runs (neither its Env nor `%s-server --version` "
                              "says), so whether it can sync from the running nodes is unknown; nothing was changed",
                       server, image, server);
    server_info_text(server, ver, info, sizeof info);
    info_server_desc(info, u->new_server, sizeof u->new_server);
    server_payload_versions(info, &u->new_w, &u->new_r);
    u->new_80 = u->new_w == 80;
    return 0;
}

/* Roles, ids and servers of the plan's nodes from a session of the running cluster. */
static int update_read_roles(struct rc *rc, struct update_plan *u, const struct session *s) {
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        const struct snode *sx = NULL;
        for (int i = 0; i < s->n && !sx; i++)
            if (s->nodes[i].port == x->ann_port && !strcmp(s->nodes[i].ip, x->ann_ip)) sx = &s->nodes[i];
        if (!sx) return rc_fail(rc, "node %s (%s:%d) is not in the cluster's CLUSTER NODES; repair it first with "
                                    "`rcluster up --name %s`", x->name, x->ann_ip, x->ann_port, u->want.name);
        memcpy(x->id, sx->id, sizeof x->id);
        x->master = snode_is_master(sx);
        snprintf(x->master_id, sizeof x->master_id, "%s", x->master ? "" : snode_master_id(sx));
        snprintf(x->server, sizeof x->server, "%s", sx->server);
        x->payload_w = sx->payload_w;
        sds slots = x->master && snode_slots(sx) ? nodeinfo_slots_str(snode_slots(sx)) : NULL;
        snprintf(x->slots, sizeof x->slots, "%s", slots ? slots : "");
        sdsfree(slots);
    }
    return 0;
}

static const struct update_node *update_node_by_id(const struct update_plan *u, const char *id) {
    for (int k = 0; k < u->n; k++) if (!strcmp(u->nodes[k].id, id)) return &u->nodes[k];
    return NULL;
}

/* A replica of master m that runs the wanted image and is not m. */
static struct update_node *update_replica_of(struct update_plan *u, const struct update_node *m, int updated) {
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        if (!x->master && !strcmp(x->master_id, m->id) && (!updated || !x->restart)) return x;
    }
    return NULL;
}

/* Can a node running the new server take a full sync from master m? Valkey 9 sends its
 * own format only to replicas that say they run >= 9.0. 0, or -1 naming both servers. */
static int update_check_sync(struct rc *rc, const struct update_plan *u, const struct update_node *m) {
    int sent = m->payload_w == 80 && !u->new_80 ? 11 : m->payload_w;
    if (payload_readable(sent, u->new_r, u->new_80)) return 0;
    return rc_fail_as(rc, RC_ERR_INCOMPATIBLE, "%s cannot replace %s: a %s replica cannot take a full sync from a %s master "
                      "(it sends RDB version %d; %s reads up to %d); nothing was changed", u->new_server, m->server,
                      u->new_server, m->server, sent, u->new_server, u->new_r);
}

/* Which directives need a restart: any that CONFIG SET refuses to set to the value it
 * has now (an immutable one, or one the server does not know). Reads only. */
static int update_classify_configs(struct rc *rc, struct update_plan *u) {
    if (!(u->live = calloc((size_t)u->want.nconfigs + 1, sizeof *u->live))) return rc_fail_oom(rc);
    struct rconn c;
    if (rconn_open(rc, &c, u->nodes[0].host, u->nodes[0].port) < 0) { rconn_free(&c); return -1; }
    int ret = 0;
    for (int k = 0; ret == 0 && k < u->want.nconfigs; k++) {
        const char *line = u->want.configs[k];
        if (!update_line_changed(u, line)) continue;
        while (*line == ' ' || *line == '\t') line++;
        sds name = sdsnewlen(line, update_directive_len(line));
        struct resp *r = name ? rconn_call(rc, &c, "CONFIG GET", "CONFIG", "GET", name, RESP_END) : NULL;
        int live = r && r->type == RESP_ARRAY && r->n == 2 && r->elem[1]->type == RESP_BULK;
        if (!r) ret = -1;
        struct resp *s = live ? rconn_call_argv(rc, &c, "CONFIG SET", 4, (const char *[]){ "CONFIG", "SET", name, r->elem[1]->str }) : NULL;
        if (live && !s) { live = 0; sdsfree(rc->err); rc->err = NULL; }
        if (live) u->live[u->nlive++] = u->want.configs[k];
        else u->restart_config = 1;
        resp_free(s);
        resp_free(r);
        sdsfree(name);
    }
    rconn_free(&c);
    return ret;
}

/* Does node x's redis.conf say something else than the wanted options would write? A
 * node restarted by an interrupted run of the same update has the wanted one already. */
static int update_conf_differs(struct update_plan *u, const struct update_node *x) {
    sds have = u->place->conf_now(u, x);
    sds want = u->place->conf_want(u, x);
    int differs = !have || !want || strcmp(have, want) != 0;
    sdsfree(have);
    sdsfree(want);
    return differs;
}

/* Which nodes are replaced, and which start without their files. */
static void update_mark_restarts(struct update_plan *u) {
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        int other_image = strcmp(x->image, u->want.image) != 0;
        u->image_change |= other_image;
        x->restart = other_image || x->missing || (u->new_password && u->place->conf_restarts) ||
                     ((u->restart_config || u->place->conf_restarts) && update_conf_differs(u, x));
        x->empty = x->restart && other_image && !payload_readable(x->payload_w, u->new_r, u->new_80);
        u->restarts += x->restart;
    }
}

/* What an interrupted run left half-done is put back as it was: a node's previous
 * container gets its name back, a stopped one is started; then the cluster must be
 * healthy again within --timeout. The update itself then proceeds as planned. */
static int update_docker_recover(struct update_plan *u) {
    struct docker *d = u->d;
    struct rc *rc = d->rc;
    int started = 0;
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        char prev[96], rename_q[160];
        snprintf(prev, sizeof prev, "%s" UPDATE_PREVIOUS, x->name);
        snprintf(rename_q, sizeof rename_q, "rename?name=%s", x->name);
        started += x->has_previous && !x->missing;   /* it may still be syncing: wait below */
        if (!x->missing && !x->stopped) continue;
        rc_progress(rc, "%s: an interrupted update left it %s; starting it as it was", x->name,
                    x->missing ? "renamed aside" : "stopped");
        if ((x->missing && update_container_post(d, prev, rename_q) < 0) || update_container_post(d, x->name, "start") < 0)
            return rc_wrap(rc, "putting %s back", x->name);
        x->has_previous = x->missing ? 0 : x->has_previous;
        x->missing = x->stopped = 0;
        started++;
    }
    while (started && check_cluster(rc, u->nodes[0].host, u->nodes[0].port, CHECK_SILENT) != 0) {
        if (rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted");
        if (rc_now_ms() >= u->deadline) return rc_wrap(rc, "after putting back what an interrupted update left");
        rc_sleep_ms(100);
    }
    return 0;
}

/* Remove NAME.previous containers an interrupted run left beside running nodes. */
static int update_remove_leftovers(struct update_plan *u) {
    struct docker *d = u->d;
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        char prev[96];
        snprintf(prev, sizeof prev, "%s" UPDATE_PREVIOUS, x->name);
        if (!x->has_previous) continue;
        rc_progress(d->rc, "Removing %s, which an interrupted update left", prev);
        if (update_container_delete(d, prev) < 0) return -1;
        x->has_previous = 0;
    }
    return 0;
}

/* Any node whose container or service runs another image than the wanted one? */
static int update_image_differs(const struct update_plan *u) {
    for (int k = 0; k < u->n; k++) if (strcmp(u->nodes[k].image, u->want.image) != 0) return 1;
    return 0;
}

/* Docker, after the health check: leftovers of an interrupted run removed; the wanted
 * image present (pulled or built as up does), its server and version known. */
static int update_docker_prepare(struct update_plan *u, int dry_run) {
    struct docker *d = u->d;
    if (!dry_run && update_remove_leftovers(u) < 0) return -1;
    if (u->want.image_set && up_ensure_image(d, &u->up) < 0) return -1;
    if (up_detect_server(d, &u->up) < 0) return -1;
    return update_image_differs(u) ? update_probe_version(u, u->up.image, u->up.server) : 0;
}

/* Every check before the first change: health, a linked replica for every master that
 * is replaced, sync compatibility, which directives are live. */
static int update_preflight(struct update_plan *u, const struct update_opts *o) {
    struct rc *rc = u->rc;
    struct addr seed;
    memset(&seed, 0, sizeof seed);
    snprintf(seed.host, sizeof seed.host, "%s", u->nodes[0].host);
    snprintf(seed.ip, sizeof seed.ip, "%s", u->nodes[0].host);
    seed.port = u->nodes[0].port;
    if (!o->dry_run && u->place->recover(u) < 0) return -1;
    if (check_cluster(rc, seed.ip, seed.port, CHECK_SILENT) != 0)
        return rc_wrap(rc, "update needs a healthy cluster (repair it with `rcluster up%s --name %s` or `rcluster fix`); "
                           "nothing was changed", o->up.swarm ? " --swarm" : "", u->want.name);
    struct session s;
    int ret = sess_open(rc, &s, &seed);
    if (ret == 0) ret = update_read_roles(rc, u, &s);
    sds servers = ret == 0 ? sess_servers(&s) : NULL;
    snprintf(u->old_server, sizeof u->old_server, "%s", servers ? servers : "?");
    sdsfree(servers);
    sess_free(&s);
    if (ret < 0 || u->place->prepare(u, o->dry_run) < 0 || update_classify_configs(rc, u) < 0) return -1;
    update_mark_restarts(u);
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        if (x->restart && x->empty && !u->place->can_start_empty)
            return rc_fail_as(rc, RC_ERR_INCOMPATIBLE, "%s cannot read the files %s wrote, and on Swarm rcluster cannot set "
                              "a node's volume aside for it to start empty; nothing was changed", u->new_server, x->server);
        if (!x->master || !x->restart) continue;
        if (u->image_change && u->new_server[0] && update_check_sync(rc, u, x) < 0) return -1;
        if (!update_replica_of(u, x, 0) && x->empty)
            return rc_fail_as(rc, RC_ERR_INCOMPATIBLE, "master %s has no replica, and %s cannot read the files %s wrote: it "
                              "would start empty and its keys would be lost; add a replica first (`rcluster scale --name %s "
                              "--replicas 1`); nothing was changed", x->name, u->new_server, x->server, u->want.name);
        if (!update_replica_of(u, x, 0) && !o->allow_downtime)
            return rc_fail(rc, "master %s has no replica to hand its slots to while it is replaced; add one (`rcluster scale "
                               "--name %s --replicas 1`) or pass --allow-downtime (its slots are unavailable while it "
                               "restarts); nothing was changed", x->name, u->want.name);
    }
    return 0;
}

/* ---- password rotation ----------------------------------------------------- */

/* Does every node take AUTH with the new password already (a rotation that an earlier
 * run finished or cut short after the masterauth step)? */
static int update_new_password_works(struct rc *rc, struct update_plan *u) {
    sds old = rc->password;
    rc->password = u->new_password;
    int all = 1;
    for (int k = 0; all && k < u->n; k++) {
        struct rconn c;
        all = rconn_open(rc, &c, u->nodes[k].host, u->nodes[k].port) == 0;
        rconn_free(&c);
    }
    rc->password = old;
    sdsfree(rc->err);
    rc->err = NULL;
    return all;
}

/* Send one command to every node through its published port; each must say OK. */
static int update_on_every_node(struct rc *rc, struct update_plan *u, int argc, const char **argv) {
    for (int k = 0; k < u->n; k++) {
        struct rconn c;
        int ok = rconn_open(rc, &c, u->nodes[k].host, u->nodes[k].port);
        struct resp *r = ok == 0 ? rconn_call_argv(rc, &c, argv[0], argc, argv) : NULL;
        rconn_free(&c);
        if (!r) return rc_wrap(rc, "node %s", u->nodes[k].name);
        resp_free(r);
    }
    return 0;
}

/* Rotate without a restart and without a moment where a replica cannot authenticate:
 * both passwords on every node, masterauth to the new one everywhere, then requirepass
 * (which leaves the default user only the new one); an ACL user loses the old one last. */
static int update_rotate_password(struct rc *rc, struct update_plan *u) {
    const char *user = rc->user ? rc->user : "default";
    sds add = rc_sprintf(">%s", u->new_password), drop = rc_sprintf("<%s", rc->password);
    int ret = add && drop ? 0 : rc_fail_oom(rc);
    rc_progress(rc, "Rotating the password: both on every node, masterauth, then requirepass");
    if (ret == 0) ret = update_on_every_node(rc, u, 4, (const char *[]){ "ACL", "SETUSER", user, add });
    if (ret == 0) ret = update_on_every_node(rc, u, 4, (const char *[]){ "CONFIG", "SET", "masterauth", u->new_password });
    if (ret == 0) ret = update_on_every_node(rc, u, 4, (const char *[]){ "CONFIG", "SET", "requirepass", u->new_password });
    if (ret == 0 && rc->user) ret = update_on_every_node(rc, u, 4, (const char *[]){ "ACL", "SETUSER", user, drop });
    sdsfree(add);
    sdsfree(drop);
    if (ret < 0) return rc_wrap(rc, "rotating the password (run update again with both files to finish it)");
    return 0;
}

/* ---- files: the manifest and each node's redis.conf ------------------------ */

/* Node x's redis.conf from the template with the wanted options (and password); like
 * update_rewrite_file. */
static int update_write_conf(struct update_plan *u, const struct update_node *x) {
    struct rc *rc = u->rc;
    sds text = up_node_conf(rc, &u->up, x->n, 0);
    sds path = rc_cat(conf_node_dir(u->dir, x->n->i, "conf"), "/redis.conf");
    int ret = text && path ? conf_rewrite_file(rc, path, text, 1) : rc_fail_oom(rc);
    sdsfree(text);
    sdsfree(path);
    return ret;
}

/* The manifest as the cluster will be: the wanted image, config lines and server. */
static int update_docker_manifest(struct update_plan *u) {
    struct rc *rc = u->rc;
    struct up_derived dv = { u->up.server, u->up.image, NULL, -1, -1 };
    sds man = up_manifest_render(rc, &u->want, &dv);
    sds path = rc_sprintf("%s/" CONF_MANIFEST, u->dir);
    int ret = man && path ? conf_rewrite_file(rc, path, man, 0) : rc_fail_oom(rc);
    sdsfree(man);
    sdsfree(path);
    return ret < 0 ? -1 : 0;
}

/* ---- one node: replace its container, wait until it has caught up ---------- */

/* INFO replication of node x through its published port, or NULL. */
static sds update_info(struct rc *rc, const struct update_node *x, const char *section) {
    struct rconn c;
    sds s = rconn_open(rc, &c, x->host, x->port) == 0 ? rconn_call_str(rc, &c, "INFO", "INFO", section, RESP_END) : NULL;
    rconn_free(&c);
    return s;
}

/* master_repl_offset of the master that replica info names, or -1. */
static long long update_master_offset(struct rc *rc, const char *info) {
    char host[64], port[16], off[32];
    long v;
    if (info_field(info, "master_host", host, sizeof host) < 0 || info_field(info, "master_port", port, sizeof port) < 0 ||
        rc_parse_int(port, 1, 65535, &v) < 0) return -1;
    struct rconn c;
    sds mi = rconn_open(rc, &c, host, (int)v) == 0 ? rconn_call_str(rc, &c, "INFO", "INFO", "replication", RESP_END) : NULL;
    rconn_free(&c);
    long long o = mi && info_field(mi, "master_repl_offset", off, sizeof off) == 0 ? strtoll(off, NULL, 10) : -1;
    sdsfree(mi);
    return o;
}

/* repl-diskless-sync-delay 0 on node x for the rest of the run (a replaced replica
 * syncs at once instead of after the default 5 s); the value it had is kept once. */
static void update_no_sync_delay(struct rc *rc, struct update_node *x) {
    struct rconn c;
    if (rconn_open(rc, &c, x->host, x->port) == 0) {
        struct resp *g = rconn_call(rc, &c, "CONFIG GET", "CONFIG", "GET", "repl-diskless-sync-delay", RESP_END);
        long v;
        if (g && g->type == RESP_ARRAY && g->n == 2 && g->elem[1]->type == RESP_BULK &&
            rc_parse_int(g->elem[1]->str, 0, 3600, &v) == 0 && v != 0) {
            struct resp *s = rconn_call(rc, &c, "CONFIG SET", "CONFIG", "SET", "repl-diskless-sync-delay", "0", RESP_END);
            if (s && x->sync_delay < 0) x->sync_delay = v;
            resp_free(s);
        }
        resp_free(g);
    }
    rconn_free(&c);
}

/* Give every node the repl-diskless-sync-delay it had (best effort, every exit path). */
static void update_restore_sync_delays(struct rc *rc, struct update_plan *u) {
    struct rc_err_saved saved = rc_err_save(rc);
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        if (x->sync_delay < 0) continue;
        char v[24];
        snprintf(v, sizeof v, "%ld", x->sync_delay);
        struct rconn c;
        struct resp *s = rconn_open(rc, &c, x->host, x->port) == 0
                         ? rconn_call(rc, &c, "CONFIG SET", "CONFIG", "SET", "repl-diskless-sync-delay", v, RESP_END) : NULL;
        if (!s) rc_warn(rc, "%s: repl-diskless-sync-delay stays 0 (it was %s): %s", x->name, v, rc->err ? rc->err : "?");
        else x->sync_delay = -1;
        resp_free(s);
        rconn_free(&c);
    }
    rc_err_restore(rc, &saved);
}

/* Is x a replica whose link is up and whose offset has reached its master's? */
static int update_caught_up(struct rc *rc, const struct update_node *x) {
    sds info = update_info(rc, x, "replication");
    char role[16], link[16], off[32];
    int ok = info && info_field(info, "role", role, sizeof role) == 0 && !strcmp(role, "slave") &&
             info_field(info, "master_link_status", link, sizeof link) == 0 && !strcmp(link, "up") &&
             info_field(info, "slave_repl_offset", off, sizeof off) == 0;
    long long mo = ok ? update_master_offset(rc, info) : -1;
    ok = ok && mo >= 0 && strtoll(off, NULL, 10) >= mo;
    sdsfree(info);
    return ok;
}

/* Wait until node x answers, has caught up with its master (when it is a replica) and
 * the cluster is healthy again. */
static int update_wait_node(struct update_plan *u, struct update_node *x, int replica) {
    struct rc *rc = u->rc;
    for (;;) {
        int64_t step = rc_now_ms() + 1000;
        if (engine_wait_ping(rc, x->host, x->port, step < u->deadline ? step : u->deadline) == 0) break;
        if (rc_interrupted()) return -1;
        if (rc_now_ms() >= u->deadline) return rc_fail_as(rc, RC_ERR_TIMEOUT, "%s did not answer within --timeout", x->name);
        if (!u->place->alive(u, x)) return -1;
    }
    if (rc->verbose) rc_progress(rc, "%s answers PING", x->name);
    update_no_sync_delay(rc, x);
    while (!(replica ? update_caught_up(rc, x) : 1) ||
           check_cluster(rc, x->host, x->port, CHECK_SILENT) != 0) {
        if (rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted while %s rejoined", x->name);
        if (rc_now_ms() >= u->deadline)
            return rc_fail_as(rc, RC_ERR_TIMEOUT, "%s did not rejoin and catch up within --timeout %g s%s%s", x->name,
                              rc->timeout, rc->err ? ": " : "", rc->err ? rc->err : "");
        if (!u->place->alive(u, x)) return -1;
        rc_sleep_ms(100);
    }
    return 0;
}

/* Move node x's data files (RDB, AOF directory) into data/before-update-T, so that a
 * server that cannot read them starts empty and takes a full sync; nodes.conf stays. */
static int update_set_data_aside(struct rc *rc, struct update_plan *u, const struct update_node *x, sds *aside) {
    static const char *const files[] = { "dump.rdb", "appendonlydir" };
    sds data = conf_node_dir(u->dir, x->n->i, "data");
    *aside = data ? rc_sprintf("%s/before-update-%ld", data, (long)time(NULL)) : NULL;
    int ret = *aside ? 0 : rc_fail_oom(rc);
    if (ret == 0 && mkdir(*aside, 0755) < 0 && errno != EEXIST) ret = rc_fail_errno(rc, *aside);
    for (size_t k = 0; ret == 0 && k < sizeof files / sizeof files[0]; k++) {
        sds from = rc_sprintf("%s/%s", data, files[k]), to = rc_sprintf("%s/%s", *aside, files[k]);
        if (!from || !to) ret = rc_fail_oom(rc);
        else if (rename(from, to) < 0 && errno != ENOENT) ret = rc_fail_errno(rc, from);
        sdsfree(from);
        sdsfree(to);
    }
    sdsfree(data);
    return ret;
}

/* Put back what update_set_data_aside moved (best effort: a rollback). */
static void update_put_data_back(struct rc *rc, struct update_plan *u, const struct update_node *x, const char *aside) {
    static const char *const files[] = { "dump.rdb", "appendonlydir" };
    sds data = conf_node_dir(u->dir, x->n->i, "data");
    for (size_t k = 0; data && k < sizeof files / sizeof files[0]; k++) {
        sds from = rc_sprintf("%s/%s", aside, files[k]), to = rc_sprintf("%s/%s", data, files[k]);
        if (from && to && access(from, F_OK) == 0 && rename(from, to) < 0) rc_warn(rc, "could not move %s back: %s", from, strerror(errno));
        sdsfree(from);
        sdsfree(to);
    }
    sdsfree(data);
}

/* The replacement failed: remove the new container, give the old one its name back
 * and start it, with its old redis.conf (when this run wrote a new one) and files.
 * Keeps the first error. */
static void update_roll_back(struct update_plan *u, struct update_node *x, const char *prev, const char *aside, int conf_written) {
    struct docker *d = u->d;
    struct rc *rc = d->rc;
    struct rc_err_saved saved = rc_err_save(rc);
    if (rc_interrupted()) rc_progress(rc, "Interrupted: giving %s its previous container back", x->name);
    else rc_progress(rc, "%s did not come back on %s: giving it its previous container back", x->name, u->want.image);
    sds conf = rc_cat(conf_node_dir(u->dir, x->n->i, "conf"), "/redis.conf");
    sds conf_prev = conf ? rc_sprintf("%s" CONF_PREVIOUS, conf) : NULL;
    if (conf_written && conf_prev && rename(conf_prev, conf) < 0) rc_warn(rc, "could not restore %s", conf);
    if (aside) update_put_data_back(rc, u, x, aside);
    char rename_q[160];
    snprintf(rename_q, sizeof rename_q, "rename?name=%s", x->name);
    if (update_container_delete(d, x->name) < 0 || update_container_post(d, prev, rename_q) < 0 ||
        update_container_post(d, x->name, "start") < 0)
        rc_warn(rc, "rolling %s back: %s", x->name, rc->err ? rc->err : "?");
    sdsfree(conf);
    sdsfree(conf_prev);
    rc_err_restore(rc, &saved);
}

/* Create and start node x's container from the wanted image on its data and ports. */
static int update_create_container(struct update_plan *u, struct update_node *x) {
    struct docker *d = u->d;
    sds path = rc_sprintf("/containers/create?name=%s", x->name), body = up_container_body(&u->up, x->n);
    int r = path && body ? docker_call(d, "POST", path, body, NULL, 0) : rc_fail_oom(d->rc);
    sdsfree(path);
    sdsfree(body);
    return r < 0 ? -1 : update_container_post(d, x->name, "start");
}

/* Replace node x (a replica now, or a master with --allow-downtime): its redis.conf,
 * then stop, rename aside, create, start, wait; the old container is removed once the
 * new one has caught up, or renamed back on failure. */
static int update_docker_replace(struct update_plan *u, struct update_node *x, int replica) {
    struct docker *d = u->d;
    struct rc *rc = d->rc;
    char prev[96], rename_q[160];
    snprintf(prev, sizeof prev, "%s" UPDATE_PREVIOUS, x->name);
    snprintf(rename_q, sizeof rename_q, "rename?name=%s", prev);
    int64_t t0 = rc_now_ms();
    if (!strcmp(x->image, u->want.image))
        rc_progress(rc, "%s (%s): restarting it with its new redis.conf", x->name,
                    x->failover_to[0] ? "now a replica" : replica ? "replica" : "master, in place");
    else
        rc_progress(rc, "%s (%s): %s -> %s%s", x->name, x->failover_to[0] ? "now a replica" : replica ? "replica" : "master, in place",
                    x->image, u->want.image, x->empty ? ", starting empty: it cannot read the files its old server wrote" : "");
    if (!x->missing) {
        if (x->has_previous && update_container_delete(d, prev) < 0) return -1;
        if (update_container_post(d, x->name, "stop?t=30") < 0 || update_container_post(d, x->name, rename_q) < 0)
            return rc_wrap(rc, "stopping %s", x->name);
    }
    sds aside = NULL;
    rc_set_abandon_note("the node being replaced may be stopped; run `rcluster update` again with the same options");
    int conf = update_write_conf(u, x);
    int ret = conf < 0 ? -1 : x->empty ? update_set_data_aside(rc, u, x, &aside) : 0;
    if (ret == 0 && rc->verbose) rc_progress(rc, "%s stopped", x->name);
    if (ret == 0) ret = update_create_container(u, x);
    if (ret == 0 && rc->verbose) rc_progress(rc, "%s started", x->name);
    if (ret == 0) ret = update_wait_node(u, x, replica);
    if (ret < 0) update_roll_back(u, x, prev, aside, conf == 1);
    else if (update_container_delete(d, prev) < 0) rc_warn(rc, "%s", rc->err);
    rc_set_abandon_note(NULL);
    sdsfree(aside);
    x->took_ms = rc_now_ms() - t0;
    if (ret < 0) return rc_wrap(rc, "replacing %s", x->name);
    rc_progress(rc, "%s runs %s and has caught up (%.1f s)", x->name, u->want.image, (double)x->took_ms / 1000.0);
    x->missing = 0;
    x->has_previous = 0;
    snprintf(x->image, sizeof x->image, "%s", u->want.image);
    return 0;
}

/* Hand master m's slots to replica r: CLUSTER FAILOVER on r, then wait until r says it
 * is a master and m follows it with its link up. Records how long writes paused. */
static int update_failover(struct rc *rc, struct update_plan *u, struct update_node *m, struct update_node *r) {
    rc_progress(rc, "%s (master): CLUSTER FAILOVER to its replica %s", m->name, r->name);
    struct rconn c;
    int ret = rconn_open(rc, &c, r->host, r->port);
    struct resp *ok = ret == 0 ? rconn_call(rc, &c, "CLUSTER FAILOVER", "CLUSTER", "FAILOVER", RESP_END) : NULL;
    rconn_free(&c);
    if (!ok) return rc_wrap(rc, "failing %s over to %s", m->name, r->name);
    resp_free(ok);
    int64_t t0 = rc_now_ms();
    int promoted = 0;
    while (!promoted || !update_caught_up(rc, m)) {
        if (!promoted) {
            sds info = update_info(rc, r, "replication");
            char role[16];
            promoted = info && info_field(info, "role", role, sizeof role) == 0 && !strcmp(role, "master");
            sdsfree(info);
            if (promoted) m->pause_ms = rc_now_ms() - t0;
        }
        if (rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted during the failover of %s", m->name);
        if (rc_now_ms() >= u->deadline)
            return rc_fail_as(rc, RC_ERR_TIMEOUT, "the failover of %s to %s did not finish within --timeout %g s", m->name,
                              r->name, rc->timeout);
        rc_sleep_ms(promoted ? 50 : 5);
    }
    snprintf(m->failover_to, sizeof m->failover_to, "%s", r->name);
    rc_progress(rc, "%s is the master of slots %s now: writes to them paused %.3f s", r->name, m->slots[0] ? m->slots : "-",
                (double)m->pause_ms / 1000.0);
    m->master = 0;
    snprintf(m->master_id, sizeof m->master_id, "%s", r->id);
    r->master = 1;
    r->master_id[0] = 0;
    return 0;
}

/* ---- apply, report ---------------------------------------------------------- */

static int update_is_live(const struct update_plan *u, const char *line) {
    for (int k = 0; k < u->nlive; k++) if (u->live[k] == line) return 1;
    return 0;
}

static void update_print_plan(struct rc *rc, const struct update_plan *u) {
    if (rc->json) return;
    printf("Update cluster '%s' (%d nodes, %s):\n", u->want.name, u->n, u->old_server);
    if (u->image_change) printf("  image: -> %s (%s)\n", u->want.image, u->new_server);
    for (int k = 0; k < u->nlive; k++) printf("  config: '%s' (CONFIG SET on every node, no restart)\n", u->live[k]);
    if (u->restart_config)
        for (int k = 0; k < u->want.nconfigs; k++)
            if (update_line_changed(u, u->want.configs[k]) && !update_is_live(u, u->want.configs[k]))
                printf("  config: '%s' (needs a restart)\n", u->want.configs[k]);
    if (u->new_password)
        printf("  password: rotated without a restart (ACL SETUSER, masterauth, requirepass)%s\n",
               u->place->conf_restarts ? "; each service then moves to a new secret with its restart" : "");
    int step = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < u->n; k++) {
            const struct update_node *x = &u->nodes[k];
            if (!x->restart || x->master != pass) continue;
            const struct update_node *r = x->master ? update_replica_of((struct update_plan *)u, x, 0) : NULL;
            const struct update_node *m = x->master ? NULL : update_node_by_id(u, x->master_id);
            sds what = !strcmp(x->image, u->want.image) ? sdsnew("restart it with its new redis.conf")
                       : rc_sprintf("replace its %s (%s -> %s)%s", u->place->what, x->image, u->want.image,
                                    x->empty ? "; it starts empty and syncs" : "");
            sds how = r ? rc_sprintf("CLUSTER FAILOVER to %s, then ", r->name)
                      : x->master ? rc_sprintf("no replica (--allow-downtime): slots %s are unavailable until it has "
                                               "restarted and loaded its data; ", x->slots[0] ? x->slots : "none") : sdsempty();
            printf("  %d. %s (%s%s): %s%s\n", step++, x->name, x->master ? "master" : "replica of ", m ? m->name : "",
                   how ? how : "", what ? what : "");
            sdsfree(how);
            sdsfree(what);
        }
    if (!u->restarts && !u->nlive && !u->new_password) printf("  nothing to change\n");
}

/* --json: the outcome as one document. */
static void update_print_json(struct rc *rc, const struct update_plan *u, int dry_run, int64_t took_ms) {
    sds j = rc_json_str(sdsnew("{\"ok\":true,\"name\":"), u->want.name);
    j = rc_catprintf(j, ",\"dry_run\":%s,\"image\":", dry_run ? "true" : "false");
    j = rc_json_str(j, u->want.image);
    j = rc_json_str(rc_cat(j, ",\"server_before\":"), u->old_server);
    j = rc_json_str(rc_cat(j, ",\"server\":"), u->image_change ? u->new_server : u->old_server);
    j = rc_cat(j, ",\"config_live\":[");
    for (int k = 0; k < u->nlive; k++) j = rc_json_str(k ? rc_cat(j, ",") : j, u->live[k]);
    j = rc_catprintf(j, "],\"config_restart\":%s,\"password_rotated\":%s,\"nodes\":[", u->restart_config ? "true" : "false",
                     u->new_password ? "true" : "false");
    for (int k = 0; k < u->n; k++) {
        const struct update_node *x = &u->nodes[k];
        j = rc_json_str(rc_cat(j, k ? ",{\"name\":" : "{\"name\":"), x->name);
        j = rc_catprintf(j, ",\"role\":\"%s\",\"replaced\":%s,\"starts_empty\":%s,\"seconds\":%.3f,\"write_pause_s\":%.3f,"
                         "\"failover_to\":", x->master ? "master" : "replica", x->restart ? "true" : "false", x->empty ? "true" : "false", (double)x->took_ms / 1000.0,
                         (double)x->pause_ms / 1000.0);
        j = rc_cat(rc_json_str(j, x->failover_to[0] ? x->failover_to : NULL), "}");
    }
    j = rc_catprintf(j, "],\"seconds\":%.3f}\n", (double)took_ms / 1000.0);
    rc_json_out(rc, j);
    sdsfree(j);
}

/* The last line: how long, how many nodes, how long writes paused at most. */
static void update_print_summary(const struct update_plan *u, int64_t took_ms) {
    int64_t longest = 0;
    int failovers = 0, replaced = 0;
    for (int k = 0; k < u->n; k++) {
        if (u->nodes[k].pause_ms > longest) longest = u->nodes[k].pause_ms;
        failovers += u->nodes[k].failover_to[0] != 0;
        replaced += u->nodes[k].took_ms > 0;
    }
    printf("Updated cluster '%s' in %.1f s: %d node(s) replaced", u->want.name, (double)took_ms / 1000.0, replaced);
    if (failovers) printf(", %d failover(s), writes paused %.3f s at most", failovers, (double)longest / 1000.0);
    printf("\n");
}

/* Replicas first; then each master: failover to an updated replica, then replace it. */
static int update_restart_all(struct update_plan *u) {
    struct rc *rc = u->rc;
    int64_t step = (int64_t)(rc->timeout * 1000);   /* --timeout bounds each node's step */
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        u->deadline = rc_now_ms() + step;
        if (x->restart && !x->master && u->place->replace(u, x, 1) < 0) return -1;
        if (x->restart && !x->master) x->restart = 0;
    }
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        if (!x->restart) continue;
        struct update_node *r = update_replica_of(u, x, 1);
        u->deadline = rc_now_ms() + step;
        if (r && update_failover(rc, u, x, r) < 0) return -1;
        u->deadline = rc_now_ms() + step;
        if (u->place->replace(u, x, r != NULL) < 0) return -1;
        x->restart = 0;
    }
    return 0;
}

/* Apply the plan: manifest, password, live directives and configs, restarts. */
static int update_apply(struct update_plan *u) {
    struct rc *rc = u->rc;
    if (u->new_password && !u->rotated && update_rotate_password(rc, u) < 0) return -1;
    if (u->new_password) {
        sdsfree(rc->password);
        rc->password = sdsdup(u->new_password);
        if (!rc->password) return rc_fail_oom(rc);
    }
    for (int k = 0; k < u->nlive; k++) {
        const char *line = u->live[k];
        while (*line == ' ' || *line == '\t') line++;
        size_t nl = update_directive_len(line);
        sds name = sdsnewlen(line, nl);
        const char *value = line + nl + strspn(line + nl, " \t");
        rc_progress(rc, "CONFIG SET %s %s on every node", name, value);
        int r = name ? update_on_every_node(rc, u, 4, (const char *[]){ "CONFIG", "SET", name, value }) : rc_fail_oom(rc);
        sdsfree(name);
        if (r < 0) return -1;
    }
    for (int k = 0; k < u->n; k++) if (!u->nodes[k].restart && u->place->persist(u, &u->nodes[k]) < 0) return -1;
    for (int k = 0; k < u->n && u->restarts; k++) update_no_sync_delay(rc, &u->nodes[k]);
    int ret = update_restart_all(u);
    update_restore_sync_delays(rc, u);
    if (ret == 0) ret = u->place->manifest(u);
    if (ret < 0 && rc_interrupted())
        return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted: every slot is still served; the node being replaced got its "
                          "previous container back; run the same `rcluster update` again to finish");
    return ret;
}

/* ---- Docker containers ------------------------------------------------------- */

/* Docker: node x's redis.conf as it is on disk / as the wanted options write it. */
static sds update_docker_conf_now(struct update_plan *u, const struct update_node *x) {
    sds path = rc_cat(conf_node_dir(u->dir, x->n->i, "conf"), "/redis.conf");
    sds have = path && access(path, F_OK) == 0 ? rc_read_file(u->rc, path, 1 << 20) : NULL;
    sdsfree(path);
    return have;
}

static sds update_docker_conf_want(struct update_plan *u, const struct update_node *x) {
    return up_node_conf(u->rc, &u->up, x->n, 0);
}

static int update_docker_persist(struct update_plan *u, struct update_node *x) {
    return update_write_conf(u, x) < 0 ? -1 : 0;
}

static const struct update_place update_docker = {
    "container", 0, 1, update_docker_conf_now, update_docker_conf_want, update_docker_recover, update_docker_prepare,
    update_docker_replace, update_docker_alive, update_docker_persist, update_docker_manifest,
};

/* Docker: the wanted options from DIR's manifest and the given changes; each node's
 * container, address and ports. */
static int update_docker_plan(struct update_plan *u, const struct update_opts *o) {
    struct rc *rc = u->rc;
    if (update_options(rc, u->d, o, u) < 0 || up_plan_make(rc, &u->want, &u->up) < 0) return -1;
    u->place = &update_docker;
    u->n = u->want.nodes;
    if (!(u->nodes = calloc((size_t)u->n, sizeof *u->nodes))) return rc_fail_oom(rc);
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        x->n = &u->up.nodes[k];
        snprintf(x->name, sizeof x->name, "%s", x->n->name);
        snprintf(x->host, sizeof x->host, "%s", u->up.connect_ip);
        x->port = x->n->host_port;
        snprintf(x->ann_ip, sizeof x->ann_ip, "%s", u->up.announce_ip[0] ? u->up.announce_ip : x->n->ip);
        x->ann_port = u->up.announce_ip[0] ? x->n->host_port : 6379;
    }
    return update_inspect_nodes(u->d, u);
}

/* ---- Swarm services ---------------------------------------------------------- */

/* Swarm: the config node x's service mounts now (decoded), or NULL. */
static sds update_swarm_conf_now(struct update_plan *u, const struct update_node *x) {
    sds path = x->conf_id ? rc_sprintf("/configs/%s", x->conf_id) : NULL;
    json_value_s *v = NULL;
    int st = path ? docker_call_json(u->d, "GET", path, NULL, &v, 404) : -1;
    const char *data = st >= 200 && st < 300 ? json_string(json_get(json_get(v, "Spec"), "Data")) : NULL;
    sds text = data ? swarm_unbase64(data) : NULL;
    json_free(v);
    sdsfree(path);
    return text;
}

/* Swarm: node x's config as the wanted options make it (the password is in the secret). */
static sds update_swarm_conf_want(struct update_plan *u, const struct update_node *x) {
    sds conf = NULL, secret = NULL;
    if (swarm_render(u->rc, &u->sw_want, x->sn, &conf, &secret) < 0) return NULL;
    sdsfree(secret);
    return conf;
}

static int update_swarm_recover(struct update_plan *u) {
    (void)u;   /* a cut-short service update is finished by Swarm itself */
    return 0;
}

/* Swarm: the wanted image must be on this manager (its server and version are read
 * there); every other Swarm node needs its own copy, checked as each task starts. */
static int update_swarm_prepare(struct update_plan *u, int dry_run) {
    (void)dry_run;
    struct docker *d = u->d;
    if (!update_image_differs(u)) return 0;
    int present = docker_image_present(d, u->want.image);
    if (present < 0) return -1;
    if (!present)
        return rc_fail(u->rc, "image %s is not on this Swarm manager; without a registry every Swarm node needs its own copy: "
                              "`DOCKER_HOST=<each node's daemon> rcluster image build --tag %s` (or `image load FILE`); nothing "
                              "was changed", u->want.image, u->want.image);
    if (!u->want.server) {
        sds path = rc_sprintf("/images/%s/json", u->want.image);
        json_value_s *img = NULL;
        int entry = 0;
        int st = path ? docker_call_json(d, "GET", path, NULL, &img, 0) : rc_fail_oom(u->rc);
        const char *server = st >= 0 && img ? up_server_of_image(img, &entry) : NULL;
        snprintf(u->sw_want.server, sizeof u->sw_want.server, "%s", server ? server : "redis");
        json_free(img);
        sdsfree(path);
        if (st < 0) return -1;
    }
    return update_probe_version(u, u->want.image, u->sw_want.server);
}

/* Swarm: will node x's task come up? A missing image or repeated failures say no. */
static int update_swarm_alive(struct update_plan *u, struct update_node *x) {
    struct swarm_task_view tv;
    if (swarm_read_tasks(u->d, &u->sw_want, x->sn, &tv) < 0) return 1;
    int dead = tv.err && !tv.running && (strstr(tv.err, "No such image") || tv.failed >= 3);
    if (dead) {
        sds h = swarm_host_desc(&u->sw_want, x->sn->host);
        rc_fail(u->rc, "service %s on Swarm node %s: %s%s", x->name, h ? h : "?", tv.err,
                strstr(tv.err, "No such image") ? " (each Swarm node needs its own copy of the image)" : "");
        sdsfree(h);
    }
    sdsfree(tv.err);
    return !dead;
}

/* UpdateStatus of service x: its state and when it started ("" when never updated). */
static int update_swarm_status(struct update_plan *u, const struct update_node *x, char *state, char *started, sds *msg) {
    json_value_s *v = NULL;
    sds path = rc_sprintf("/services/%s", x->name);
    int st = path ? docker_call_json(u->d, "GET", path, NULL, &v, 0) : rc_fail_oom(u->rc);
    const json_value_s *us = json_get(v, "UpdateStatus");
    const char *s = json_string(json_get(us, "State")), *at = json_string(json_get(us, "StartedAt")), *m = json_string(json_get(us, "Message"));
    snprintf(state, 32, "%s", s ? s : "");
    snprintf(started, 64, "%s", at ? at : "");
    if (msg) *msg = m ? sdsnew(m) : NULL;
    int version = (int)json_number(json_get(json_get(v, "Version"), "Index"), -1);
    json_free(v);
    sdsfree(path);
    return st < 0 ? -1 : version;
}

/* Swarm: give service x the spec body and wait until Swarm says that update completed
 * (its old task gone, the new one started); an update that changes nothing completes
 * at once. *applied says whether the daemon took the new spec. */
static int update_swarm_set_spec(struct update_plan *u, struct update_node *x, sds body, int64_t deadline, int *applied) {
    struct rc *rc = u->rc;
    char state[32], before[64], now[64];
    *applied = 0;
    int version = body ? update_swarm_status(u, x, state, before, NULL) : rc_fail_oom(rc);
    if (version < 0) return -1;
    sds upd = rc_sprintf("/services/%s/update?version=%d", x->name, version);
    int ret = upd ? docker_call(u->d, "POST", upd, body, NULL, 0) : rc_fail_oom(rc);
    sdsfree(upd);
    if (ret < 0) return -1;
    *applied = 1;
    int64_t t0 = rc_now_ms();
    for (;;) {
        sds msg = NULL;
        if (update_swarm_status(u, x, state, now, &msg) < 0) return -1;
        int fresh = strcmp(now, before) != 0;
        if ((fresh && !strcmp(state, "completed")) || (!fresh && rc_now_ms() - t0 > 5000)) {
            if (rc->verbose) rc_progress(rc, "service %s: update %s after %.1f s", x->name, fresh ? state : "a no-op", (double)(rc_now_ms() - t0) / 1000.0);
            sdsfree(msg);
            return 0;
        }
        if (fresh && (!strcmp(state, "paused") || !strncmp(state, "rollback", 8)))
            ret = rc_fail(rc, "service %s: its update is %s: %s", x->name, state, msg ? msg : "?");
        sdsfree(msg);
        if (ret < 0 || !update_swarm_alive(u, x)) return -1;
        if (rc_interrupted()) return rc_fail_as(rc, RC_ERR_INTERRUPTED, "interrupted while service %s updated", x->name);
        if (rc_now_ms() >= deadline) return rc_fail_as(rc, RC_ERR_TIMEOUT, "service %s did not finish its update in time", x->name);
        rc_sleep_ms(SWARM_POLL_MS);
    }
}

/* Swarm: the secret with the new password, made once before the first service moves
 * to it (secrets cannot change; the old one goes when every service has left it). */
static int update_swarm_secret(struct update_plan *u) {
    if (!u->new_password || u->new_secret_id || !u->sw_want.nodes) return 0;
    sds conf = NULL, secret = NULL, name = rc_sprintf("%s-password-%lld", u->want.name, (long long)time(NULL));
    int ret = name && swarm_render(u->rc, &u->sw_want, &u->sw_want.nodes[0], &conf, &secret) == 0 ? 0 : rc_fail_oom(u->rc);
    if (ret == 0) ret = swarm_create(u->d, "/secrets/create", swarm_blob_body(u->want.name, name, 0, 0, secret), &u->new_secret_id);
    if (ret == 0) {
        u->old_secret_id = u->sw_want.secret_id;
        u->sw_want.secret_id = sdsdup(u->new_secret_id);
        snprintf(u->sw_want.secret_name, sizeof u->sw_want.secret_name, "%s", name);
        rc_progress(u->rc, "Created secret %s with the new password", name);
    }
    sdsfree(conf);
    sdsfree(secret);
    sdsfree(name);
    return ret;
}

/* Swarm: node x's service gets the wanted image, config (a new config object when it
 * differs) and secret; on failure its previous spec comes back. */
static int update_swarm_replace(struct update_plan *u, struct update_node *x, int replica) {
    struct rc *rc = u->rc;
    int64_t t0 = rc_now_ms();
    rc_progress(rc, "%s (%s): service -> %s", x->name, x->failover_to[0] ? "now a replica" : replica ? "replica" : "master, in place",
                u->want.image);
    if (update_swarm_secret(u) < 0) return -1;
    sds want = update_swarm_conf_want(u, x), have = update_swarm_conf_now(u, x), new_conf = NULL, new_name = NULL;
    int ret = want ? 0 : rc_fail_oom(rc);
    if (ret == 0 && (!have || strcmp(have, want) != 0)) {
        new_name = rc_sprintf("%s.conf-%lld", x->name, (long long)time(NULL));
        ret = new_name ? swarm_create(u->d, "/configs/create", swarm_blob_body(u->want.name, new_name, x->sn->i, 0, want), &new_conf)
                       : rc_fail_oom(rc);
    }
    sds body = ret == 0 ? swarm_service_body(&u->sw_want, x->sn, new_conf ? new_conf : x->conf_id,
                                             new_conf ? new_name : x->conf_name) : NULL;
    rc_set_abandon_note("a service may be mid-update; Swarm finishes it; run `rcluster update --swarm` again");
    int applied = 0, ignored;
    if (ret == 0) ret = update_swarm_set_spec(u, x, body, u->deadline, &applied);
    if (ret == 0) ret = update_wait_node(u, x, replica);
    if (ret < 0 && applied) {
        struct rc_err_saved saved = rc_err_save(rc);
        if (rc_interrupted()) rc_progress(rc, "Interrupted: giving service %s its previous spec", x->name);
        else rc_progress(rc, "%s did not come back on %s: giving its service its previous spec", x->name, u->want.image);
        sds old = swarm_service_body(&u->sw_cur, &u->sw_cur.nodes[x->sn->i - 1], x->conf_id, x->conf_name);
        if (update_swarm_set_spec(u, x, old, rc_now_ms() + 60000, &ignored) < 0)
            rc_warn(rc, "rolling %s back: %s", x->name, rc->err ? rc->err : "?");
        sdsfree(old);
        rc_err_restore(rc, &saved);
    } else if (ret == 0 && new_conf) {
        /* The old config stays: the service's previous spec (Swarm's rollback) uses it. */
        sdsfree(x->conf_id);
        sdsfree(x->conf_name);
        x->conf_id = new_conf;
        x->conf_name = new_name;
        new_conf = new_name = NULL;
    }
    rc_set_abandon_note(NULL);
    sds del = ret < 0 && new_conf ? rc_sprintf("/configs/%s", new_conf) : NULL;
    if (del && swarm_delete(u->d, del, rc_now_ms() + 10000) < 0) rc_warn(rc, "could not remove the config made for %s", x->name);
    sdsfree(del);
    sdsfree(new_conf);
    sdsfree(new_name);
    sdsfree(body);
    sdsfree(want);
    sdsfree(have);
    x->took_ms = rc_now_ms() - t0;
    if (ret < 0) return rc_wrap(rc, "updating service %s", x->name);
    snprintf(x->image, sizeof x->image, "%s", u->want.image);
    rc_progress(rc, "%s runs %s and has caught up (%.1f s)", x->name, u->want.image, (double)x->took_ms / 1000.0);
    return 0;
}

static int update_swarm_persist(struct update_plan *u, struct update_node *x) {
    (void)u;   /* a Swarm config changes only with its service: see conf_restarts */
    (void)x;
    return 0;
}

/* Swarm: the manifest config. The old password's secret and old configs stay while
 * the services' previous specs (Swarm's own rollback) refer to them; down removes them. */
static int update_swarm_manifest(struct update_plan *u) {
    return swarm_manifest_write(u->d, &u->sw_want, &u->sm, u->deadline);
}

static const struct update_place update_swarm = {
    "service", 1, 0, update_swarm_conf_now, update_swarm_conf_want, update_swarm_recover, update_swarm_prepare,
    update_swarm_replace, update_swarm_alive, update_swarm_persist, update_swarm_manifest,
};

/* Swarm: node x's service as it runs: its image and config. */
static int update_swarm_inspect(struct update_plan *u, struct update_node *x) {
    json_value_s *v = NULL;
    int r = swarm_inspect_service(u->d, x->name, &v);
    if (r == 0)
        return rc_fail(u->rc, "service %s is missing; repair the cluster first with `rcluster up --swarm --name %s`, then update",
                       x->name, u->want.name);
    const json_value_s *cs = json_get(json_get(json_get(v, "Spec"), "TaskTemplate"), "ContainerSpec");
    const json_value_s *c0 = json_at(json_get(cs, "Configs"), 0);
    const char *img = json_string(json_get(cs, "Image")), *cid = json_string(json_get(c0, "ConfigID"));
    const char *cname = json_string(json_get(c0, "ConfigName"));
    snprintf(x->image, sizeof x->image, "%.*s", (int)strcspn(img ? img : "?", "@"), img ? img : "?");
    x->conf_id = cid ? sdsnew(cid) : NULL;
    x->conf_name = cname ? sdsnew(cname) : NULL;
    json_free(v);
    return r < 0 ? -1 : 0;
}

/* Swarm: the wanted options from the manifest config and the given changes; each
 * node's service, Swarm node, published port and what it announces. */
static int update_swarm_plan(struct update_plan *u, const struct update_opts *o) {
    struct rc *rc = u->rc;
    struct docker *d = u->d;
    char self[64];
    up_opts_defaults(&u->cur);
    u->cur.name = o->up.name;
    u->cur.announce = SWARM_ANNOUNCE_HOST;
    u->cur.insecure = o->up.insecure;
    if (swarm_role(d, self) != 1) return -1;
    int r = swarm_manifest_read(d, o->up.name, &u->sm);
    if (r < 0) return -1;
    if (r == 0) return rc_fail(rc, "no cluster '%s' made by `rcluster up --swarm` was found (no Swarm config %s-manifest-N)",
                               o->up.name, o->up.name);
    if (swarm_manifest_merge(rc, &u->cur, &u->sm) < 0 || update_want(rc, o, u) < 0) return -1;
    u->have_sw = 1;
    struct swarm_plan *ps[2] = { &u->sw_cur, &u->sw_want };
    struct up_opts *os[2] = { &u->cur, &u->want };
    for (int k = 0; k < 2; k++)
        if (swarm_plan_make(rc, os[k], ps[k]) < 0 || swarm_list_hosts(d, ps[k]) < 0 || swarm_inspect_existing(d, ps[k]) < 0) return -1;
    u->place = &update_swarm;
    u->n = u->want.nodes;
    if (!(u->nodes = calloc((size_t)u->n, sizeof *u->nodes))) return rc_fail_oom(rc);
    for (int k = 0; k < u->n; k++) {
        struct update_node *x = &u->nodes[k];
        struct swarm_node *sn = &u->sw_want.nodes[k];
        x->sn = sn;
        snprintf(x->name, sizeof x->name, "%s", sn->name);
        if (sn->host < 0) return rc_fail(rc, "service %s: its Swarm node is unknown; repair with `rcluster up --swarm --name %s`", sn->name, u->want.name);
        snprintf(x->host, sizeof x->host, "%s", u->sw_want.hosts[sn->host].addr);
        x->port = sn->port;
        if (update_swarm_inspect(u, x) < 0) return -1;
        struct swarm_task_view tv;
        if (u->sw_want.container && swarm_read_tasks(d, &u->sw_want, sn, &tv) < 0) return -1;
        if (u->sw_want.container) sdsfree(tv.err);
        snprintf(x->ann_ip, sizeof x->ann_ip, "%s", u->sw_want.container ? sn->overlay_ip : x->host);
        x->ann_port = u->sw_want.container ? 6379 : x->port;
    }
    return 0;
}

/* ---- the placement tables (section 9a's struct placement) ----------------------- */

static const struct placement placement_docker = {
    .what = "container", .mode = "",
    .up_plan = up_docker_plan, .up_role = NULL, .up_recorded = up_docker_recorded, .up_inspect = up_docker_inspect,
    .up_preflight = up_docker_preflight, .up_apply = up_docker_apply, .up_wait_nodes = up_docker_wait_nodes,
    .up_form = up_docker_form, .up_join = NULL, .up_healthy = up_docker_healthy, .up_record = up_docker_record,
    .up_restore = up_docker_restore, .up_report = up_docker_report, .up_rollback = up_docker_rollback,
    .up_free = up_docker_free, .up_settled_note = NULL, .up_poll_ms = 100,
    .scale_inspect = scale_containers_inspect, .scale_add = scale_containers_add,
    .scale_remove = scale_containers_remove, .scale_record = scale_containers_record,
    .update_plan = update_docker_plan,
    .down_inspect = down_containers_inspect, .down_remove = down_containers_remove, .down_purge = down_containers_purge,
    .status_view = status_containers_view, .status_judge = status_containers_judge,
};

static const struct placement placement_swarm = {
    .what = "service", .mode = " --swarm",
    .up_plan = swarm_up_plan, .up_role = swarm_up_role, .up_recorded = swarm_up_recorded, .up_inspect = swarm_up_inspect,
    .up_preflight = swarm_up_preflight, .up_apply = swarm_up_apply, .up_wait_nodes = swarm_up_wait_nodes,
    .up_form = swarm_up_form, .up_join = swarm_up_join, .up_healthy = swarm_up_healthy, .up_record = swarm_up_record,
    .up_restore = NULL, .up_report = swarm_up_report, .up_rollback = swarm_up_rollback,
    .up_free = swarm_up_free, .up_settled_note = "Swarm restarts their tasks itself", .up_poll_ms = SWARM_POLL_MS,
    .scale_inspect = swarm_scale_inspect, .scale_add = swarm_scale_add,
    .scale_remove = swarm_scale_remove, .scale_record = swarm_scale_record,
    .update_plan = update_swarm_plan,
    .down_inspect = swarm_down_inspect, .down_remove = swarm_down_remove, .down_purge = swarm_down_purge,
    .status_view = swarm_status_view, .status_judge = swarm_status_judge,
};

static const struct placement *placement_of(int swarm) { return swarm ? &placement_swarm : &placement_docker; }

/* ---- the command --------------------------------------------------------------- */

/* The plan: recorded and wanted options, addresses, the new password, what runs. */
static int update_plan_make(struct rc *rc, struct docker *d, const struct update_opts *o, struct update_plan *u) {
    memset(u, 0, sizeof *u);
    u->rc = rc;
    u->d = d;
    if (placement_of(o->up.swarm)->update_plan(u, o) < 0) return -1;
    for (int k = 0; k < u->n; k++) u->nodes[k].sync_delay = -1;
    if (o->new_password_file) {
        if (!rc->password)
            return rc_fail_as(rc, RC_ERR_USAGE, "--new-password-file rotates a password: give the current one with "
                              "--password-file F (or RCLUSTER_PASSWORD); adding a password to a cluster made without one "
                              "is not supported");
        if (rc_read_password_file(rc, "--new-password-file", o->new_password_file, &u->new_password) < 0) return -1;
        if (!strcmp(u->new_password, rc->password)) return rc_fail_as(rc, RC_ERR_USAGE, "the new password is the current one");
        u->rotated = update_new_password_works(rc, u);
    }
    u->deadline = rc_now_ms() + (int64_t)(rc->timeout * 1000);
    return 0;
}

/* update = options -> plan (manifest + given changes) -> preflight (health, replicas,
 * compatibility, live directives) -> confirm -> apply node by node -> report. */
static int cmd_update(struct rc *rc, int argc, char **argv) {
    struct update_opts o;
    memset(&o, 0, sizeof o);
    up_opts_defaults(&o.up);
    int r = cmd_parse_opts(rc, argc, argv, update_longopts, (int)(sizeof update_longopts / sizeof update_longopts[0]),
                           usage_update, update_on_opt, &o);
    if (r == 0 && optind < argc) r = rc_fail_as(rc, RC_ERR_USAGE, "update: unexpected argument '%s'", argv[optind]);
    if (r) { free(o.up.configs); return r < 0 ? -1 : 0; }
    struct docker d;
    struct update_plan u;
    int64_t t0 = rc_now_ms();
    docker_init_closed(&d, rc);
    memset(&u, 0, sizeof u);
    r = docker_open(rc, &d);
    if (r == 0) r = update_plan_make(rc, &d, &o, &u);
    if (r == 0 && u.new_password && u.rotated) {
        rc_progress(rc, "Every node takes the new password already: finishing an earlier rotation");
        sdsfree(rc->password);
        rc->password = sdsdup(u.new_password);
    }
    if (r == 0) r = update_preflight(&u, &o);
    if (r == 0) { update_print_plan(rc, &u); fflush(stdout); }
    if (r == 0 && !o.dry_run && (u.restarts || u.nlive || u.new_password)) {
        r = rc_confirm(rc, "Update these nodes?");
        if (r == 0) r = update_apply(&u);
        if (r == 0) r = check_cluster(rc, u.nodes[0].host, u.nodes[0].port, rc->json ? CHECK_SILENT : CHECK_REPORT);
        if (r > 0) r = -1;
    }
    if (r == 0 && rc->json) update_print_json(rc, &u, o.dry_run, rc_now_ms() - t0);
    if (r == 0 && !rc->json && !o.dry_run) update_print_summary(&u, rc_now_ms() - t0);
    update_plan_free(&u);
    docker_free(&d);
    free(o.up.configs);
    return r;
}

/* ====================================================================== */
/* 9e. Images: `image build` from a server binary (its ELF dependencies, a */
/*     rootfs tar streamed as it is uploaded) and `image load`             */
/* ====================================================================== */

/* ---- image build: ELF dependencies -------------------------------------------- */


/* What the dynamic loader needs to run one ELF file. */
struct elf_info {
    int cls;                  /* 1: ELFCLASS32, 2: ELFCLASS64 */
    int big_endian;
    int machine;              /* e_machine */
    sds interp;               /* PT_INTERP, or NULL */
    sds runpath;              /* DT_RUNPATH, else DT_RPATH, or NULL */
    sds needed[64];           /* DT_NEEDED names */
    int nneeded;
};

static void elf_info_free(struct elf_info *e) {
    sdsfree(e->interp);
    sdsfree(e->runpath);
    for (int i = 0; i < e->nneeded; i++) sdsfree(e->needed[i]);
    memset(e, 0, sizeof *e);
}

static uint64_t elf_rd(const unsigned char *p, int n, int be) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

/* Is [off, off+len) inside a buffer of size total? Overflow-safe. */
static int elf_in(uint64_t off, uint64_t len, size_t total) {
    return off <= total && len <= total - off;
}

/* Map a virtual address to a file offset through the PT_LOAD segments. */
static int elf_vaddr_to_off(const unsigned char *buf, const struct elf_info *e, uint64_t phoff,
                            uint64_t phentsize, uint64_t phnum, uint64_t vaddr, uint64_t *off) {
    int be = e->big_endian;
    for (uint64_t i = 0; i < phnum; i++) {
        const unsigned char *ph = buf + phoff + i * phentsize;
        if (elf_rd(ph, 4, be) != 1) continue;   /* PT_LOAD */
        uint64_t p_offset = e->cls == 2 ? elf_rd(ph + 8, 8, be) : elf_rd(ph + 4, 4, be);
        uint64_t p_vaddr = e->cls == 2 ? elf_rd(ph + 16, 8, be) : elf_rd(ph + 8, 4, be);
        uint64_t p_filesz = e->cls == 2 ? elf_rd(ph + 32, 8, be) : elf_rd(ph + 16, 4, be);
        if (vaddr >= p_vaddr && vaddr - p_vaddr < p_filesz) { *off = p_offset + (vaddr - p_vaddr); return 0; }
    }
    return -1;
}

/* A NUL-terminated string at strtab+idx, within strsz and the buffer; NULL if not. */
static sds elf_string(const unsigned char *buf, size_t len, uint64_t strtab, uint64_t strsz, uint64_t idx) {
    if (!elf_in(strtab, strsz, len) || idx >= strsz) return NULL;
    const unsigned char *s = buf + strtab + idx;
    const unsigned char *nul = memchr(s, 0, (size_t)(strsz - idx));
    if (!nul) return NULL;
    return sdsnewlen(s, (size_t)(nul - s));
}

static int elf_parse_into(const unsigned char *buf, size_t len, struct elf_info *e, const char **why) {
    if (len < 52 || memcmp(buf, "\177ELF", 4) != 0) return *why = "not an ELF file", -1;
    e->cls = buf[4];
    e->big_endian = buf[5] == 2;
    if ((e->cls != 1 && e->cls != 2) || (buf[5] != 1 && buf[5] != 2)) return *why = "unknown ELF class or byte order", -1;
    if (e->cls == 2 && len < 64) return *why = "truncated ELF header", -1;
    int be = e->big_endian, w = e->cls == 2 ? 8 : 4;
    e->machine = (int)elf_rd(buf + 18, 2, be);
    uint64_t phoff = elf_rd(buf + (e->cls == 2 ? 32 : 28), w, be);
    uint64_t phentsize = elf_rd(buf + (e->cls == 2 ? 54 : 42), 2, be);
    uint64_t phnum = elf_rd(buf + (e->cls == 2 ? 56 : 44), 2, be);
    if (phentsize < (e->cls == 2 ? 56u : 32u) || phnum == 0xffff || !elf_in(phoff, phentsize * phnum, len))
        return *why = "program headers out of bounds", -1;
    uint64_t dyn_off = 0, dyn_size = 0;
    for (uint64_t i = 0; i < phnum; i++) {
        const unsigned char *ph = buf + phoff + i * phentsize;
        uint64_t type = elf_rd(ph, 4, be);
        uint64_t off = e->cls == 2 ? elf_rd(ph + 8, 8, be) : elf_rd(ph + 4, 4, be);
        uint64_t filesz = e->cls == 2 ? elf_rd(ph + 32, 8, be) : elf_rd(ph + 16, 4, be);
        if (type == 3 && !e->interp) {   /* PT_INTERP */
            if (!elf_in(off, filesz, len) || filesz == 0 || filesz > 4096) return *why = "bad PT_INTERP", -1;
            const unsigned char *nul = memchr(buf + off, 0, (size_t)filesz);
            if (!nul) return *why = "PT_INTERP not terminated", -1;
            if (!(e->interp = sdsnewlen(buf + off, (size_t)(nul - (buf + off))))) return *why = "out of memory", -1;
        } else if (type == 2) {          /* PT_DYNAMIC */
            if (!elf_in(off, filesz, len)) return *why = "PT_DYNAMIC out of bounds", -1;
            dyn_off = off;
            dyn_size = filesz;
        }
    }
    if (!dyn_size) return 0;   /* static executable: nothing else needed */
    uint64_t strtab = 0, strsz = 0, runpath = UINT64_MAX, rpath = UINT64_MAX;
    uint64_t needed[64];
    int nneeded = 0, have_strtab = 0;
    for (uint64_t p = dyn_off; p + 2 * (uint64_t)w <= dyn_off + dyn_size; p += 2 * (uint64_t)w) {
        uint64_t tag = elf_rd(buf + p, w, be), val = elf_rd(buf + p + w, w, be);
        if (tag == 0) break;                              /* DT_NULL */
        if (tag == 1) { if (nneeded == 64) return *why = "more than 64 DT_NEEDED entries", -1; needed[nneeded++] = val; }
        else if (tag == 5) { strtab = val; have_strtab = 1; }   /* DT_STRTAB: a virtual address */
        else if (tag == 10) strsz = val;                   /* DT_STRSZ */
        else if (tag == 15) rpath = val;                   /* DT_RPATH */
        else if (tag == 29) runpath = val;                 /* DT_RUNPATH */
    }
    if (!nneeded && runpath == UINT64_MAX && rpath == UINT64_MAX) return 0;
    uint64_t stroff;
    if (!have_strtab || elf_vaddr_to_off(buf, e, phoff, phentsize, phnum, strtab, &stroff) < 0 || !elf_in(stroff, strsz, len))
        return *why = "dynamic string table out of bounds", -1;
    for (int i = 0; i < nneeded; i++) {
        sds s = elf_string(buf, len, stroff, strsz, needed[i]);
        if (!s || !sdslen(s) || strchr(s, '/')) { sdsfree(s); return *why = "bad DT_NEEDED name", -1; }
        e->needed[e->nneeded++] = s;
    }
    uint64_t rp = runpath != UINT64_MAX ? runpath : rpath;
    if (rp != UINT64_MAX && !(e->runpath = elf_string(buf, len, stroff, strsz, rp))) return *why = "bad run path", -1;
    return 0;
}

/* Parse an ELF image (whole file in buf) for its interpreter, DT_NEEDED and run path.
 * Pure and bounds-checked: any byte sequence gives 0, or -1 with *why saying what was
 * wrong and nothing to free. On success free with elf_info_free(). */
static int elf_parse(const unsigned char *buf, size_t len, struct elf_info *e, const char **why) {
    memset(e, 0, sizeof *e);
    *why = NULL;
    if (elf_parse_into(buf, len, e, why) == 0) return 0;
    elf_info_free(e);
    return -1;
}

/* Read a file's ELF info via a read-only mapping (only the touched pages load).
 * *e is zeroed on every failure path, so it is always safe to look at. */
static int elf_read_file(struct rc *rc, const char *path, struct elf_info *e) {
    memset(e, 0, sizeof *e);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rc_fail(rc, "opening %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 52) { close(fd); return rc_fail(rc, "%s: not an ELF file", path); }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return rc_fail(rc, "mapping %s: %s", path, strerror(errno));
    const char *why;
    int r = elf_parse(m, (size_t)st.st_size, e, &why);
    munmap(m, (size_t)st.st_size);
    return r < 0 ? rc_fail(rc, "%s: %s", path, why) : 0;
}

/* Does the file at path have the same ELF class and machine as `want`? */
static int elf_matches(const char *path, const struct elf_info *want) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    unsigned char h[20];
    ssize_t n = pread(fd, h, sizeof h, 0);
    close(fd);
    return n == (ssize_t)sizeof h && memcmp(h, "\177ELF", 4) == 0 && h[4] == want->cls &&
           (int)elf_rd(h + 18, 2, h[5] == 2) == want->machine;
}

/* Directories the loader searches, in order: the object's run path ($ORIGIN expanded),
 * /etc/ld.so.conf (with includes), then the built-in defaults. Colon-separated. */
static sds image_search_path(const char *object, const char *runpath, const char *ldconf) {
    sds s = sdsempty();
    if (runpath && s) {
        sds dir = sdsnew(object);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash) { *slash = 0; sdsupdatelen(dir); }
        for (const char *p = runpath; s && *p;) {
            size_t n = strcspn(p, ":");
            if (n >= 7 && strncmp(p, "$ORIGIN", 7) == 0 && dir) { s = rc_catprintf(s, "%s%.*s:", dir, (int)(n - 7), p + 7); }
            else if (n >= 9 && strncmp(p, "${ORIGIN}", 9) == 0 && dir) { s = rc_catprintf(s, "%s%.*s:", dir, (int)(n - 9), p + 9); }
            else s = rc_catprintf(s, "%.*s:", (int)n, p);
            p += n + (p[n] == ':');
        }
        sdsfree(dir);
    }
    if (ldconf) s = rc_cat(s, ldconf);
    return rc_cat(s, "/lib64:/usr/lib64:/lib:/usr/lib");
}

/* The directories named by /etc/ld.so.conf and its `include` globs, colon-separated. */
static sds image_ldconf_dirs(struct rc *rc, const char *file, sds acc, int depth) {
    sds text = depth < 4 ? rc_read_file(rc, file, 1 << 20) : NULL;
    if (!text) return acc;
    for (char *line = text; acc && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        line[strcspn(line, "#")] = 0;
        char *t = line + strspn(line, " \t");
        size_t l = strlen(t);
        while (l && isspace((unsigned char)t[l - 1])) t[--l] = 0;
        if (strncmp(t, "include", 7) == 0 && isspace((unsigned char)t[7])) {
            char *pat = t + 8 + strspn(t + 8, " \t");
            sds full = pat[0] == '/' ? sdsnew(pat) : rc_sprintf("/etc/%s", pat), *g = NULL;
            size_t ng = 0;
            if (full && rc_glob_simple(rc, full, &g, &ng) == 0)
                for (size_t k = 0; k < ng; k++) acc = image_ldconf_dirs(rc, g[k], acc, depth + 1);
            rc_glob_free(g, ng);
            sdsfree(full);
        } else if (t[0] == '/') {
            acc = rc_catprintf(acc, "%s:", t);
        }
        line = nl ? nl + 1 : NULL;
    }
    sdsfree(text);
    return acc;
}

/* Files of the image: archive path (no leading '/') and where the bytes come from. */
struct tar_entry {
    sds name;
    char type;                /* '0' file, '5' directory */
    unsigned mode;
    uint64_t size;
    sds src;                  /* host file to copy (files), or NULL */
    const char *data;         /* inline content (files without src) */
};

struct image_files {
    struct tar_entry *e;
    int n, cap;
    sds libdirs;              /* colon-separated library directories, for LD_LIBRARY_PATH */
};

static void image_files_free(struct image_files *f) {
    for (int i = 0; i < f->n; i++) { sdsfree(f->e[i].name); sdsfree(f->e[i].src); }
    free(f->e);
    sdsfree(f->libdirs);
    memset(f, 0, sizeof *f);
}

static int image_has(const struct image_files *f, const char *name) {
    for (int i = 0; i < f->n; i++) if (!strcmp(f->e[i].name, name)) return 1;
    return 0;
}

/* Add an entry (and its parent directories first); path may start with '/'. */
static int image_add(struct rc *rc, struct image_files *f, const char *path, char type, unsigned mode,
                     const char *src, const char *data) {
    while (*path == '/') path++;
    if (!*path || image_has(f, path)) return 0;
    const char *slash = strrchr(path, '/');
    if (slash) {
        sds parent = sdsnewlen(path, (size_t)(slash - path));
        int r = parent ? image_add(rc, f, parent, '5', 0755, NULL, NULL) : rc_fail_oom(rc);
        sdsfree(parent);
        if (r < 0) return -1;
    }
    uint64_t size = 0;
    if (type == '0' && src) {
        struct stat st;
        if (stat(src, &st) < 0 || !S_ISREG(st.st_mode)) return rc_fail(rc, "%s: %s", src, errno ? strerror(errno) : "not a regular file");
        size = (uint64_t)st.st_size;
    } else if (type == '0') {
        size = strlen(data);
    }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 32;
        struct tar_entry *e = realloc(f->e, sizeof *e * (size_t)cap);
        if (!e) return rc_fail_oom(rc);
        f->e = e;
        f->cap = cap;
    }
    struct tar_entry *e = &f->e[f->n];
    memset(e, 0, sizeof *e);
    e->name = sdsnew(path);
    e->src = src ? sdsnew(src) : NULL;
    e->type = type;
    e->mode = mode;
    e->size = size;
    e->data = data;
    if (!e->name || (src && !e->src)) { sdsfree(e->name); sdsfree(e->src); return rc_fail_oom(rc); }
    f->n++;
    return 0;
}

/* Find library `name` for object `from` (with its run path); add it and, recursively,
 * what it needs. */
static int image_add_elf_deps(struct rc *rc, struct image_files *f, const char *object, const char *ldconf, int depth);

static int image_add_library(struct rc *rc, struct image_files *f, const char *name, const char *from,
                             const struct elf_info *fe, const char *ldconf, int depth) {
    sds path = image_search_path(from, fe->runpath, ldconf);
    if (!path) return rc_fail_oom(rc);
    int ret = rc_fail(rc, "%s needs %s, which is not in any loader directory (%s)", from, name, path);
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        sds cand = n ? rc_sprintf("%.*s/%s", (int)n, p, name) : NULL;
        if (cand && elf_matches(cand, fe)) {
            ret = 0;
            if (!image_has(f, cand + 1)) {
                sds dir = sdsnewlen(p, n);
                if (dir && f->libdirs && !strstr(f->libdirs, dir))
                    f->libdirs = rc_catprintf(f->libdirs, "%s%s", sdslen(f->libdirs) ? ":" : "", dir);
                ret = dir && f->libdirs ? image_add(rc, f, cand, '0', 0755, cand, NULL) : rc_fail_oom(rc);
                sdsfree(dir);
                if (ret == 0) ret = image_add_elf_deps(rc, f, cand, ldconf, depth + 1);
            }
            sdsfree(cand);
            break;
        }
        sdsfree(cand);
        p += n + (p[n] == ':');
    }
    sdsfree(path);
    return ret;
}

static int image_add_elf_deps(struct rc *rc, struct image_files *f, const char *object, const char *ldconf, int depth) {
    if (depth > 16) return rc_fail(rc, "%s: library dependencies nested too deeply", object);
    struct elf_info e;
    if (elf_read_file(rc, object, &e) < 0) return -1;
    int ret = 0;
    if (e.interp && !image_has(f, e.interp + (e.interp[0] == '/'))) {
        if (e.interp[0] != '/') ret = rc_fail(rc, "%s: relative interpreter %s", object, e.interp);
        else ret = image_add(rc, f, e.interp, '0', 0755, e.interp, NULL);
    }
    for (int i = 0; ret == 0 && i < e.nneeded; i++) ret = image_add_library(rc, f, e.needed[i], object, &e, ldconf, depth);
    elf_info_free(&e);
    return ret;
}

/* ---- image build: the rootfs tar, produced as it is uploaded ------------------------ */

/* Fill a 512-byte ustar header. Pure; -1 if the name does not fit. */
static int tar_header(const struct tar_entry *e, unsigned char h[512]) {
    memset(h, 0, 512);
    size_t n = strlen(e->name) + (e->type == '5');
    char full[256];
    snprintf(full, sizeof full, "%s%s", e->name, e->type == '5' ? "/" : "");
    const char *name = full;
    if (n <= 100) {
        /* A ustar name field is NUL-padded (h is zeroed), not NUL-terminated: 100 bytes fit. */
        memcpy(h, name, n);   // NOLINT(bugprone-not-null-terminated-result)
    } else {
        /* ustar splits long names at a '/' into prefix (155) and name (100). */
        const char *cut = NULL;
        for (const char *p = name; *p; p++) if (*p == '/' && (size_t)(p - name) <= 155 && n - (size_t)(p - name) - 1 <= 100) { cut = p; break; }
        if (!cut || n >= sizeof full) return -1;
        memcpy(h + 345, name, (size_t)(cut - name));
        memcpy(h, cut + 1, n - (size_t)(cut - name) - 1);
    }
    snprintf((char *)h + 100, 8, "%07o", e->mode & 07777);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    if (e->size > 077777777777ULL) return -1;
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)e->size);
    snprintf((char *)h + 136, 12, "%011llo", (unsigned long long)time(NULL));
    h[156] = (unsigned char)e->type;
    memcpy(h + 257, "ustar", 6);
    h[263] = h[264] = '0';   /* version "00", no terminator */
    memcpy(h + 265, "root", 5);
    memcpy(h + 297, "root", 5);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return 0;
}

static uint64_t tar_total_size(const struct image_files *f) {
    uint64_t t = 1024;   /* two zero blocks end the archive */
    for (int i = 0; i < f->n; i++) t += 512 + (f->e[i].size + 511) / 512 * 512;
    return t;
}

/* The archive as an http_body_source: header, data, padding per entry, then the end. */
struct tar_stream {
    const struct image_files *f;
    int cur;                  /* current entry; f->n: the end blocks */
    int in_data;
    uint64_t left;            /* data bytes left in the current entry */
    unsigned char block[1024];
    size_t block_off, block_len;
    int fd;
    uint64_t pos;             /* inline data offset */
};

static ssize_t tar_source(struct rc *rc, void *ud, char *buf, size_t cap) {
    struct tar_stream *t = ud;
    size_t out = 0;
    while (out < cap) {
        if (t->block_off < t->block_len) {
            size_t n = t->block_len - t->block_off < cap - out ? t->block_len - t->block_off : cap - out;
            memcpy(buf + out, t->block + t->block_off, n);
            t->block_off += n;
            out += n;
            continue;
        }
        if (t->in_data && t->left) {
            const struct tar_entry *e = &t->f->e[t->cur];
            size_t want = t->left < cap - out ? (size_t)t->left : cap - out;
            ssize_t n;
            if (e->src) {
                n = read(t->fd, buf + out, want);
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return rc_fail(rc, "reading %s: %s", e->src, strerror(errno));
                if (n == 0) return rc_fail(rc, "reading %s: the file shrank while packing it", e->src);
            } else {
                memcpy(buf + out, e->data + t->pos, want);
                n = (ssize_t)want;
            }
            t->pos += (uint64_t)n;
            t->left -= (uint64_t)n;
            out += (size_t)n;
            continue;
        }
        if (t->in_data) {   /* entry finished: pad to a block */
            const struct tar_entry *e = &t->f->e[t->cur];
            if (t->fd >= 0) { close(t->fd); t->fd = -1; }
            memset(t->block, 0, 512);
            t->block_off = 0;
            t->block_len = (size_t)((512 - e->size % 512) % 512);
            t->in_data = 0;
            t->cur++;
            continue;
        }
        if (t->cur > t->f->n) break;   /* end blocks sent */
        if (t->cur == t->f->n) {
            memset(t->block, 0, 1024);
            t->block_off = 0;
            t->block_len = 1024;
            t->cur++;
            continue;
        }
        const struct tar_entry *e = &t->f->e[t->cur];
        if (tar_header(e, t->block) < 0) return rc_fail(rc, "%s: name too long for a tar header", e->name);
        t->block_off = 0;
        t->block_len = 512;
        t->in_data = 1;
        t->left = e->size;
        t->pos = 0;
        if (e->type == '0' && e->src && (t->fd = open(e->src, O_RDONLY | O_CLOEXEC)) < 0)
            return rc_fail(rc, "opening %s: %s", e->src, strerror(errno));
    }
    return (ssize_t)out;
}

/* Find an executable on PATH. */
static sds image_which(const char *prog) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        sds cand = rc_sprintf("%.*s/%s", (int)n, p, prog);
        if (cand && n && access(cand, X_OK) == 0) return cand;
        sdsfree(cand);
        p += n + (p[n] == ':');
    }
    return NULL;
}

static const char image_passwd[] = "root:x:0:0:root:/root:/sbin/nologin\nredis:x:999:999:redis:/data:/sbin/nologin\n"
                                   "valkey:x:999:999:valkey:/data:/sbin/nologin\n";
static const char image_group[] = "root:x:0:\nredis:x:999:\nvalkey:x:999:\n";

/* Where PATH's chain of symbolic links ends (at most 16 links; a relative target is
 * taken from the link's directory); NULL on OOM. */
static sds image_link_target(const char *path) {
    sds cur = sdsnew(path);
    for (int hop = 0; cur && hop < 16; hop++) {
        char buf[PATH_MAX];
        ssize_t n = readlink(cur, buf, sizeof buf - 1);
        if (n <= 0) break;
        buf[n] = 0;
        const char *slash = strrchr(cur, '/');
        sds next = buf[0] == '/' || !slash ? sdsnew(buf) : rc_sprintf("%.*s/%s", (int)(slash - cur), cur, buf);
        sdsfree(cur);
        cur = next;
    }
    return cur;
}

/* "valkey" when the binary is Valkey's (the file it links to says so: Valkey installs
 * redis-server as a link to valkey-server), else "redis". */
static const char *image_server_of(const char *binary) {
    sds real = image_link_target(binary);
    const char *path = real ? real : binary, *base = strrchr(path, '/');
    int valkey = strstr(base ? base + 1 : path, "valkey") != NULL;
    sdsfree(real);
    return valkey ? "valkey" : "redis";
}

/* The rootfs: SERVER-server in /usr/local/bin, its loader and libraries at the paths it
 * was found under, and the directories and files a container expects. */
static int image_collect(struct rc *rc, const char *binary, const char *server, struct image_files *f) {
    f->libdirs = sdsempty();
    sds ldconf = image_ldconf_dirs(rc, "/etc/ld.so.conf", sdsempty(), 0);
    sds etc = rc_sprintf("etc/%s", server), bin = rc_sprintf("usr/local/bin/%s-server", server);
    if (!f->libdirs || !ldconf || !etc || !bin) { sdsfree(ldconf); sdsfree(etc); sdsfree(bin); return rc_fail_oom(rc); }
    const char *const dirs[] = { etc, "data", "root", "usr/local/bin" };
    int ret = 0;
    for (size_t i = 0; ret == 0 && i < sizeof dirs / sizeof dirs[0]; i++) ret = image_add(rc, f, dirs[i], '5', 0755, NULL, NULL);
    if (ret == 0) ret = image_add(rc, f, "tmp", '5', 01777, NULL, NULL);
    if (ret == 0) ret = image_add(rc, f, "etc/passwd", '0', 0644, NULL, image_passwd);
    if (ret == 0) ret = image_add(rc, f, "etc/group", '0', 0644, NULL, image_group);
    if (ret == 0) ret = image_add(rc, f, bin, '0', 0755, binary, NULL);
    if (ret == 0) ret = image_add_elf_deps(rc, f, binary, ldconf, 0);
    sdsfree(ldconf);
    sdsfree(etc);
    sdsfree(bin);
    return ret;
}

/* The server binary to pack: FROM, else redis-server on PATH, else valkey-server.
 * NULL when there is none (no error set). */
static sds image_find_server(const char *from) {
    if (from) return sdsnew(from);
    sds b = image_which("redis-server");
    return b ? b : image_which("valkey-server");
}

/* Import BINARY (a redis-server or valkey-server) and its libraries as image TAG.
 * Podman's import ignores the tag parameter, so the tag travels inside repo=, which
 * the Engine API allows and Docker honours too. *id gets the new image id (caller
 * frees; NULL in --dry-run). With quiet, no progress lines, the import's own included. */
static int image_make(struct rc *rc, struct docker *d, const char *binary, const char *tag, int quiet, sds *id) {
    const char *server = image_server_of(binary);
    struct image_files f = { 0 };
    sds path = NULL;
    *id = NULL;
    int ret = image_collect(rc, binary, server, &f);
    if (ret == 0) {
        int libs = 0;
        for (int i = 0; i < f.n; i++) libs += f.e[i].src != NULL;
        if (!quiet) rc_progress(rc, "Packing %s (%s) and %d shared object(s), %.1f MB", binary, server, libs - 1,
                                (double)tar_total_size(&f) / 1e6);
        /* Docker resolves Cmd[0] through the image's PATH; the loader finds the libraries
         * through LD_LIBRARY_PATH because the image has no ld.so.cache. */
        sds env_ld = rc_sprintf("ENV LD_LIBRARY_PATH=%s", f.libdirs);
        sds cmd = rc_sprintf("CMD [\"%s-server\"]", server);
        path = docker_urlencode(sdsnew("/images/create?fromSrc=-&repo="), tag);
        static const char *const changes[] = {
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "WORKDIR /data", "EXPOSE 6379" };
        for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
            path = docker_urlencode(rc_cat(path, "&changes="), changes[i]);
        if (env_ld && cmd) path = docker_urlencode(rc_cat(docker_urlencode(rc_cat(path, "&changes="), env_ld), "&changes="), cmd);
        else { sdsfree(path); path = NULL; }   /* OOM: without them the image would not start */
        sdsfree(env_ld);
        sdsfree(cmd);
        struct tar_stream ts = { &f, 0, 0, 0, { 0 }, 0, 0, -1, 0 };
        ret = path ? docker_stream(d, path, "application/x-tar", tar_source, &ts, tar_total_size(&f), quiet, id) : rc_fail_oom(rc);
        if (ts.fd >= 0) close(ts.fd);
    }
    image_files_free(&f);
    sdsfree(path);
    return ret;
}

/* Is the file a redis-server or valkey-server? Both carry the INFO field name
 * "redis_version" and the config name "cluster-config-file"; the clients, the
 * benchmark and anything else lack one or both. Read, never run. 0 yes, -1 (rc->err) no. */
static int image_check_server(struct rc *rc, const char *binary) {
    int fd = open(binary, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rc_fail(rc, "--from %s: %s", binary, strerror(errno));
    struct stat st;
    void *m = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 4)
        m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return rc_fail(rc, "--from %s: not a readable regular file", binary);
    size_t n = (size_t)st.st_size;
    int elf = memcmp(m, "\177ELF", 4) == 0, server = elf && memmem(m, n, "redis_version", 13) && memmem(m, n, "cluster-config-file", 19);
    munmap(m, n);
    if (server) return 0;
    return rc_fail(rc, "--from %s: not a redis-server or valkey-server binary (%s); give the server itself, e.g. --from "
                   "/usr/bin/redis-server", binary, elf ? "an ELF file without the server's INFO and config names" : "not an ELF executable");
}

static int image_build(struct rc *rc, struct docker *d, const char *from, const char *tag, int tag_set) {
    sds binary = image_find_server(from);
    if (!binary) return rc_fail(rc, "neither redis-server nor valkey-server is on PATH; give --from /path/to/redis-server");
    if (image_check_server(rc, binary) < 0) { sdsfree(binary); return -1; }
    char deftag[64];
    if (!tag_set) { snprintf(deftag, sizeof deftag, "rcluster/%s:local", image_server_of(binary)); tag = deftag; }
    sds result = NULL;
    int ret = image_make(rc, d, binary, tag, 0, &result);
    if (ret == 0 && !d->record) {
        rc_progress(rc, "Built %s (%s); use it with: rcluster up --image %s", tag, result ? result : "?", tag);
        if (rc->json) {
            sds js = rc_json_str(rc_cat(rc_json_str(sdsnew("{\"image\":"), tag), ",\"id\":"), result);
            if (js) rc_json_outf(rc, "%s}\n", js);
            sdsfree(js);
        }
        else printf("%s\n", tag);
    }
    sdsfree(binary);
    sdsfree(result);
    return ret;
}

/* ---- image load ---------------------------------------------------------------------- */

static ssize_t image_file_source(struct rc *rc, void *ud, char *buf, size_t cap) {
    int fd = *(int *)ud;
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return rc_fail_errno(rc, "reading the archive");
        return n;
    }
}

static int image_load(struct rc *rc, struct docker *d, const char *file) {
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rc_fail(rc, "opening %s: %s", file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) { close(fd); return rc_fail(rc, "%s: not a regular file", file); }
    rc_progress(rc, "Loading %s (%.1f MB)", file, (double)st.st_size / 1e6);
    sds result = NULL;
    int ret = docker_stream(d, "/images/load?quiet=0", "application/x-tar", image_file_source, &fd, (uint64_t)st.st_size, 0, &result);
    close(fd);
    if (ret == 0 && !d->record && rc->json) {
        sds js = rc_json_str(rc_cat(rc_json_str(sdsnew("{\"ok\":true,\"command\":\"image\",\"file\":"), file), ",\"loaded\":"),
                             result ? result : "loaded");
        if (js) rc_json_outf(rc, "%s}", js);
        sdsfree(js);
    } else if (ret == 0 && !d->record) printf("%s\n", result ? result : "loaded");
    sdsfree(result);
    return ret;
}

/* image build|load: an image of the host's server binary (no registry), or a docker
 * save archive. */
static int cmd_image(struct rc *rc, int argc, char **argv) {
    struct up_opts o;
    up_opts_defaults(&o);
    /* `image SUB [options] [FILE]`: options are parsed after the subcommand. */
    const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    int r = cmd_parse_opts(rc, sub ? argc - 1 : argc, sub ? argv + 1 : argv, image_longopts, (int)(sizeof image_longopts / sizeof image_longopts[0]), usage_image, up_on_opt, &o);
    free(o.configs);   /* only `up` uses --config lines */
    if (r) return r < 0 ? -1 : 0;
    int nargs = (sub ? argc - 1 : argc) - optind;
    if (!sub || (strcmp(sub, "build") != 0 && strcmp(sub, "load") != 0) || (!strcmp(sub, "build") && nargs != 0) ||
        (!strcmp(sub, "load") && nargs != 1)) {
        return rc_fail_as(rc, RC_ERR_USAGE, "image: expected `image build [--from PATH] [--tag TAG] [--dry-run]` or `image load FILE`");
    }
    if (!strcmp(sub, "build") && !up_valid_image(o.tag)) return rc_fail(rc, "--tag '%s': not a valid image name", o.tag);
    if (!strcmp(sub, "build") && strchr(o.tag, '@')) return rc_fail(rc, "--tag '%s': a digest cannot be given to a new image", o.tag);
    struct docker d;
    int ret = docker_open(rc, &d);
    d.record = o.dry_run;
    if (ret == 0) ret = !strcmp(sub, "build") ? image_build(rc, &d, o.from, o.tag, o.tag_set) : image_load(rc, &d, argv[1 + optind]);
    docker_free(&d);
    return ret;
}

/* ====================================================================== */
/* 10. Option parsing, usage, dispatch and main                            */
/* ====================================================================== */

/* ---- option parsing: the common options (section 1) and each command's table ---- */

/* Parse a command's options: common ones plus --help; -1 on error, 1 after --help.
 * Options may stand anywhere among the arguments (people append redis-cli's options
 * after the addresses); `--` ends them. musl's getopt does not permute, so the leading
 * '-' in the optstring hands us each non-option in order and we move them, in order,
 * to the end of argv: on return argv[optind..argc-1] are the positional arguments. */
static int cmd_parse_opts(struct rc *rc, int argc, char **argv, const struct option *extra, int nextra,
                          void (*usage)(FILE *), int (*on_opt)(struct rc *, int, const char *, void *), void *ctx) {
    struct option common[] = { RC_COMMON_LONGOPTS, { "help", no_argument, NULL, 'h' } };
    int ncommon = (int)(sizeof common / sizeof common[0]);
    struct option *all = calloc((size_t)ncommon + (size_t)nextra + 1, sizeof *all);
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!all || !pos) { free(all); free(pos); return rc_fail_oom(rc); }
    memcpy(all, common, sizeof common);
    if (nextra) memcpy(all + ncommon, extra, (size_t)nextra * sizeof *extra);
    optind = 1;
    opterr = 0;
    int ret = 0, opt, npos = 0;
    while (ret == 0 && (opt = getopt_long(argc, argv, "-ha:", all, NULL)) != -1) {
        if (opt == 1) pos[npos++] = optarg;
        else if (opt == 'h') { usage(stdout); ret = 1; }
        else if (opt == '?' || opt == ':') {
            const char *bad = argv[optind - 1];
            ret = rc_fail(rc, "%s: unknown option or missing value '%s' (see rcluster %s --help)", argv[0], bad ? bad : "?", argv[0]);
        }
        else if (opt >= OPT_FIRST_COMMAND_OPT && on_opt) ret = on_opt(rc, opt, optarg, ctx);
        else ret = rc_parse_common(rc, opt == 'a' ? OPT_PASSWORD : opt, optarg);
        if (ret < 0) rc->err_kind = RC_ERR_USAGE; /* a bad option value is a usage error: exit 2 */
    }
    if (ret == 0) {
        while (optind < argc) pos[npos++] = argv[optind++];
        for (int k = 0; k < npos; k++) argv[argc - npos + k] = pos[k];
        optind = argc - npos;
    }
    free(all);
    free(pos);
    return ret;
}

static void usage_main(FILE *f) {
    fputs("usage: rcluster COMMAND [OPTIONS]\n"
          "\n"
          "One static binary that turns a Docker host into a healthy Redis Cluster, and forms\n"
          "or inspects clusters on nodes that already run.\n"
          "\n"
          "Docker commands (talk to /var/run/docker.sock or DOCKER_HOST):\n"
          "  up         create network, configs and containers, then form the cluster\n"
          "  down       remove the cluster's containers and network (data kept unless --purge)\n"
          "  scale      grow or shrink an up cluster to M masters x R replicas, keys and all\n"
          "  update     change an up cluster's image, config or password, node by node\n"
          "  status     containers and cluster health\n"
          "  image      build an image from the host's redis-server, or load a saved one\n"
          "\n"
          "Cluster commands (talk RESP to running nodes):\n"
          "  create     form a cluster from running empty nodes (redis-cli --cluster create)\n"
          "  check      report on a cluster's health (redis-cli --cluster check)\n"
          "  info       keys, slots and replicas per master, with a slot map\n"
          "  call       run one command on every node (--masters, --replicas)\n"
          "  add-node   add an empty node as a master or a replica\n"
          "  del-node   remove a node, also a dead one (FORGET everywhere, then RESET)\n"
          "  reshard    move N slots with their keys between masters\n"
          "  rebalance  even out slots by weight (--weight ID=0 empties a master)\n"
          "  fix        close slots an interrupted move left open; cover uncovered slots\n"
          "  set-timeout  cluster-node-timeout on every node, persisted\n"
          "  backup     every master's RDB at once into DIR, with a manifest (SYNC)\n"
          "  restore    put RDB files (a backup) into any cluster, key by key (RESTORE)\n"
          "  import     move a standalone server's keys in (SCAN, DUMP, RESTORE, DEL)\n"
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
          "Options may stand before or after the command and its arguments; `--` ends them. The\n"
          "one exception: everything after `call`'s command (CMD ARG...) belongs to it.\n"
          "redis-cli's command lines work as they are: `rcluster -a P --cluster check HOST PORT`;\n"
          "its spellings (-a P, --cluster-yes, --cluster-replicas N, --cluster-from ...) and its\n"
          "`HOST PORT` wherever an ADDR is asked for.\n"
          "\n"
          "Environment: DOCKER_HOST (unix://PATH or tcp://HOST:PORT), DOCKER_API_VERSION,\n"
          "RCLUSTER_PASSWORD, NO_COLOR.\n"
          "\n"
          "Exit status, from the kind of failure alone (--json: error.kind and error.exit):\n"
          "  0    success / healthy\n"
          "  1    fail, auth, not_cluster, unreachable, timeout, corrupt, incompatible, exists\n"
          "  2    usage (a bad command line or option value)\n"
          "  3    unhealthy (check, status: the cluster answered but is not healthy)\n"
          "  130  interrupted (SIGINT/SIGTERM; what was changed is put back first)\n", f);
}

struct rc_command {
    const char *name;
    int (*run)(struct rc *, int, char **);
};

static const struct rc_command rc_commands[] = {
    { "create", cmd_create }, { "check", cmd_check },
    { "info", cmd_info }, { "call", cmd_call }, { "add-node", cmd_add_node }, { "del-node", cmd_del_node },
    { "reshard", cmd_reshard }, { "rebalance", cmd_rebalance }, { "fix", cmd_fix }, { "set-timeout", cmd_set_timeout },
    { "up", cmd_up }, { "down", cmd_down }, { "scale", cmd_scale }, { "status", cmd_status }, { "image", cmd_image },
    { "backup", cmd_backup }, { "restore", cmd_restore }, { "import", cmd_import }, { "update", cmd_update },
};

static const struct rc_command *rc_command_named(const char *name) {
    for (size_t i = 0; i < sizeof rc_commands / sizeof rc_commands[0]; i++)
        if (!strcmp(name, rc_commands[i].name)) return &rc_commands[i];
    return NULL;
}

/* redis-cli's command line as it is: `rcluster [OPTIONS] --cluster COMMAND ARGS...`
 * (`-a P --cluster check ADDR`) becomes `rcluster COMMAND OPTIONS ARGS...`, and
 * `--cluster help` becomes --help. Options may stand before the command even without
 * --cluster. out has room for argc + 1 pointers; returns the new argc (argv copied
 * unchanged when argv[1] is the command or none is found). Pure. */
static int rc_argv_command_first(int argc, char **argv, char **out) {
    int at = -1, n = 0;
    for (int i = 1; argc > 1 && argv[1][0] == '-' && i < argc && at < 0; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (rc_command_named(argv[i]) || (!strcmp(argv[i], "help") && !strcmp(argv[i - 1], "--cluster"))) at = i;
    }
    if (at < 0) { memcpy(out, argv, sizeof *out * (size_t)argc); out[argc] = NULL; return argc; }
    out[n++] = argv[0];
    out[n++] = !strcmp(argv[at], "help") ? (char *)"--help" : argv[at];
    for (int i = 1; i < at; i++) if (strcmp(argv[i], "--cluster") != 0) out[n++] = argv[i];
    for (int i = at + 1; i < argc; i++) out[n++] = argv[i];
    out[n] = NULL;
    return n;
}

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
    sdsfree(rc->joined[0]);
    sdsfree(rc->joined[1]);
    sdsfree(rc->err);
    sdsfree(rc->user);
    sdsfree(rc->password);
    sdsfree(rc->docker_host);
    sdsfree(rc->api_version);
    sdsfree(rc->plan);
    sdsfree(rc->plan_files);
}

/* --json anywhere before `--`: asked for before the command's parser ran (a failure
 * in parsing, an unknown command still owes one document). Not for `call`, whose
 * CMD ARG... may hold a --json of its own. */
static int rc_argv_wants_json(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "call")) return 0;
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (!strcmp(argv[i], "--json")) return 1;
    return 0;
}

/* --json and a failure: the one document on stdout says so,
 * {"ok":false,"error":{"kind":...,"message":...,"exit":N}}. */
static void rc_print_json_error(struct rc *rc, int code) {
    static const char *const kinds[] = { "fail", "usage", "auth", "not_cluster", "unreachable", "timeout", "interrupted",
                                         "corrupt", "incompatible", "exists", "unhealthy" };   /* enum rc_err_kind order */
    int k = rc->err_kind;
    sds j = rc_catprintf(sdsnew("{\"ok\":false,\"error\":{\"kind\":\""), "%s\",\"message\":",
                         k >= 0 && k < (int)(sizeof kinds / sizeof kinds[0]) ? kinds[k] : "fail");
    j = rc_json_str(j, rc->err ? rc->err : "unknown failure");
    j = rc_catprintf(j, ",\"exit\":%d}}\n", code);
    if (j) fputs(j, stdout);
    sdsfree(j);
}

/* The exit status of a failure of this kind: the table in --help. */
static int rc_exit_of_kind(int kind) {
    switch (kind) {
    case RC_ERR_USAGE: return RC_EXIT_USAGE;
    case RC_ERR_UNHEALTHY: return RC_EXIT_UNHEALTHY;
    case RC_ERR_INTERRUPTED: return RC_EXIT_INTERRUPTED;
    default: return RC_EXIT_FAIL;
    }
}

/* A command's result (0 / -1 with rc->err) as the exit status. A failure after a
 * signal was interrupted, whatever broke on the way out. */
static int rc_exit_code(struct rc *rc, int r) {
    if (r >= 0) return RC_EXIT_OK;
    if (rc_interrupted()) rc->err_kind = RC_ERR_INTERRUPTED;
    return rc_exit_of_kind(rc->err_kind);
}

#ifndef RCLUSTER_NO_MAIN
static int rc_main(int argc, char **argv);

int main(int argc, char **argv) {
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) { fputs("rcluster: error: out of memory\n", stderr); return RC_EXIT_FAIL; }
    int r = rc_main(rc_argv_command_first(argc, argv, args), args);
    free(args);
    return r;
}

/* main with the command first (rc_argv_command_first). */
static int rc_main(int argc, char **argv) {
    struct rc rc;
    rc_init(&rc);
    rc_install_signals();
    int r;
    if (argc < 2) { usage_main(stderr); rc_release(&rc); return RC_EXIT_USAGE; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        for (size_t i = 0; argc > 2 && i < sizeof rc_commands / sizeof rc_commands[0]; i++)   /* help CMD: CMD --help */
            if (!strcmp(argv[2], rc_commands[i].name)) {
                char *hv[] = { argv[2], (char *)"--help", NULL };
                r = rc_commands[i].run(&rc, 2, hv);
                rc_release(&rc);
                return r < 0 ? RC_EXIT_USAGE : 0;
            }
        usage_main(stdout);
        rc_release(&rc);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) { printf("rcluster %s\n", RCLUSTER_VERSION); rc_release(&rc); return 0; }
    const struct rc_command *cmd = rc_command_named(argv[1]);
    if (!cmd) r = rc_fail_as(&rc, RC_ERR_USAGE, "unknown command '%s' (see rcluster --help)", argv[1]);
    else r = cmd->run(&rc, argc - 1, argv + 1);
    int code = rc_exit_code(&rc, r);
    if (code == RC_EXIT_UNHEALTHY) { if (rc.err) fprintf(stderr, "rcluster: %s\n", rc.err); }
    else if (r < 0) fprintf(stderr, "%srcluster: error:%s %s\n", rc.color ? "\033[31m" : "", rc.color ? "\033[0m" : "", rc.err ? rc.err : "unknown failure");
    if (r < 0 && (rc.json || rc_argv_wants_json(argc, argv)) && !rc.json_done) rc_print_json_error(&rc, code);
    /* Every command owes --json one document: one that had nothing else to say (down,
     * a dry run) says that it did it, and what it would have sent. */
    if (r >= 0 && rc.json && !rc.json_done)
        rc_json_outf(&rc, "{\"ok\":true,\"command\":\"%s\",\"dry_run\":%s}", cmd->name, rc.plan ? "true" : "false");
    fflush(stdout);
    rc_release(&rc);
    return code;
}
#endif
