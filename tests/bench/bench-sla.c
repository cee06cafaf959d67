/* bench-sla.c - gd-sla's deadline table at a million deadlines: memory, insert, lateness, vs a
 * heap.
 *
 *   bench-sla [N] [DUE] [TICK_MS]     defaults 1000000 100000 10
 *
 * 1. inserts N live deadlines (due within 30 days) into a deadline table:
 *    time, bytes per deadline (allocated, and the process RSS delta);
 * 2. the same entries in a binary heap with position tracking (the usual
 *    alternative): insert time and bytes, and random cancels in both;
 * 3. a table of N deadlines of which DUE fall due over the next 3 s of
 *    wall time, fired by the real libuv loop through gd-sla's ticker:
 *    lateness p50/p99/max (fire time minus due time) and early firings.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "deadline.h"
#include "ticker.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * 4; /* 4 KiB pages on the target machines */
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- baseline: binary min-heap of entries with their heap position ---- */

struct heap_entry {
    uint64_t incident_id;
    int64_t due_at;
    int64_t expires;
    uint32_t version;
    uint32_t pos; /* index in heap[] */
    uint8_t kind;
    uint8_t flags;
};

struct heap {
    struct heap_entry *entries; /* storage, one per deadline */
    uint32_t *heap;             /* entry indexes ordered as a heap on expires */
    uint32_t n, cap;
};

static void heap_swap(struct heap *h, uint32_t a, uint32_t b)
{
    uint32_t t = h->heap[a];
    h->heap[a] = h->heap[b];
    h->heap[b] = t;
    h->entries[h->heap[a]].pos = a;
    h->entries[h->heap[b]].pos = b;
}

static void heap_up(struct heap *h, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->entries[h->heap[p]].expires <= h->entries[h->heap[i]].expires)
            break;
        heap_swap(h, i, p);
        i = p;
    }
}

static void heap_down(struct heap *h, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->entries[h->heap[l]].expires < h->entries[h->heap[m]].expires)
            m = l;
        if (r < h->n && h->entries[h->heap[r]].expires < h->entries[h->heap[m]].expires)
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static int heap_push(struct heap *h, uint64_t id, uint32_t version, int64_t warn, int64_t due)
{
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 1024;
        struct heap_entry *e = realloc(h->entries, cap * sizeof(*e));
        if (e == NULL)
            return -1;
        h->entries = e;
        uint32_t *x = realloc(h->heap, cap * sizeof(*x));
        if (x == NULL)
            return -1;
        h->heap = x;
        h->cap = cap;
    }
    struct heap_entry *e = &h->entries[h->n];
    *e = (struct heap_entry){id, due, warn ? warn : due, version, h->n, 0, 0};
    h->heap[h->n] = h->n;
    h->n++;
    heap_up(h, h->n - 1);
    return 0;
}

/* Removes the entry at heap position i (storage is not compacted). */
static void heap_remove(struct heap *h, uint32_t i)
{
    h->n--;
    if (i == h->n)
        return;
    heap_swap(h, i, h->n);
    heap_up(h, i);
    heap_down(h, i);
}

static void count_fire(struct wheel_timer *t, void *arg)
{
    (void)t;
    (void)arg;
}

/* ---- lateness run ---- */

struct lateness {
    int64_t *late_us;
    uint32_t n, want;
    uint32_t early;
    struct ticker *ticker;
};

static void on_fire(struct deadline *d, enum deadline_event ev, void *arg)
{
    struct lateness *l = arg;
    if (ev != DEADLINE_EV_ESCALATE)
        return;
    int64_t late = wall_us() - d->due_at * 1000;
    if (late < 0)
        l->early++;
    if (l->n < l->want)
        l->late_us[l->n++] = late;
    if (l->n == l->want)
        uv_stop(l->ticker->timer.loop);
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
    uint32_t due_n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 100000;
    uint32_t tick = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 10;
    if (n == 0 || due_n > n || tick == 0) {
        fprintf(stderr, "usage: bench-sla [N] [DUE <= N] [TICK_MS]\n");
        return 2;
    }
    const int64_t day = 86400000;
    int64_t now = ticker_wall_ms();
    uint64_t seed = 0x5eed;

    /* 1. the deadline table */
    long rss0 = rss_kib();
    struct deadline_table t;
    if (deadline_table_init(&t, tick, now) < 0)
        return 1;
    double t0 = mono_s();
    for (uint32_t i = 0; i < n; i++) {
        int64_t due = now + 3600000 + (int64_t)(next_rand(&seed) % (30 * day));
        if (deadline_table_upsert(&t, 1000 + i, (uint8_t)(i & 1), 1, due - (due - now) / 5, due) !=
            DEADLINE_ADDED)
            return 1;
    }
    double wheel_insert = mono_s() - t0;
    long rss1 = rss_kib();
    size_t wheel_bytes = deadline_table_memory(&t);
    printf("deadline table: %" PRIu32 " deadlines, tick %" PRIu32 " ms\n", n, tick);
    printf("  insert            %8.3f s   %6.0f ns/deadline\n", wheel_insert,
           wheel_insert * 1e9 / n);
    printf("  allocated         %8.1f MiB  %6.1f bytes/deadline (entry %zu + index)\n",
           wheel_bytes / 1048576.0, (double)wheel_bytes / n, sizeof(struct deadline));
    printf("  RSS delta         %8.1f MiB  %6.1f bytes/deadline (process RSS %.1f MiB)\n",
           (rss1 - rss0) / 1024.0, (rss1 - rss0) * 1024.0 / n, rss1 / 1024.0);

    /* 2. the heap baseline with the same entries */
    seed = 0x5eed;
    struct heap h = {0};
    t0 = mono_s();
    for (uint32_t i = 0; i < n; i++) {
        int64_t due = now + 3600000 + (int64_t)(next_rand(&seed) % (30 * day));
        if (heap_push(&h, 1000 + i, 1, due - (due - now) / 5, due) < 0)
            return 1;
    }
    double heap_insert = mono_s() - t0;
    size_t heap_bytes = (size_t)h.cap * (sizeof(*h.entries) + sizeof(*h.heap));
    size_t index_bytes = ((size_t)t.index_mask + 1) * sizeof(*t.index);
    printf("binary heap (baseline, same entries, position-tracked):\n");
    printf("  insert            %8.3f s   %6.0f ns/deadline   wheel/heap %.2f\n", heap_insert,
           heap_insert * 1e9 / n, wheel_insert / heap_insert);
    printf("  allocated         %8.1f MiB  %6.1f bytes/deadline (+ %.1f for an (incident, kind) "
           "index like the table's)   wheel/heap %.2f\n",
           heap_bytes / 1048576.0, (double)heap_bytes / n, (double)index_bytes / n,
           (double)wheel_bytes / (double)(heap_bytes + index_bytes));

    /* the wheel alone (no index, no chunks): the structure the heap replaces */
    struct wheel *w = malloc(sizeof(*w));
    struct wheel_timer *timers = calloc(n, sizeof(*timers));
    if (w == NULL || timers == NULL)
        return 1;
    wheel_init(w, tick, now);
    seed = 0x5eed;
    t0 = mono_s();
    for (uint32_t i = 0; i < n; i++) {
        int64_t due = now + 3600000 + (int64_t)(next_rand(&seed) % (30 * day));
        wheel_add(w, &timers[i], due - (due - now) / 5);
    }
    double bare_insert = mono_s() - t0;
    printf("wheel alone (intrusive timers in an array, no index):\n"
           "  insert            %8.3f s   %6.0f ns/timer   wheel/heap %.2f\n",
           bare_insert, bare_insert * 1e9 / n, bare_insert / heap_insert);
    /* firing the earliest tenth: wheel advance vs heap pops */
    uint32_t tenth = n / 10;
    int64_t horizon = 0;
    {
        int64_t *exp = malloc((size_t)n * sizeof(*exp));
        if (exp == NULL)
            return 1;
        for (uint32_t i = 0; i < n; i++)
            exp[i] = timers[i].expires;
        qsort(exp, n, sizeof(*exp), cmp_i64);
        horizon = exp[tenth - 1];
        free(exp);
    }
    t0 = mono_s();
    uint64_t fired = wheel_advance(w, horizon + tick, count_fire, NULL);
    double wheel_fire = mono_s() - t0;
    t0 = mono_s();
    uint64_t popped = 0;
    while (h.n > 0 && h.entries[h.heap[0]].expires <= horizon + tick) {
        heap_remove(&h, 0);
        popped++;
    }
    double heap_fire = mono_s() - t0;
    printf("fire the earliest tenth (%" PRIu64 " wheel, %" PRIu64 " heap):\n"
           "  wheel %.0f ns, heap %.0f ns per firing   wheel/heap %.2f\n",
           fired, popped, wheel_fire * 1e9 / (double)fired, heap_fire * 1e9 / (double)popped,
           (wheel_fire / (double)fired) / (heap_fire / (double)popped));
    free(timers);
    free(w);

    /* cancels: 10% at random (CLEAR of a signed incident) */
    uint32_t cancels = n / 10;
    t0 = mono_s();
    seed = 77;
    uint32_t cleared = 0;
    for (uint32_t i = 0; i < cancels; i++) {
        uint32_t k = (uint32_t)(next_rand(&seed) % n);
        cleared += deadline_table_clear(&t, 1000 + k, (uint8_t)(k & 1), 1) == DEADLINE_REMOVED;
    }
    double wheel_cancel = mono_s() - t0;
    t0 = mono_s();
    seed = 77;
    for (uint32_t i = 0; i < cancels && h.n > 0; i++) {
        uint32_t k = (uint32_t)(next_rand(&seed) % h.n);
        heap_remove(&h, k);
    }
    double heap_cancel = mono_s() - t0;
    printf("cancel %" PRIu32 " at random (table incl. index lookup vs heap by position):\n"
           "  table %.0f ns, heap %.0f ns per cancel   table/heap %.2f\n",
           cleared, wheel_cancel * 1e9 / cancels, heap_cancel * 1e9 / cancels,
           wheel_cancel / heap_cancel);
    free(h.entries);
    free(h.heap);
    deadline_table_fini(&t);

    /* 3. lateness with the real loop */
    uv_loop_t *loop = uv_default_loop();
    struct ticker k;
    struct lateness l = {calloc(due_n, sizeof(int64_t)), 0, due_n, 0, &k};
    if (l.late_us == NULL || deadline_table_init(&t, tick, ticker_wall_ms()) < 0)
        return 1;
    now = ticker_wall_ms();
    seed = 0xfeed;
    for (uint32_t i = 0; i < n; i++) {
        int64_t due = i < due_n ? now + 500 + (int64_t)(next_rand(&seed) % 3000)
                                : now + 3600000 + (int64_t)(next_rand(&seed) % (30 * day));
        deadline_table_upsert(&t, 1000 + i, 0, 1, 0, due);
    }
    long rss2 = rss_kib();
    ticker_init(&k, loop, &t, on_fire, &l);
    ticker_kick(&k);
    double started = mono_s();
    uv_run(loop, UV_RUN_DEFAULT);
    double ran = mono_s() - started;
    ticker_close(&k, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    qsort(l.late_us, l.n, sizeof(*l.late_us), cmp_i64);
    printf("lateness: %" PRIu32 " of %" PRIu32 " deadlines due over 3 s, fired by the uv loop in "
           "%.2f s (RSS %.1f MiB)\n",
           l.n, n, ran, rss2 / 1024.0);
    if (l.n) {
        printf("  p50 %.2f ms   p99 %.2f ms   max %.2f ms   early %" PRIu32
               "   (bound: tick %" PRIu32 " ms + loop latency)\n",
               l.late_us[l.n / 2] / 1000.0, l.late_us[(size_t)l.n * 99 / 100] / 1000.0,
               l.late_us[l.n - 1] / 1000.0, l.early, tick);
    }
    free(l.late_us);
    deadline_table_fini(&t);
    uv_loop_close(loop);
    return l.early == 0 ? 0 : 1;
}
