/* unit_json.c — unit tests for vendor/json.h. One line per check: "PASS name" or "FAIL name: detail". */
#define JSON_IMPLEMENTATION
#include "../vendor/json.h"
#include "../vendor/json.h" /* second inclusion must be harmless */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int npass, nfail;

static void check(const char *name, int ok, const char *detail, int line) {
    if (ok) {
        npass++;
        printf("PASS %s\n", name);
    } else {
        nfail++;
        printf("FAIL %s: %s (line %d)\n", name, detail, line);
    }
}
#define CHECK(name, cond) check((name), !!(cond), #cond, __LINE__)

/* Parses from an exactly-sized heap copy (no NUL after it), so ASan catches any over-read. */
static json_value_s *parse_n(const char *s, size_t n, json_error_s *err) {
    char *buf = malloc(n ? n : 1);
    if (!buf) abort();
    memcpy(buf, s, n);
    json_value_s *v = json_parse(buf, n, err);
    free(buf);
    return v;
}
static json_value_s *parse(const char *s, json_error_s *err) { return parse_n(s, strlen(s), err); }

static int str_is(const json_value_s *v, const char *want, size_t n) {
    return json_type(v) == JSON_STRING && json_length(v) == n && memcmp(json_string(v), want, n) == 0 &&
           json_string(v)[n] == '\0';
}

static void test_scalars(void) {
    json_value_s *v;
    v = parse("null", NULL);
    CHECK("null", v && json_type(v) == JSON_NULL && json_length(v) == 0);
    json_free(v);
    v = parse("true", NULL);
    CHECK("true", v && json_type(v) == JSON_TRUE && json_is_true(v));
    json_free(v);
    v = parse("false", NULL);
    CHECK("false", v && json_type(v) == JSON_FALSE && !json_is_true(v));
    json_free(v);
    v = parse(" \t\r\n \"hi\" \n\r\t ", NULL);
    CHECK("string with surrounding whitespace", str_is(v, "hi", 2));
    json_free(v);
    v = parse("\"\"", NULL);
    CHECK("empty string", str_is(v, "", 0));
    json_free(v);
    v = parse("[]", NULL);
    CHECK("empty array", v && json_type(v) == JSON_ARRAY && json_length(v) == 0 && !json_at(v, 0));
    json_free(v);
    v = parse("{ }", NULL);
    CHECK("empty object", v && json_type(v) == JSON_OBJECT && json_length(v) == 0 && !json_get(v, "x") &&
                              !json_member_key(v, 0) && !json_member_value(v, 0));
    json_free(v);
    json_free(NULL);
    CHECK("NULL accessors", json_type(NULL) == JSON_NULL && json_length(NULL) == 0 && !json_at(NULL, 0) &&
                                !json_get(NULL, "a") && !json_string(NULL) && json_number(NULL, 3.5) == 3.5 &&
                                !json_is_true(NULL) && !json_number_text(NULL) && !json_member_key(NULL, 0));
}

static void test_numbers(void) {
    struct { const char *in; double want; } c[] = {
        {"0", 0}, {"-0", 0}, {"7", 7}, {"-123", -123}, {"1.5", 1.5}, {"-0.25", -0.25}, {"1e3", 1000},
        {"1E+2", 100}, {"25e-2", 0.25}, {"-1.5E-1", -0.15}, {"9007199254740993", 9007199254740992.0},
        {"123456789012345678901234567890", 1.2345678901234568e29}, {"0.000001", 1e-6},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "number %s", c[i].in);
        json_value_s *v = parse(c[i].in, NULL);
        CHECK(name, v && json_type(v) == JSON_NUMBER && json_number(v, -99) == c[i].want &&
                        strcmp(json_number_text(v), c[i].in) == 0 && json_length(v) == 0);
        json_free(v);
    }
    json_value_s *v = parse("[1e400, -1e400, 1e-400]", NULL);
    CHECK("number out of range", v && isinf(json_number(json_at(v, 0), 0)) && json_number(json_at(v, 0), 0) > 0 &&
                                     json_number(json_at(v, 1), 0) < 0 && json_number(json_at(v, 2), 1) == 0 &&
                                     strcmp(json_number_text(json_at(v, 0)), "1e400") == 0);
    json_free(v);
    v = parse("\"5\"", NULL);
    CHECK("json_number default for non-number", v && json_number(v, 42) == 42 && !json_number_text(v));
    json_free(v);
}

/* How many doubles lie between a and b (finite, same sign); 0 when equal. */
static unsigned long long ulps_apart(double a, double b) {
    unsigned long long x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return x > y ? x - y : y - x;
}

/* The value json_parse gives text, or NAN if text is not a number. */
static double num_of(const char *text) {
    json_value_s *v = parse(text, NULL);
    double d = json_type(v) == JSON_NUMBER ? json_number(v, 0) : NAN;
    json_free(v);
    return d;
}

/* json.h converts without strtod(): exact (correctly rounded, as strtod) for integers up
 * to 2^53 and for up to 15 digits times 10^-22..10^22, within a few units in the last
 * place otherwise, 0 below ~1e-308, +-inf above the double range. */
static void test_number_conversion(void) {
    static const char *const exact[] = {
        "0.1", "0.2", "0.3", "-0.7", "123.456", "3.14159265358979", "1e22", "1e-22", "4503599627370497",
        "9007199254740991", "-9007199254740992", "65535", "2147483648", "0.000000000000000000001", "99.999999999999",
        "1.0000000000000000000000000000001", "100000000000000000000000000000000e-32", "120e-1", "5e+0", "-0.0e7",
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "number %s converts like strtod", exact[i]);
        CHECK(name, num_of(exact[i]) == strtod(exact[i], NULL));
    }
    CHECK("number -0 keeps its sign", signbit(num_of("-0")) && !signbit(num_of("0")) && signbit(num_of("-0.0e-5")));
    CHECK("number zero with a huge exponent is 0, not NaN", num_of("0e400") == 0 && num_of("0.000e99999999999") == 0);
    CHECK("number huge exponents saturate", isinf(num_of("1e99999999999999999999")) && num_of("1e-99999999999999999999") == 0 &&
                                               isinf(num_of("-7e309")) && num_of("-7e309") < 0);
    CHECK("number max double", num_of("1.7976931348623157e308") == 1.7976931348623157e308 && isinf(num_of("1.8e308")));
    CHECK("number below the normal range", num_of("4.9e-324") == 4.9e-324 && num_of("1e-310") == 1e-310 &&
                                               num_of("2.2250738585072014e-308") == 2.2250738585072014e-308);
    /* 1000 digits before and after the point: digits past the 19th drop without overflow */
    char big[2100];
    memset(big, '9', 1000);
    big[1000] = '.';
    memset(big + 1001, '9', 1000);
    big[2001] = '\0';
    CHECK("number with 2000 digits", ulps_apart(num_of(big), strtod(big, NULL)) <= 4);
    memcpy(big, "0.", 2);
    memset(big + 2, '0', 1500);
    memcpy(big + 1502, "125e1500", 9);
    CHECK("number with 1500 zeros after the point", num_of(big) == 0.125);
    /* random numbers of every shape: exact in the fast range, else within 4 units in the last place */
    unsigned seed = 12345;
    int fast_bad = 0, slow_bad = 0;
    for (int i = 0; i < 200000; i++) {
        char text[64];
        seed = seed * 1103515245u + 12345u;
        unsigned long long m = ((unsigned long long)seed << 32) ^ (unsigned long long)(seed * 2654435761u);
        int digits = (int)(seed >> 8) % 20 + 1, e = (int)((seed >> 16) % 640) - 330;
        char md[32];
        snprintf(md, sizeof md, "%llu", m);
        md[digits < (int)strlen(md) ? digits : (int)strlen(md)] = '\0';
        snprintf(text, sizeof text, "%s%se%d", seed & 1 ? "-" : "", md, e);
        double w = strtod(text, NULL), g = num_of(text);
        int fast = strtoull(md, NULL, 10) <= (1ULL << 53) && e >= -22 && e <= 22;
        if (fast && g != w) fast_bad++;
        if (!fast && w != 0 && !isinf(w) && ulps_apart(g, w) > 4) {
            if (slow_bad++ < 3) printf("# %s: %.17g, strtod %.17g\n", text, g, w);
        }
    }
    CHECK("numbers in the fast range: exactly strtod's", fast_bad == 0);
    CHECK("other numbers: within 4 units in the last place of strtod's", slow_bad == 0);
}

static void test_structures(void) {
    const char *doc = "{\"Id\":\"abc123\",\"Names\":[\"/redis-1\"],\"State\":{\"Running\":true,\"Pid\":4242},"
                      "\"NetworkSettings\":{\"Networks\":{\"redis\":{\"IPAddress\":\"10.38.0.11\",\"Aliases\":null}}},"
                      "\"Ports\":{},\"Mounts\":[],\"Id\":\"dup\"}";
    json_value_s *v = parse(doc, NULL);
    CHECK("docker doc parses", v && json_type(v) == JSON_OBJECT && json_length(v) == 7);
    CHECK("docker Id (first duplicate wins)", str_is(json_get(v, "Id"), "abc123", 6));
    const json_value_s *ip =
        json_get(json_get(json_get(json_get(v, "NetworkSettings"), "Networks"), "redis"), "IPAddress");
    CHECK("docker nested IPAddress", str_is(ip, "10.38.0.11", 10));
    CHECK("docker State.Running", json_is_true(json_get(json_get(v, "State"), "Running")));
    CHECK("docker State.Pid", json_number(json_get(json_get(v, "State"), "Pid"), 0) == 4242);
    CHECK("docker Names[0]", str_is(json_at(json_get(v, "Names"), 0), "/redis-1", 8));
    const json_value_s *redis = json_get(json_get(json_get(v, "NetworkSettings"), "Networks"), "redis");
    CHECK("docker Aliases null", json_get(redis, "Aliases") && json_type(json_get(redis, "Aliases")) == JSON_NULL);
    CHECK("docker missing key", json_get(v, "Nope") == NULL && json_get(v, "id") == NULL);
    const char *keys[] = {"Id", "Names", "State", "NetworkSettings", "Ports", "Mounts", "Id"};
    int ok = 1;
    for (size_t i = 0; i < 7; i++) ok &= json_member_key(v, i) && strcmp(json_member_key(v, i), keys[i]) == 0;
    CHECK("member keys in order", ok && !json_member_key(v, 7));
    CHECK("member values", str_is(json_member_value(v, 6), "dup", 3) && !json_member_value(v, 7));
    CHECK("wrong-type accessors", !json_at(v, 0) && !json_get(json_get(v, "Names"), "x") &&
                                      !json_member_key(json_get(v, "Names"), 0) && !json_string(v) &&
                                      json_length(json_get(json_get(v, "State"), "Pid")) == 0);
    json_free(v);

    v = parse("[1, [2, [3, {\"a\": [4, {}]}]], \"x\", true, false, null, -1.5e2]", NULL);
    CHECK("nested array length", v && json_length(v) == 7);
    const json_value_s *a = json_get(json_at(json_at(json_at(v, 1), 1), 1), "a");
    CHECK("nested deep element", json_number(json_at(a, 0), 0) == 4 && json_type(json_at(a, 1)) == JSON_OBJECT);
    CHECK("nested mixed kinds", json_type(json_at(v, 2)) == JSON_STRING && json_type(json_at(v, 3)) == JSON_TRUE &&
                                    json_type(json_at(v, 4)) == JSON_FALSE && json_type(json_at(v, 5)) == JSON_NULL &&
                                    json_number(json_at(v, 6), 0) == -150 && !json_at(v, 7));
    json_free(v);

    /* Many siblings with nested children in between: children tables must stay in order. */
    char big[32768];
    size_t n = 0;
    big[n++] = '[';
    for (int i = 0; i < 500; i++) n += (size_t)snprintf(big + n, sizeof big - n, "%s[%d,{\"k\":%d}]", i ? "," : "", i, -i);
    big[n++] = ']';
    v = parse_n(big, n, NULL);
    ok = v && json_length(v) == 500;
    for (size_t i = 0; ok && i < 500; i++)
        ok = json_number(json_at(json_at(v, i), 0), -1) == (double)i &&
             json_number(json_get(json_at(json_at(v, i), 1), "k"), 1) == -(double)i;
    CHECK("500 nested siblings in order", ok);
    json_free(v);
}

static void test_strings(void) {
    json_value_s *v = parse("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"", NULL);
    CHECK("simple escapes", str_is(v, "a\"b\\c/d\be\ff\ng\rh\ti", 17));
    json_free(v);
    v = parse("\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\\uD834\\uDD1E\"", NULL);
    CHECK("\\u escapes and surrogate pairs", str_is(v, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf0\x9d\x84\x9e", 14));
    json_free(v);
    v = parse("\"\\udbff\\udfff\\u0800\\u07ff\\u0080\\u007f\"", NULL);
    CHECK("\\u boundaries", str_is(v, "\xf4\x8f\xbf\xbf\xe0\xa0\x80\xdf\xbf\xc2\x80\x7f", 12));
    json_free(v);
    v = parse("\"a\\u0000b\"", NULL);
    CHECK("\\u0000 embedded NUL", str_is(v, "a\0b", 3));
    json_free(v);
    v = parse("{\"k\\u0000x\":1,\"k\":2}", NULL);
    CHECK("key with NUL does not match prefix", v && json_number(json_get(v, "k"), 0) == 2 &&
                                                 memcmp(json_member_key(v, 0), "k\0x", 4) == 0);
    json_free(v);
    v = parse("\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \x7f\"", NULL);
    CHECK("raw UTF-8 and DEL", str_is(v, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \x7f", 21));
    json_free(v);
}

static void test_invalid(void) {
    static const char *bad[] = {
        "", " ", "nul", "tru", "True", "nulll", "[1,]", "[,1]", "[1 2]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
        "{\"a\":}", "{,}", "{\"a\":1 \"b\":2}", "[1]]", "[1] x", "{}{}", "01", "-01", "+1", ".5", "1.", "1.e5", "1e",
        "1e+", "-", "--1", "0x10", "1_000", "NaN", "Infinity", "-Infinity", "\"abc", "\"\\x\"", "\"\\u12\"",
        "\"\\u12g4\"", "\"\\U0041\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"",
        "\"\\udbff\\udbff\"", "\"tab\there\"", "\"nl\nx\"", "\"\x01\"", "\"\x1f\"", "\"\xc0\x80\"", "\"\xc1\xbf\"",
        "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"", "\"\x80\"", "\"\xe2\x82\"",
        "\"\xe0\x80\xaf\"", "\"\xf0\x80\x80\xaf\"", "\"\xff\"", "[\"a\",]", "/* c */1", "1 // c", "'a'", "[1,,2]",
        "\f1", "\xef\xbb\xbf{}", "{\"a\":1}}", "\"\\", "[", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "[1", "[1,",
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_s e = {0, 0, 0, NULL};
        json_value_s *v = parse(bad[i], &e);
        char name[128];
        snprintf(name, sizeof name, "invalid #%zu rejected", i);
        int good = v == NULL && e.message != NULL && e.offset <= strlen(bad[i]) && e.line >= 1 && e.column >= 1;
        CHECK(name, good);
        ok &= good;
        json_free(v);
    }
    json_value_s *v = parse_n("1\0", 2, NULL);
    CHECK("NUL after value rejected", v == NULL);
    v = parse_n("\"a\0b\"", 5, NULL);
    CHECK("raw NUL in string rejected", v == NULL);
    v = parse_n("[1,\0 2]", 7, NULL);
    CHECK("NUL as whitespace rejected", v == NULL);
    v = json_parse(NULL, 0, NULL);
    CHECK("NULL/0 input rejected", v == NULL);

    /* Every strict prefix of a valid document must fail cleanly. */
    const char *doc = "{\"Id\":\"a\\u00e9\\ud83d\\ude00\",\"N\":{\"n\":[1,-2.5e+3,true,false,null,\"\xc3\xa9\"]},\"E\":{}}";
    size_t n = strlen(doc);
    v = parse(doc, NULL);
    CHECK("prefix base doc valid", v != NULL);
    json_free(v);
    ok = 1;
    for (size_t i = 0; i < n; i++) {
        json_error_s e;
        v = parse_n(doc, i, &e);
        if (v || !e.message || e.offset > i) ok = 0;
        json_free(v);
    }
    CHECK("every truncated prefix rejected", ok);
}

static void test_depth(void) {
    size_t big = 100000;
    char *s = malloc(2 * big + 16);
    if (!s) abort();
    int d = JSON_MAX_DEPTH;
    memset(s, '[', (size_t)d);
    memset(s + d, ']', (size_t)d);
    json_value_s *v = parse_n(s, 2 * (size_t)d, NULL);
    const json_value_s *w = v;
    int depth = 0;
    while (json_type(w) == JSON_ARRAY) depth++, w = json_at(w, 0);
    CHECK("depth JSON_MAX_DEPTH accepted", v && depth == d);
    json_free(v);
    memset(s, '[', (size_t)d + 1);
    memset(s + d + 1, ']', (size_t)d + 1);
    json_error_s e;
    v = parse_n(s, 2 * (size_t)d + 2, &e);
    CHECK("depth JSON_MAX_DEPTH+1 rejected", !v && e.message && strstr(e.message, "depth") && e.offset == (size_t)d);
    size_t m = 0;
    for (int i = 0; i <= d; i++) m += (size_t)sprintf(s + m, "{\"a\":");
    v = parse_n(s, m, &e);
    CHECK("object depth JSON_MAX_DEPTH+1 rejected", !v && e.message && strstr(e.message, "depth"));
    memset(s, '[', big);
    v = parse_n(s, big, &e);
    CHECK("100000 '[' rejected cleanly", !v && e.message);
    free(s);
}

static void test_error_position(void) {
    const char *doc = "{\n  \"a\": 1,\n  \"b\": [1, 2,]\n}\n";
    json_error_s e;
    json_value_s *v = parse(doc, &e);
    size_t want = (size_t)(strchr(doc, ']') - doc);
    CHECK("error offset", !v && e.offset == want && want == 25);
    CHECK("error line/column", e.line == 3 && e.column == 14);
    CHECK("error message static", e.message && strlen(e.message) > 0);
    v = parse("{\"a\":1}\n\n  x", &e);
    CHECK("trailing garbage position", !v && e.offset == 11 && e.line == 3 && e.column == 3);
    v = parse("\"abc", &e);
    CHECK("unterminated string at end", !v && e.offset == 4 && e.line == 1 && e.column == 5);
    v = parse("", &e);
    CHECK("empty input position", !v && e.offset == 0 && e.line == 1 && e.column == 1);
    v = parse("[1]", &e);
    CHECK("success clears error", v && e.message == NULL);
    json_free(v);
}

static void test_escape(void) {
    char out[64];
    size_t n = json_escape("a\"\\\n\r\t\b\f\x01\x1f/\x7f\xc3\xa9", 14, out);
    const char *want = "\"a\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f/\x7f\xc3\xa9\"";
    CHECK("json_escape output", n == strlen(want) && memcmp(out, want, n) == 0);
    CHECK("json_escape sizing", json_escape("a\"\\\n\r\t\b\f\x01\x1f/\x7f\xc3\xa9", 14, NULL) == n);
    CHECK("json_escape empty", json_escape("", 0, out) == 2 && memcmp(out, "\"\"", 2) == 0);
    int ok = 1, rej = 1;
    for (int b = 0; b < 256; b++) {
        char in = (char)b;
        size_t k = json_escape(&in, 1, NULL);
        memset(out, 'Z', sizeof out);
        if (json_escape(&in, 1, out) != k || out[k] != 'Z') ok = 0;
        json_value_s *v = parse_n(out, k, NULL);
        if (b < 0x80) ok &= str_is(v, &in, 1);
        else rej &= v == NULL; /* a lone byte >= 0x80 is invalid UTF-8 */
        json_free(v);
    }
    CHECK("json_escape round-trip all ASCII bytes", ok);
    CHECK("json_escape lone high bytes rejected by parser", rej);
    static const char u[] = "caf\xc3\xa9 \"q\" \\ \xe2\x82\xac\t\xf0\x9f\x98\x80\n\x00z";
    size_t ul = sizeof u - 1;
    char buf[128];
    n = json_escape(u, ul, buf);
    json_value_s *v = parse_n(buf, n, NULL);
    CHECK("json_escape round-trip UTF-8 with NUL", n < sizeof buf && str_is(v, u, ul));
    json_free(v);
}

int main(void) {
    test_scalars();
    test_numbers();
    test_number_conversion();
    test_structures();
    test_strings();
    test_invalid();
    test_depth();
    test_error_position();
    test_escape();
    printf("unit_json: %d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
