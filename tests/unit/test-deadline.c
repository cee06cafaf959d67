/* test-deadline.c - specification tests for the deadline rules (broker/deadline.h): pure, the instant passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "deadline.h"
#include "district.h"

#define T0 1700000000000LL

static struct incident road(struct broker *b, enum gd_state state)
{
    return (struct incident){.category = org_category(&b->org, "road", 4),
                             .priority = GD_PRIO_NORMAL,
                             .state = state,
                             .durable = true};
}

static void test_clocks_start_from_the_instant_given_with_the_warning_at_its_percentage(void **state)
{
    struct broker *b = *state;
    struct incident inc = road(b, GD_ST_QUEUED);
    deadline_start(b, &inc, true, true, T0);
    assert_int_equal(inc.sign_due, T0 + 3600000);
    assert_int_equal(inc.sign_warn, T0 + 2880000);
    assert_int_equal(inc.resolve_due, T0 + 86400000);
    assert_int_equal(inc.resolve_warn, T0 + 69120000);
}

static void test_a_new_sign_clock_leaves_the_resolve_clock_and_forgets_the_sign_warning(void **state)
{
    struct broker *b = *state;
    struct incident inc = road(b, GD_ST_QUEUED);
    deadline_start(b, &inc, true, true, T0);
    inc.warned = (1u << GD_DL_SIGN) | (1u << GD_DL_RESOLVE);
    deadline_start(b, &inc, true, false, T0 + 1000);
    assert_int_equal(inc.sign_due, T0 + 1000 + 3600000);
    assert_int_equal(inc.resolve_due, T0 + 86400000);
    assert_int_equal(inc.warned, 1u << GD_DL_RESOLVE);
}

static void test_an_unknown_category_has_no_deadlines(void **state)
{
    struct broker *b = *state;
    struct incident inc = {.state = GD_ST_QUEUED, .durable = true};
    deadline_start(b, &inc, true, true, T0);
    assert_int_equal(inc.sign_due, 0);
    assert_int_equal(inc.resolve_due, 0);
    assert_false(deadline_live(&inc));
    assert_int_equal(deadline_overdue_from(&inc), INT64_MAX);
}

static void test_an_extension_moves_the_resolve_deadline_and_its_warning(void **state)
{
    struct broker *b = *state;
    struct incident inc = road(b, GD_ST_SIGNED);
    deadline_start(b, &inc, true, true, T0);
    deadline_extend(b, &inc, T0 + 10000000, T0);
    assert_int_equal(inc.resolve_due, T0 + 10000000);
    assert_int_equal(inc.resolve_warn, T0 + 8000000);
}

static void test_sign_for_applies_until_signed_resolve_while_open(void **state)
{
    (void)state;
    assert_true(deadline_applies(GD_DL_SIGN, GD_ST_QUEUED, false, T0));
    assert_true(deadline_applies(GD_DL_SIGN, GD_ST_DELIVERED, false, T0));
    assert_false(deadline_applies(GD_DL_SIGN, GD_ST_SIGNED, false, T0));
    assert_true(deadline_applies(GD_DL_RESOLVE, GD_ST_IN_PROGRESS, false, T0));
    assert_false(deadline_applies(GD_DL_RESOLVE, GD_ST_RESOLVED, false, T0));
    assert_false(deadline_applies(GD_DL_RESOLVE, GD_ST_QUEUED, true, T0)); /* flagged */
    assert_false(deadline_applies(GD_DL_RESOLVE, GD_ST_QUEUED, false, 0));  /* none set */
}

static void test_overdue_from_the_earliest_deadline_that_applies(void **state)
{
    struct broker *b = *state;
    struct incident inc = road(b, GD_ST_QUEUED);
    deadline_start(b, &inc, true, true, T0);
    assert_int_equal(deadline_overdue_from(&inc), inc.sign_due);
    assert_false(deadline_overdue(&inc, inc.sign_due - 1));
    assert_true(deadline_overdue(&inc, inc.sign_due));
    inc.state = GD_ST_SIGNED; /* the sign-for deadline no longer applies */
    assert_int_equal(deadline_overdue_from(&inc), inc.resolve_due);
    inc.flagged = true; /* overdue at the top: whatever the time */
    assert_int_equal(deadline_overdue_from(&inc), INT64_MIN);
    inc.state = GD_ST_RESOLVED;
    assert_int_equal(deadline_overdue_from(&inc), INT64_MAX);
}

static void test_after_recovery_passed_warnings_count_as_given(void **state)
{
    struct broker *b = *state;
    struct incident inc = road(b, GD_ST_QUEUED);
    deadline_start(b, &inc, true, true, T0);
    deadline_recovered(b, &inc, inc.sign_warn);
    assert_int_equal(inc.warned, 1u << GD_DL_SIGN);
    assert_int_equal(inc.announced, (1u << GD_DL_SIGN) | (1u << GD_DL_RESOLVE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clocks_start_from_the_instant_given_with_the_warning_at_its_percentage, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_a_new_sign_clock_leaves_the_resolve_clock_and_forgets_the_sign_warning, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_an_unknown_category_has_no_deadlines, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_an_extension_moves_the_resolve_deadline_and_its_warning, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_sign_for_applies_until_signed_resolve_while_open, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_overdue_from_the_earliest_deadline_that_applies, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_after_recovery_passed_warnings_count_as_given, district_setup, district_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
