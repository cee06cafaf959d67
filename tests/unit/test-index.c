/* test-index.c - specification tests for the open-addressing hash index (broker/index.h).
 *
 * calloc is wrapped (-Wl,--wrap=calloc) so that a test can make the
 * index's next allocation fail.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "index.h"

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static int callocs_until_failure = -1; /* -1: never fail */

void *__wrap_calloc(size_t n, size_t size)
{
    if (callocs_until_failure == 0)
        return NULL;
    if (callocs_until_failure > 0)
        callocs_until_failure--;
    return __real_calloc(n, size);
}

/* An entry keyed by a number; `hash` is what it was added under. */
struct item {
    uint64_t key;
    uint64_t hash;
};

static bool has_key(const void *entry, const void *key)
{
    return ((const struct item *)entry)->key == *(const uint64_t *)key;
}

static struct item *find(const struct index *ix, const struct item *it)
{
    return index_find(ix, it->hash, has_key, &it->key);
}

/* The index's own promise: every entry is reachable from its home slot
 * without crossing an empty slot, and it is no more than 5/8 full. */
static void assert_well_formed(const struct index *ix)
{
    if (!ix->slots) {
        assert_int_equal(ix->n, 0);
        return;
    }
    size_t n = 0;
    for (size_t j = 0; j <= ix->mask; j++) {
        if (!ix->slots[j].entry)
            continue;
        n++;
        for (size_t i = (size_t)ix->slots[j].hash & ix->mask; i != j; i = (i + 1) & ix->mask)
            assert_non_null(ix->slots[i].entry);
    }
    assert_int_equal(n, ix->n);
    assert_true(ix->n * 8 <= (ix->mask + 1) * 5);
}

/* A small deterministic generator (xorshift64*), for repeatable runs. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dULL;
}

static void test_an_empty_index_finds_nothing_and_holds_no_memory(void **state)
{
    (void)state;
    struct index ix = {0};
    struct item a = {.key = 1, .hash = index_hash_u64(1)};
    assert_null(find(&ix, &a));
    assert_false(index_remove(&ix, a.hash, &a));
    assert_int_equal(index_count(&ix), 0);
    index_free(&ix);
    assert_null(ix.slots);
}

static void test_many_entries_are_found_through_growth(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct item *items = malloc(N * sizeof(*items));
    assert_non_null(items);
    struct index ix = {0};
    for (uint64_t i = 0; i < N; i++) {
        items[i] = (struct item){.key = i + 1, .hash = index_hash_u64(i + 1)};
        assert_int_equal(index_add(&ix, items[i].hash, &items[i]), 0);
        if ((i & (i + 1)) == 0) /* at each power of two */
            assert_well_formed(&ix);
    }
    assert_int_equal(index_count(&ix), N);
    assert_well_formed(&ix);
    for (uint64_t i = 0; i < N; i++)
        assert_ptr_equal(find(&ix, &items[i]), &items[i]);
    index_free(&ix);
    free(items);
}

static void test_a_missing_key_is_not_found(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct item items[N];
    struct index ix = {0};
    for (uint64_t i = 0; i < N; i++) {
        items[i] = (struct item){.key = 2 * i, .hash = index_hash_u64(2 * i)};
        assert_int_equal(index_add(&ix, items[i].hash, &items[i]), 0);
    }
    for (uint64_t k = 1; k < 2 * N; k += 2) {
        struct item absent = {.key = k, .hash = index_hash_u64(k)};
        assert_null(find(&ix, &absent));
        assert_false(index_remove(&ix, absent.hash, &absent));
    }
    assert_int_equal(index_count(&ix), N);
    index_free(&ix);
}

static void test_entries_under_one_hash_are_told_apart_by_the_match(void **state)
{
    (void)state;
    struct item items[5];
    struct index ix = {0};
    for (uint64_t i = 0; i < 5; i++) {
        items[i] = (struct item){.key = 10 + i, .hash = 42};
        assert_int_equal(index_add(&ix, 42, &items[i]), 0);
    }
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(find(&ix, &items[i]), &items[i]);
    struct item stranger = {.key = 99, .hash = 42};
    assert_null(find(&ix, &stranger));
    assert_true(index_remove(&ix, 42, &items[2]));
    assert_null(find(&ix, &items[2]));
    for (int i = 0; i < 5; i++)
        if (i != 2)
            assert_ptr_equal(find(&ix, &items[i]), &items[i]);
    index_free(&ix);
}

/* Hashes chosen by hand for 16 slots: a run that wraps from the last slot
 * to the first, with entries whose home is before, at and after the
 * removed one. */
static void test_removal_shifts_back_across_the_end_of_the_slots(void **state)
{
    (void)state;
    const uint64_t homes[] = {13, 14, 14, 15, 13, 0, 1};
    enum { N = sizeof(homes) / sizeof(homes[0]) };
    for (size_t victim = 0; victim < N; victim++) {
        struct item items[N];
        struct index ix = {0};
        for (size_t i = 0; i < N; i++) {
            items[i] = (struct item){.key = i, .hash = homes[i] | (i << 32)};
            assert_int_equal(index_add(&ix, items[i].hash, &items[i]), 0);
        }
        assert_int_equal(ix.mask, 15);
        assert_true(index_remove(&ix, items[victim].hash, &items[victim]));
        assert_well_formed(&ix);
        assert_null(find(&ix, &items[victim]));
        for (size_t i = 0; i < N; i++)
            if (i != victim)
                assert_ptr_equal(find(&ix, &items[i]), &items[i]);
        index_free(&ix);
    }
}

static void test_removals_between_adds_keep_every_other_entry_reachable(void **state)
{
    (void)state;
    enum { N = 20000, ROUNDS = 200000 };
    struct item *items = malloc(N * sizeof(*items));
    bool *in = calloc(N, sizeof(*in));
    assert_non_null(items);
    assert_non_null(in);
    struct index ix = {0};
    size_t n = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (uint64_t i = 0; i < N; i++) {
        /* few distinct low bits: long runs, where the shifting is tested */
        uint64_t h = index_hash_u64(i);
        items[i] = (struct item){.key = i, .hash = (i % 3 == 0) ? h & ~(uint64_t)0x3f : h};
    }
    for (int r = 0; r < ROUNDS; r++) {
        size_t i = (size_t)(next_random(&rng) % N);
        if (in[i]) {
            assert_true(index_remove(&ix, items[i].hash, &items[i]));
            in[i] = false;
            n--;
        } else {
            assert_int_equal(index_add(&ix, items[i].hash, &items[i]), 0);
            in[i] = true;
            n++;
        }
        if (r % 20000 == 0)
            assert_well_formed(&ix);
    }
    assert_int_equal(index_count(&ix), n);
    assert_well_formed(&ix);
    for (size_t i = 0; i < N; i++) {
        if (in[i])
            assert_ptr_equal(find(&ix, &items[i]), &items[i]);
        else
            assert_null(find(&ix, &items[i]));
    }
    index_free(&ix);
    free(in);
    free(items);
}

static void test_out_of_memory_leaves_the_index_as_it_was(void **state)
{
    (void)state;
    struct item items[11];
    struct index ix = {0};
    callocs_until_failure = 0;
    items[0] = (struct item){.key = 0, .hash = index_hash_u64(0)};
    assert_int_equal(index_add(&ix, items[0].hash, &items[0]), -ENOMEM);
    assert_null(ix.slots);
    callocs_until_failure = -1;
    /* ten entries fill 16 slots to 5/8: the eleventh must grow them */
    for (uint64_t i = 0; i < 10; i++) {
        items[i] = (struct item){.key = i, .hash = index_hash_u64(i)};
        assert_int_equal(index_add(&ix, items[i].hash, &items[i]), 0);
    }
    assert_int_equal(ix.mask, 15);
    items[10] = (struct item){.key = 10, .hash = index_hash_u64(10)};
    callocs_until_failure = 0;
    assert_int_equal(index_add(&ix, items[10].hash, &items[10]), -ENOMEM);
    callocs_until_failure = -1;
    assert_int_equal(index_count(&ix), 10);
    assert_int_equal(ix.mask, 15);
    assert_null(find(&ix, &items[10]));
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(find(&ix, &items[i]), &items[i]);
    assert_int_equal(index_add(&ix, items[10].hash, &items[10]), 0);
    assert_int_equal(ix.mask, 31);
    assert_well_formed(&ix);
    index_free(&ix);
}

static void test_the_id_hash_gives_sequential_ids_spread_out_home_slots(void **state)
{
    (void)state;
    enum { SLOTS = 1024, N = 640 };
    unsigned used[SLOTS] = {0};
    size_t distinct = 0;
    for (uint64_t id = 1; id <= N; id++)
        distinct += used[index_hash_u64(id) & (SLOTS - 1)]++ == 0;
    /* 640 balls in 1024 bins leave about 477 bins used; a poor mix far fewer */
    assert_true(distinct > 430);
    assert_true(index_hash_u64(1) != index_hash_u64(2));
}

static void test_the_bytes_hash_depends_on_every_byte_and_the_length(void **state)
{
    (void)state;
    const char key[] = "hotline\x1f"
                       "2024-000123";
    size_t len = sizeof(key) - 1;
    uint64_t h = index_hash_bytes(key, len);
    assert_int_equal(h, index_hash_bytes(key, len)); /* no seed, no state */
    char other[sizeof(key)];
    for (size_t i = 0; i < len; i++) {
        memcpy(other, key, sizeof(key));
        other[i] ^= 1;
        assert_true(index_hash_bytes(other, len) != h);
    }
    for (size_t n = 0; n < len; n++)
        assert_true(index_hash_bytes(key, n) != h);
    const char zeros[16] = {0};
    assert_true(index_hash_bytes(zeros, 3) != index_hash_bytes(zeros, 4));
    assert_true(index_hash_bytes(zeros, 8) != index_hash_bytes(zeros, 9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_empty_index_finds_nothing_and_holds_no_memory),
        cmocka_unit_test(test_many_entries_are_found_through_growth),
        cmocka_unit_test(test_a_missing_key_is_not_found),
        cmocka_unit_test(test_entries_under_one_hash_are_told_apart_by_the_match),
        cmocka_unit_test(test_removal_shifts_back_across_the_end_of_the_slots),
        cmocka_unit_test(test_removals_between_adds_keep_every_other_entry_reachable),
        cmocka_unit_test(test_out_of_memory_leaves_the_index_as_it_was),
        cmocka_unit_test(test_the_id_hash_gives_sequential_ids_spread_out_home_slots),
        cmocka_unit_test(test_the_bytes_hash_depends_on_every_byte_and_the_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
