/* bench-calendar.c - calendar_add() calls/s for 2 h, 1 WD and 15 WD limits vs plain wall-clock
 * addition. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "calendar.h"

#define N_STARTS 4096 /* a power of two: the loop masks its index */
#define HOUR_S   3600
#define WD_S     28800

typedef int (*add_fn)(const struct calendar *c, int64_t start_ms, int64_t s, int64_t *ret_ms);

/* The baseline: what a deadline costs in wall-clock time, called the same
 * way (through a pointer, with the same arguments) as calendar_add(). */
static int wall_add(const struct calendar *c, int64_t start_ms, int64_t s, int64_t *ret_ms)
{
    (void)c;
    *ret_ms = start_ms + s * 1000;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Calls per second of fn over the starts, for about a quarter of a second. */
static double calls_per_s(add_fn fn, const struct calendar *c, const int64_t *starts, int64_t s)
{
    volatile int64_t sink = 0;
    uint64_t n = 0;
    double t0 = now_s(), t;
    do {
        int64_t acc = 0, due;
        for (int i = 0; i < 1 << 16; i++) {
            if (fn(c, starts[i & (N_STARTS - 1)], s, &due) != 0)
                abort();
            acc += due;
        }
        sink += acc;
        n += 1 << 16;
        t = now_s();
    } while (t - t0 < 0.25);
    (void)sink;
    return (double)n / (t - t0);
}

/* The official 2025-2027 holidays and make-up working days (2027 as a
 * plausible guess: the benchmark only needs a realistic density). */
static const char *const days[] = {
    "2025-01-01-", "2025-01-26+", "2025-01-28-", "2025-01-29-", "2025-01-30-", "2025-01-31-",
    "2025-02-01-", "2025-02-02-", "2025-02-03-", "2025-02-04-", "2025-02-08+", "2025-04-04-",
    "2025-04-05-", "2025-04-06-", "2025-04-27+", "2025-05-01-", "2025-05-02-", "2025-05-03-",
    "2025-05-04-", "2025-05-05-", "2025-05-31-", "2025-06-01-", "2025-06-02-", "2025-09-28+",
    "2025-10-01-", "2025-10-02-", "2025-10-03-", "2025-10-04-", "2025-10-05-", "2025-10-06-",
    "2025-10-07-", "2025-10-08-", "2025-10-11+", "2026-01-01-", "2026-01-02-", "2026-01-03-",
    "2026-01-04+", "2026-02-14+", "2026-02-15-", "2026-02-16-", "2026-02-17-", "2026-02-18-",
    "2026-02-19-", "2026-02-20-", "2026-02-21-", "2026-02-22-", "2026-02-23-", "2026-02-28+",
    "2026-04-04-", "2026-04-05-", "2026-04-06-", "2026-05-01-", "2026-05-02-", "2026-05-03-",
    "2026-05-04-", "2026-05-05-", "2026-05-09+", "2026-06-19-", "2026-06-20-", "2026-06-21-",
    "2026-09-20+", "2026-09-25-", "2026-09-26-", "2026-09-27-", "2026-10-01-", "2026-10-02-",
    "2026-10-03-", "2026-10-04-", "2026-10-05-", "2026-10-06-", "2026-10-07-", "2026-10-10+",
    "2027-01-01-", "2027-02-06-", "2027-02-07-", "2027-02-08-", "2027-02-09-", "2027-02-10-",
    "2027-02-11-", "2027-02-12-", "2027-02-20+", "2027-10-01-", "2027-10-04-", "2027-10-05-",
    "2027-10-06-", "2027-10-07-", "2027-10-09+",
};

int main(void)
{
    struct calendar *c = calendar_new(480);
    if (c == NULL)
        return 1;
    for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
        int y, m, d;
        char sign;
        if (sscanf(days[i], "%d-%d-%d%c", &y, &m, &d, &sign) != 4 ||
            calendar_set_day(c, y, m, d, sign == '+') != 0) {
            fprintf(stderr, "bad day %s\n", days[i]);
            return 1;
        }
    }

    /* Starts spread over 2026 at any time of day, weekends and holidays too. */
    static int64_t starts[N_STARTS];
    uint64_t x = 88172645463325252u;
    const int64_t y2026 = INT64_C(1767196800000); /* 2026-01-01 00:00 +08:00 */
    for (int i = 0; i < N_STARTS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        starts[i] = y2026 + (int64_t)(x % (UINT64_C(365) * 86400000));
    }

    static const struct {
        const char *name;
        int64_t s;
    } limits[] = {{"2 h", 2 * HOUR_S}, {"1 WD", WD_S}, {"15 WD", 15 * WD_S}};

    printf("%-7s %16s %10s %16s %10s %8s\n", "limit", "calendar_add/s", "ns/call", "wall add/s",
           "ns/call", "ratio");
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        double cal = calls_per_s(calendar_add, c, starts, limits[i].s);
        double wall = calls_per_s(wall_add, c, starts, limits[i].s);
        printf("%-7s %16.0f %10.1f %16.0f %10.1f %7.1fx\n", limits[i].name, cal, 1e9 / cal, wall,
               1e9 / wall, wall / cal);
    }
    calendar_free(c);
    return 0;
}
