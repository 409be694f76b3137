/*
 * C helpers for kvik-core's `num` module.
 *
 * Redis performs INCRBYFLOAT / HINCRBYFLOAT arithmetic in C `long double`
 * (the x87 80-bit extended format on x86-64), parses with strtold() and
 * prints with "%.17Lf". Rust has no such type, so the few operations needed
 * live here and are exposed through a tiny C ABI. A long double travels
 * across the boundary as an opaque 16-byte buffer (KVIK_LD_BYTES).
 *
 * The file also exposes strtod() with its errno, and "%.17g" formatting, so
 * the Rust side can reproduce (and test against) the C library exactly.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVIK_LD_BYTES 16
/* Redis's MAX_LONG_DOUBLE_CHARS: the longest accepted input (exclusive) and
 * the size of the formatting buffer. */
#define KVIK_MAX_LONG_DOUBLE_CHARS (5 * 1024)

_Static_assert(sizeof(long double) <= KVIK_LD_BYTES,
               "long double does not fit the 16-byte exchange buffer");

static long double ld_load(const unsigned char *p) {
    long double v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static void ld_store(unsigned char *p, long double v) {
    memset(p, 0, KVIK_LD_BYTES);
    memcpy(p, &v, sizeof(v));
}

/* Size in bytes of the platform's long double (informational). */
size_t kvik_ld_size(void) { return sizeof(long double); }

/* Redis string2ld(): returns 1 and stores the value when `s[0..len]` is a
 * valid long double for Redis, 0 otherwise. Rejects: empty input, input of
 * KVIK_MAX_LONG_DOUBLE_CHARS bytes or more, leading whitespace, any byte not
 * consumed by strtold() (including embedded NULs), overflow to +-inf,
 * underflow to zero, and NaN. "inf"/"infinity" are accepted. */
int kvik_ld_parse(const char *s, size_t len, unsigned char *out) {
    char buf[KVIK_MAX_LONG_DOUBLE_CHARS];
    char *eptr;
    long double value;

    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' ||
        (size_t)(eptr - buf) != len ||
        (errno == ERANGE &&
         (value == HUGE_VALL || value == -HUGE_VALL || value == 0)) ||
        errno == EINVAL || isnan(value))
        return 0;

    ld_store(out, value);
    return 1;
}

void kvik_ld_from_i64(long long v, unsigned char *out) {
    ld_store(out, (long double)v);
}

void kvik_ld_from_f64(double v, unsigned char *out) {
    ld_store(out, (long double)v);
}

double kvik_ld_to_f64(const unsigned char *a) { return (double)ld_load(a); }

/* out = a + b, in long double arithmetic. */
void kvik_ld_add(const unsigned char *a, const unsigned char *b,
                 unsigned char *out) {
    long double r = ld_load(a) + ld_load(b);
    ld_store(out, r);
}

/* 0: finite, 1: NaN, 2: +-infinity. */
int kvik_ld_classify(const unsigned char *a) {
    long double v = ld_load(a);
    if (isnan(v)) return 1;
    if (isinf(v)) return 2;
    return 0;
}

/* -1, 0 or 1 (NaN compares as 0; callers never pass NaN). */
int kvik_ld_cmp(const unsigned char *a, const unsigned char *b) {
    long double x = ld_load(a), y = ld_load(b);
    return (x > y) - (x < y);
}

/* Redis ld2string(..., LD_STR_HUMAN): "%.17Lf", trailing zeros (and a
 * trailing '.') removed, "-0" turned into "0"; "inf"/"-inf"/"nan" spelled
 * explicitly. Writes into `buf` (capacity `cap`, which should be
 * KVIK_MAX_LONG_DOUBLE_CHARS) and returns the length, or 0 when the text
 * does not fit (Redis then produces an empty string). */
size_t kvik_ld_format_human(const unsigned char *a, char *buf, size_t cap) {
    long double value = ld_load(a);
    size_t l;

    if (isinf(value)) {
        if (cap < 5) return 0;
        if (value > 0) {
            memcpy(buf, "inf", 3);
            l = 3;
        } else {
            memcpy(buf, "-inf", 4);
            l = 4;
        }
    } else if (isnan(value)) {
        if (cap < 4) return 0;
        memcpy(buf, "nan", 3);
        l = 3;
    } else {
        int n = snprintf(buf, cap, "%.17Lf", value);
        if (n < 0) return 0;
        l = (size_t)n;
        if (l + 1 > cap) return 0;
        if (strchr(buf, '.') != NULL) {
            char *p = buf + l - 1;
            while (*p == '0') {
                p--;
                l--;
            }
            if (*p == '.') l--;
        }
        if (l == 2 && buf[0] == '-' && buf[1] == '0') {
            buf[0] = '0';
            l = 1;
        }
    }
    if (l < cap) buf[l] = '\0';
    return l;
}

/* Redis ld2string(..., LD_STR_AUTO): "%.17Lg" (same conventions otherwise). */
size_t kvik_ld_format_auto(const unsigned char *a, char *buf, size_t cap) {
    long double value = ld_load(a);
    if (isinf(value) || isnan(value)) return kvik_ld_format_human(a, buf, cap);
    int n = snprintf(buf, cap, "%.17Lg", value);
    if (n < 0 || (size_t)n + 1 > cap) return 0;
    return (size_t)n;
}

/* strtod() on `s[0..len]` (as a NUL-terminated copy). Returns the number of
 * bytes consumed (0 when nothing parses) and stores the value and whether
 * errno was ERANGE. Inputs longer than the stack buffer are copied to the
 * heap; -1 (as size_t) signals an allocation failure. */
size_t kvik_strtod(const char *s, size_t len, double *value, int *erange) {
    char stackbuf[256];
    char *buf = stackbuf;
    char *eptr;

    if (len >= sizeof(stackbuf)) {
        buf = malloc(len + 1);
        if (buf == NULL) return (size_t)-1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    *value = strtod(buf, &eptr);
    *erange = errno == ERANGE;
    size_t consumed = (size_t)(eptr - buf);
    if (buf != stackbuf) free(buf);
    return consumed;
}

/* snprintf("%.17g"); returns the length (buffers of 32 bytes suffice). */
size_t kvik_format_g17(double v, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%.17g", v);
    if (n < 0 || (size_t)n + 1 > cap) return 0;
    return (size_t)n;
}
