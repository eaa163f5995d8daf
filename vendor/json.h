/* json.h — strict RFC 8259 JSON parser producing a read-only DOM in a single allocation.
 *
 * Include anywhere for the declarations; in exactly one translation unit
 *     #define JSON_IMPLEMENTATION
 *     #include "json.h"
 * to get the implementation.
 *
 * Parsing makes two passes over the input: the first validates it and measures
 * the DOM (nodes, child tables, decoded string bytes), the second builds it
 * inside one malloc'ed block whose first byte is the root node, so json_free()
 * is free(root).  All pointers returned by the accessors point into that block
 * and die with json_free().
 *
 * Numbers are converted by json__to_double(), not strtod() (6 KB of exact conversion
 * in a static binary, and it honours the locale): integers up to 2^53, and up to 15
 * digits times 10^-22..10^22 (0.25, 1.5e3), come out exact (as strtod rounds them), any
 * other number within 4 units in the last place; beyond the double range +-HUGE_VAL or
 * 0. json_number_text() always gives the exact original text.
 */
#ifndef RCLUSTER_JSON_H
#define RCLUSTER_JSON_H

#include <stddef.h>

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type_e;
typedef struct json_value_s json_value_s; /* opaque to users */
typedef struct {
    size_t offset, line, column; /* byte offset (0-based) of the error; line/column 1-based, column in bytes */
    const char *message;         /* static string */
} json_error_s;

#ifndef JSON_MAX_DEPTH
#define JSON_MAX_DEPTH 256
#endif

/* Parses src[0..len) (may contain NUL bytes; never read past len). Returns the DOM root (free with
 * json_free) or NULL on error, filling *err when err != NULL (on success err->message is NULL). */
json_value_s *json_parse(const char *src, size_t len, json_error_s *err);
/* Frees the whole DOM; NULL is a no-op. Every pointer obtained from it becomes invalid. */
void json_free(json_value_s *v);
/* Type of v; JSON_NULL for NULL v. */
json_type_e json_type(const json_value_s *v);
/* Array elements, object members or decoded string bytes; 0 for anything else. */
size_t json_length(const json_value_s *v);
/* Element i of an array; NULL if arr is not an array or i is out of range. */
const json_value_s *json_at(const json_value_s *arr, size_t i);
/* Value of the first member named key (a C string); NULL if obj is not an object or has no such key. */
const json_value_s *json_get(const json_value_s *obj, const char *key);
/* Key of member i (NUL-terminated decoded UTF-8); NULL if obj is not an object or i is out of range. */
const char *json_member_key(const json_value_s *obj, size_t i);
/* Value of member i; NULL if obj is not an object or i is out of range. */
const json_value_s *json_member_value(const json_value_s *obj, size_t i);
/* NUL-terminated decoded UTF-8 (may contain \0 from \u0000; use json_length); NULL if not a string. */
const char *json_string(const json_value_s *v);
/* Numeric value, or dflt if v is not a number. */
double json_number(const json_value_s *v, double dflt);
/* 1 only for JSON true, else 0. */
int json_is_true(const json_value_s *v);
/* The number's original text (NUL-terminated copy); NULL if not a number. */
const char *json_number_text(const json_value_s *v);
/* Writes s[0..len) as a quoted JSON string literal into out when out != NULL (no NUL written) and returns
 * the byte count including both quotes. Escapes " \ and control bytes; bytes >= 0x80 pass through. */
size_t json_escape(const char *s, size_t len, char *out);

#endif /* RCLUSTER_JSON_H */

#ifdef JSON_IMPLEMENTATION
#ifndef RCLUSTER_JSON_IMPLEMENTED
#define RCLUSTER_JSON_IMPLEMENTED

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct json_value_s {
    json_type_e type;
    size_t len;             /* array/object: children; string: decoded bytes */
    const char *key;        /* member key when the parent is an object, else NULL */
    size_t keylen;
    const char *str;        /* string: decoded bytes; number: original text */
    json_value_s **items;   /* array/object: children in order */
    json_value_s *next;     /* sibling link, used while building */
    double num;
};

typedef struct {
    const unsigned char *start, *p, *end;
    int build;              /* 0: validate and measure; 1: build */
    size_t nodes, slots, bytes;
    json_value_s *pool;     /* build: node storage (pool[0] is the root) */
    json_value_s **slotpool;
    char *strpool;
    const char *msg;
    const unsigned char *errpos;
} json__parser_s;

static int json__fail(json__parser_s *P, const unsigned char *at, const char *msg) {
    if (!P->msg) {
        P->msg = msg;
        P->errpos = at;
    }
    return -1;
}

static void json__ws(json__parser_s *P) {
    while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r')) P->p++;
}

static json_value_s *json__node(json__parser_s *P, json_type_e t) {
    json_value_s *v = NULL;
    if (P->build) {
        v = &P->pool[P->nodes];
        memset(v, 0, sizeof *v);
        v->type = t;
    }
    P->nodes++;
    return v;
}

/* Reserves n bytes of string storage; returns NULL while measuring. */
static char *json__bytes(json__parser_s *P, size_t n) {
    char *s = P->build ? P->strpool + P->bytes : NULL;
    P->bytes += n;
    return s;
}

static int json__hex4(const unsigned char *p, const unsigned char *end, unsigned *out) {
    unsigned v = 0;
    if (end - p < 4) return -1;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 if invalid. */
static size_t json__utf8len(const unsigned char *p, const unsigned char *end) {
    size_t avail = (size_t)(end - p), n;
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
    } else return 0;
    if (avail < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

static size_t json__put_utf8(unsigned cp, unsigned char *o) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses the string literal at P->p (which is '"'); stores the decoded, NUL-terminated bytes. */
static int json__string(json__parser_s *P, const char **out, size_t *outlen) {
    const unsigned char *p = P->p + 1, *end = P->end;
    size_t n = 0;
    /* Measure first (cheap), so storage is one contiguous reservation in both passes. */
    for (;;) {
        if (p >= end) return json__fail(P, p, "unterminated string");
        unsigned char c = *p;
        if (c == '"') break;
        if (c < 0x20) return json__fail(P, p, "control character in string");
        if (c == '\\') {
            if (end - p < 2) return json__fail(P, end, "unterminated string");
            unsigned cp;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2, n += 1;
                continue;
            case 'u':
                if (json__hex4(p + 2, end, &cp)) return json__fail(P, p, "invalid \\u escape");
                if (cp >= 0xDC00 && cp <= 0xDFFF) return json__fail(P, p, "lone low surrogate");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || json__hex4(p + 8, end, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return json__fail(P, p, "lone high surrogate");
                    p += 12, n += 4;
                } else {
                    p += 6, n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
                }
                continue;
            default:
                return json__fail(P, p, "invalid escape");
            }
        }
        if (c < 0x80) { p++, n++; continue; }
        size_t k = json__utf8len(p, end);
        if (!k) return json__fail(P, p, "invalid UTF-8 in string");
        p += k, n += k;
    }
    const unsigned char *close = p;
    unsigned char *o = (unsigned char *)json__bytes(P, n + 1);
    *outlen = n;
    *out = (const char *)o;
    if (o) { /* build: decode (input already validated) */
        for (p = P->p + 1; p < close;) {
            if (*p != '\\') { *o++ = *p++; continue; }
            unsigned cp = 0, lo = 0;
            switch (p[1]) {
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u':
                json__hex4(p + 2, end, &cp);
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    json__hex4(p + 8, end, &lo);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                o += json__put_utf8(cp, o);
                p += 4;
                break;
            default: *o++ = p[1]; break; /* " \ / */
            }
            p += 2;
        }
        *o = '\0';
    }
    P->p = close + 1;
    return 0;
}

static int json__isdigit(const json__parser_s *P, const unsigned char *p) {
    return p < P->end && *p >= '0' && *p <= '9';
}

/* The value of s, a valid JSON number (see the header comment for the precision): its
 * first 19 significant digits as an integer, times or divided by a power of ten made of
 * at most 9 of the powers 10^(2^i) (each exact up to 10^16, correctly rounded beyond). */
static double json__to_double(const char *s) {
    static const double pow10_2i[] = { 1e1, 1e2, 1e4, 1e8, 1e16, 1e32, 1e64, 1e128, 1e256 };
    int neg = *s == '-', point = 0, exp10 = 0;
    uint64_t m = 0;
    for (s += neg; (*s >= '0' && *s <= '9') || *s == '.'; s++) {
        if (*s == '.') {
            point = 1;
        } else if (m <= (UINT64_MAX - 9) / 10) {
            m = m * 10 + (uint64_t)(*s - '0');
            if (point && exp10 > -100000) exp10--;
        } else if (!point && exp10 < 100000) {
            exp10++;   /* an integer digit past the 19th: dropped, its place kept */
        }
    }
    if (*s == 'e' || *s == 'E') {
        int eneg = *++s == '-', e = 0;
        for (s += *s == '+' || *s == '-'; *s >= '0' && *s <= '9'; s++)
            if (e < 100000) e = e * 10 + (*s - '0');
        exp10 += eneg ? -e : e;
    }
    double v = (double)m, p = 1;
    unsigned n = (unsigned)(exp10 < 0 ? -exp10 : exp10);
    if (n > 400) n = 400;                                  /* out of range either way */
    if (exp10 < 0 && n > 308) v /= 1e256, n -= 256;        /* 10^n itself would overflow */
    for (int i = 0; n; i++, n >>= 1)
        if (n & 1) p *= pow10_2i[i];
    v = m == 0 ? 0 : exp10 < 0 ? v / p : v * p;
    return neg ? -v : v;
}

static int json__number(json__parser_s *P, json_value_s *v) {
    const unsigned char *s = P->p, *p = s;
    if (p < P->end && *p == '-') p++;
    if (!json__isdigit(P, p)) return json__fail(P, p, "invalid number");
    if (*p == '0') {
        if (json__isdigit(P, ++p)) return json__fail(P, p, "leading zero in number");
    } else {
        while (json__isdigit(P, p)) p++;
    }
    if (p < P->end && *p == '.') {
        if (!json__isdigit(P, ++p)) return json__fail(P, p, "digit expected after decimal point");
        while (json__isdigit(P, p)) p++;
    }
    if (p < P->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < P->end && (*p == '+' || *p == '-')) p++;
        if (!json__isdigit(P, p)) return json__fail(P, p, "digit expected in exponent");
        while (json__isdigit(P, p)) p++;
    }
    size_t n = (size_t)(p - s);
    char *text = json__bytes(P, n + 1);
    if (v) {
        memcpy(text, s, n);
        text[n] = '\0';
        v->str = text;
        v->len = 0;
        v->num = json__to_double(text);
    }
    P->p = p;
    return 0;
}

static int json__value(json__parser_s *P, json_value_s **out, int depth);

/* Arrays and objects: '[' or '{' at P->p. */
static int json__container(json__parser_s *P, json_value_s *v, int depth, int obj) {
    const unsigned char close = obj ? '}' : ']';
    json_value_s *head = NULL, *tail = NULL;
    size_t count = 0;
    if (depth >= JSON_MAX_DEPTH) return json__fail(P, P->p, "maximum nesting depth exceeded");
    P->p++;
    json__ws(P);
    if (P->p < P->end && *P->p == close) {
        P->p++;
    } else {
        for (;;) {
            const char *key = NULL;
            size_t keylen = 0;
            json_value_s *child = NULL;
            if (obj) {
                if (P->p >= P->end) return json__fail(P, P->p, "unexpected end of input");
                if (*P->p != '"') return json__fail(P, P->p, "expected string key");
                if (json__string(P, &key, &keylen)) return -1;
                json__ws(P);
                if (P->p >= P->end) return json__fail(P, P->p, "unexpected end of input");
                if (*P->p != ':') return json__fail(P, P->p, "expected ':'");
                P->p++;
                json__ws(P);
            }
            if (json__value(P, &child, depth + 1)) return -1;
            count++;
            if (child) {
                child->key = key;
                child->keylen = keylen;
                if (tail) tail->next = child;
                else head = child;
                tail = child;
            }
            json__ws(P);
            if (P->p >= P->end) return json__fail(P, P->p, "unexpected end of input");
            if (*P->p == close) { P->p++; break; }
            if (*P->p != ',') return json__fail(P, P->p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            P->p++;
            json__ws(P);
        }
    }
    if (v) {
        v->len = count;
        v->items = P->slotpool + P->slots;
        for (size_t i = 0; head; head = head->next) v->items[i++] = head;
    }
    P->slots += count;
    return 0;
}

static int json__literal(json__parser_s *P, const char *word, size_t n) {
    if ((size_t)(P->end - P->p) < n || memcmp(P->p, word, n) != 0) return json__fail(P, P->p, "invalid literal");
    P->p += n;
    return 0;
}

static int json__value(json__parser_s *P, json_value_s **out, int depth) {
    if (P->p >= P->end) return json__fail(P, P->p, "unexpected end of input");
    json_value_s *v;
    switch (*P->p) {
    case '{': *out = v = json__node(P, JSON_OBJECT); return json__container(P, v, depth, 1);
    case '[': *out = v = json__node(P, JSON_ARRAY); return json__container(P, v, depth, 0);
    case '"':
        *out = v = json__node(P, JSON_STRING);
        {
            const char *s = NULL;   /* set on success; NULL keeps the analyzer from guessing */
            size_t n = 0;
            if (json__string(P, &s, &n)) return -1;
            if (v) v->str = s, v->len = n;
        }
        return 0;
    case 't': *out = json__node(P, JSON_TRUE); return json__literal(P, "true", 4);
    case 'f': *out = json__node(P, JSON_FALSE); return json__literal(P, "false", 5);
    case 'n': *out = json__node(P, JSON_NULL); return json__literal(P, "null", 4);
    default:
        if (*P->p == '-' || (*P->p >= '0' && *P->p <= '9')) {
            *out = v = json__node(P, JSON_NUMBER);
            return json__number(P, v);
        }
        return json__fail(P, P->p, "unexpected character");
    }
}

static int json__run(json__parser_s *P) {
    json_value_s *root = NULL;
    json__ws(P);
    if (json__value(P, &root, 0)) return -1;
    json__ws(P);
    if (P->p != P->end) return json__fail(P, P->p, "unexpected data after value");
    return 0;
}

static void json__set_error(json_error_s *err, const char *src, size_t off, const char *msg) {
    if (!err) return;
    err->offset = off;
    err->line = 1;
    err->column = 1;
    err->message = msg;
    for (size_t i = 0; i < off; i++) {
        if (src[i] == '\n') err->line++, err->column = 1;
        else err->column++;
    }
}

json_value_s *json_parse(const char *src, size_t len, json_error_s *err) {
    json__parser_s P;
    memset(&P, 0, sizeof P);
    if (!src && len) {
        json__set_error(err, "", 0, "NULL input");
        return NULL;
    }
    P.start = P.p = (const unsigned char *)(src ? src : "");
    P.end = P.start + len;
    if (json__run(&P)) {
        json__set_error(err, (const char *)P.start, (size_t)(P.errpos - P.start), P.msg);
        return NULL;
    }
    /* Layout: nodes (root first), child pointer tables, string bytes. Each node consumes at least
     * one input byte, so counts are bounded by len + 1; still guard the multiplications. */
    size_t nodes = P.nodes, slots = P.slots, bytes = P.bytes, total;
    if (nodes > (SIZE_MAX - bytes) / 2 / sizeof(json_value_s) || slots > (SIZE_MAX - bytes) / 2 / sizeof(json_value_s *)) {
        json__set_error(err, src, 0, "input too large");
        return NULL;
    }
    total = nodes * sizeof(json_value_s) + slots * sizeof(json_value_s *) + bytes;
    unsigned char *block = malloc(total);
    if (!block) {
        json__set_error(err, src, 0, "out of memory");
        return NULL;
    }
    memset(&P, 0, sizeof P);
    P.start = P.p = (const unsigned char *)src;
    P.end = P.start + len;
    P.build = 1;
    P.pool = (json_value_s *)(void *)block;
    P.slotpool = (json_value_s **)(void *)(block + nodes * sizeof(json_value_s));
    P.strpool = (char *)(block + nodes * sizeof(json_value_s) + slots * sizeof(json_value_s *));
    if (json__run(&P) || P.nodes != nodes || P.slots != slots || P.bytes != bytes) { /* cannot happen */
        free(block);
        json__set_error(err, src, 0, "internal error");
        return NULL;
    }
    if (err) memset(err, 0, sizeof *err);
    return P.pool;
}

void json_free(json_value_s *v) { free(v); }

json_type_e json_type(const json_value_s *v) { return v ? v->type : JSON_NULL; }

size_t json_length(const json_value_s *v) {
    if (!v) return 0;
    return (v->type == JSON_ARRAY || v->type == JSON_OBJECT || v->type == JSON_STRING) ? v->len : 0;
}

const json_value_s *json_at(const json_value_s *arr, size_t i) {
    return (arr && arr->type == JSON_ARRAY && i < arr->len) ? arr->items[i] : NULL;
}

const json_value_s *json_get(const json_value_s *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->len; i++) {
        const json_value_s *m = obj->items[i];
        if (m->keylen == n && memcmp(m->key, key, n) == 0) return m;
    }
    return NULL;
}

const char *json_member_key(const json_value_s *obj, size_t i) {
    return (obj && obj->type == JSON_OBJECT && i < obj->len) ? obj->items[i]->key : NULL;
}

const json_value_s *json_member_value(const json_value_s *obj, size_t i) {
    return (obj && obj->type == JSON_OBJECT && i < obj->len) ? obj->items[i] : NULL;
}

const char *json_string(const json_value_s *v) { return (v && v->type == JSON_STRING) ? v->str : NULL; }

double json_number(const json_value_s *v, double dflt) { return (v && v->type == JSON_NUMBER) ? v->num : dflt; }

int json_is_true(const json_value_s *v) { return v && v->type == JSON_TRUE; }

const char *json_number_text(const json_value_s *v) { return (v && v->type == JSON_NUMBER) ? v->str : NULL; }

size_t json_escape(const char *s, size_t len, char *out) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
#define JSON__PUT(c) do { if (out) out[n] = (char)(c); n++; } while (0)
    JSON__PUT('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char e = 0;
        switch (c) {
        case '"': e = '"'; break;
        case '\\': e = '\\'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        case '\t': e = 't'; break;
        case '\b': e = 'b'; break;
        case '\f': e = 'f'; break;
        default: break;
        }
        if (e) {
            JSON__PUT('\\');
            JSON__PUT(e);
        } else if (c < 0x20) {
            JSON__PUT('\\'); JSON__PUT('u'); JSON__PUT('0'); JSON__PUT('0');
            JSON__PUT(hex[c >> 4]);
            JSON__PUT(hex[c & 15]);
        } else {
            JSON__PUT(c);
        }
    }
    JSON__PUT('"');
#undef JSON__PUT
    return n;
}

#endif /* RCLUSTER_JSON_IMPLEMENTED */
#endif /* JSON_IMPLEMENTATION */
