/* test-ratelimit.c - specification tests for the token buckets (broker/ratelimit.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

static void test_a_new_bucket_allows_its_burst_at_once(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 3, 1, 1000, 5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ratelimit_wait(&rl, 5000), 0);
        ratelimit_take(&rl);
    }
    assert_int_equal(ratelimit_wait(&rl, 5000), 1000);
}

static void test_the_wait_shrinks_as_time_passes_and_a_token_comes_back(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 1, 1, 200, 0);
    ratelimit_take(&rl);
    assert_int_equal(ratelimit_wait(&rl, 50), 150);
    assert_int_equal(ratelimit_wait(&rl, 199), 1);
    assert_int_equal(ratelimit_wait(&rl, 200), 0);
}

static void test_a_refused_wait_takes_nothing(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 1, 1, 100, 0);
    ratelimit_take(&rl);
    for (int i = 0; i < 10; i++)
        assert_true(ratelimit_wait(&rl, 10) > 0);
    assert_int_equal(ratelimit_wait(&rl, 100), 0);
}

static void test_an_idle_bucket_never_holds_more_than_its_burst(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 2, 1, 10, 0);
    assert_int_equal(ratelimit_wait(&rl, 1000000), 0);
    ratelimit_take(&rl);
    ratelimit_take(&rl);
    assert_int_equal(ratelimit_wait(&rl, 1000000), 10);
}

static void test_the_sustained_rate_is_one_per_interval(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 20, 20, 1000, 0); /* 20 at once, then 20 a second */
    int taken = 0;
    for (uint64_t now = 0; now < 10000; now++)
        if (ratelimit_wait(&rl, now) == 0) {
            ratelimit_take(&rl);
            taken++;
        }
    assert_int_equal(taken, 20 + 199); /* the burst, then one every 50 ms */
}

static void test_a_rate_that_does_not_divide_a_second_keeps_its_pace(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 1, 3, 1000, 0); /* 3 a second: one every 333.3 ms */
    ratelimit_take(&rl);
    assert_int_equal(ratelimit_wait(&rl, 0), 334);
    assert_int_equal(ratelimit_wait(&rl, 333), 1);
    assert_int_equal(ratelimit_wait(&rl, 334), 0);
    int taken = 0;
    for (uint64_t now = 334; now < 60334; now++)
        if (ratelimit_wait(&rl, now) == 0) {
            ratelimit_take(&rl);
            taken++;
        }
    assert_int_equal(taken, 180);
}

static void test_full_tells_when_the_bucket_may_be_forgotten(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 3, 1, 100, 0);
    assert_true(ratelimit_full(&rl, 0));
    ratelimit_take(&rl);
    assert_false(ratelimit_full(&rl, 99));
    assert_true(ratelimit_full(&rl, 100));
}

static void test_a_clock_that_stands_still_gains_nothing(void **state)
{
    (void)state;
    struct ratelimit rl;
    ratelimit_init(&rl, 1, 1, 100, 500);
    ratelimit_take(&rl);
    assert_int_equal(ratelimit_wait(&rl, 400), 100); /* earlier than at_ms: no gain */
    assert_int_equal(ratelimit_wait(&rl, 500), 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_new_bucket_allows_its_burst_at_once),
        cmocka_unit_test(test_the_wait_shrinks_as_time_passes_and_a_token_comes_back),
        cmocka_unit_test(test_a_refused_wait_takes_nothing),
        cmocka_unit_test(test_an_idle_bucket_never_holds_more_than_its_burst),
        cmocka_unit_test(test_the_sustained_rate_is_one_per_interval),
        cmocka_unit_test(test_a_rate_that_does_not_divide_a_second_keeps_its_pace),
        cmocka_unit_test(test_full_tells_when_the_bucket_may_be_forgotten),
        cmocka_unit_test(test_a_clock_that_stands_still_gains_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
