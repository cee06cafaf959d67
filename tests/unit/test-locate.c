/* test-locate.c - specification tests for the address key and the empty locator (broker/locate.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "locate.h"
#include "org.h"

/* gd_address_norm of `in`, as a NUL-terminated string in buf. */
static int norm(const char *in, char *buf, size_t cap)
{
    size_t n = 0;
    int rc = locate_address_norm(in, strlen(in), buf, cap - 1, &n);
    buf[rc == 0 ? n : 0] = '\0';
    return rc;
}

static void assert_norm(const char *in, const char *want)
{
    char buf[LOCATE_MAX_NORM + 1];
    assert_int_equal(norm(in, buf, sizeof(buf)), 0);
    if (strcmp(buf, want) != 0)
        fail_msg("norm(\"%s\") = \"%s\", want \"%s\"", in, buf, want);
}

static void test_full_width_digits_and_letters_become_ascii(void **state)
{
    (void)state;
    assert_norm("龙洲大道１２３号", "龙洲大道123号");
    assert_norm("ＡＢＣ路", "abc路");
}

static void test_every_kind_of_blank_is_removed(void **state)
{
    (void)state;
    assert_norm(" Longzhou  Ave\t123\n", "longzhouave123");
    assert_norm("龙洲\u3000大道\u00a0123", "龙洲大道123"); /* ideographic, no-break */
    assert_norm("a\u2028b\u1680c\u2009d", "abcd");         /* line sep., ogham, thin */
}

static void test_case_is_folded_to_lower_case_everywhere(void **state)
{
    (void)state;
    assert_norm("LongZHOU", "longzhou");
    assert_norm("ΑΘΗΝΑ", "αθηνα");
    assert_norm("УЛИЦА", "улица");
    assert_norm("\u212a", "k"); /* KELVIN SIGN: NFKC K */
}

static void test_compatibility_forms_are_composed_and_expanded(void **state)
{
    (void)state;
    assert_norm("Cafe\u0301", "caf\u00e9");
    assert_norm("\u216b", "xii");   /* ROMAN NUMERAL TWELVE */
    assert_norm("\u2460号", "1号"); /* CIRCLED DIGIT ONE */
    assert_norm("\u337f", "株式会社");
}

static void test_bad_utf8_and_overlong_results_are_refused(void **state)
{
    (void)state;
    char buf[16];
    size_t n = 99;
    assert_int_equal(locate_address_norm("\xc3\x28", 2, buf, sizeof(buf), &n), -EINVAL);
    assert_int_equal(locate_address_norm("\xed\xa0\x80", 3, buf, sizeof(buf), &n), -EINVAL);
    assert_int_equal(locate_address_norm("abcdefghijklmnopq", 17, buf, sizeof(buf), &n), -E2BIG);
    assert_int_equal(locate_address_norm("\u337f", 3, buf, 11, &n), -E2BIG); /* 12 bytes */
    assert_int_equal(n, 99); /* untouched on failure */
    assert_int_equal(locate_address_norm("", 0, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 0);
}

static void assert_split(const char *normed, const char *road, const char *number)
{
    size_t r = 0, k = 0;
    assert_int_equal(locate_address_split(normed, strlen(normed), &r, &k), 0);
    if (r != strlen(road) || memcmp(normed, road, r) != 0 || k != strlen(number) ||
        memcmp(normed + r, number, k) != 0)
        fail_msg("split(\"%s\") = \"%.*s\" / \"%.*s\", want \"%s\" / \"%s\"", normed, (int)r,
                 normed, (int)k, normed + r, road, number);
}

static void test_number_is_the_last_run_of_digits_and_the_road_what_precedes_it(void **state)
{
    (void)state;
    assert_split("龙洲大道123号", "龙洲大道", "123");
    assert_split("longzhouave123", "longzhouave", "123");
    assert_split("longzhouave123hao", "longzhouave", "123");
    assert_split("人民路2段45号", "人民路2段", "45");
    assert_split("龙洲大道123号附近", "龙洲大道", "123");
    assert_split("a007", "a", "007");
}

static void test_an_address_without_road_or_number_has_no_key(void **state)
{
    (void)state;
    size_t r, k;
    assert_int_equal(locate_address_split("123号", strlen("123号"), &r, &k), -ENOENT);
    assert_int_equal(locate_address_split("龙洲大道", strlen("龙洲大道"), &r, &k), -ENOENT);
    assert_int_equal(locate_address_split("", 0, &r, &k), -ENOENT);
}

static void test_method_names_round_trip(void **state)
{
    (void)state;
    for (int m = LOCATE_NONE; m <= LOCATE_ADDRESS; m++)
        assert_int_equal(locate_method_parse(locate_method_name((enum locate_method)m)), m);
    assert_string_equal(locate_method_name(LOCATE_POSITION), "position");
    assert_int_equal(locate_method_parse("Position"), -1);
}

/* Before any load: positions are outside the grids, addresses unmatched,
 * a unit code unknown, and nothing given is no reason at all. */
static void test_empty_locator_places_nothing_and_says_why(void **state)
{
    (void)state;
    struct locate *l = NULL;
    struct locate_limits lim = {.max_vertices = 100, .max_addresses = 10};
    assert_int_equal(locate_new(&l, &lim), 0);
    struct org org = {0};
    struct locate_result r;
    struct gd_location where = {.has_coords = true, .lat = 29.4, .lon = 106.5};
    locate_submit(l, &org, &where, &r);
    assert_null(r.unit);
    assert_int_equal(r.by, LOCATE_NONE);
    assert_string_equal(r.reason, LOCATE_OUTSIDE_GRIDS);

    where = (struct gd_location){.address = GD_STR("龙洲大道123号")};
    locate_submit(l, &org, &where, &r);
    assert_string_equal(r.reason, LOCATE_ADDRESS_UNMATCHED);

    where = (struct gd_location){.unit = GD_STR("500113001001001")};
    locate_submit(l, &org, &where, &r);
    assert_string_equal(r.reason, LOCATE_UNKNOWN_UNIT);

    where = (struct gd_location){0};
    locate_submit(l, &org, &where, &r);
    assert_null(r.reason);
    assert_null(locate_point(l, 29.4, 106.5));
    struct locate_stats st;
    locate_stats(l, &st);
    assert_int_equal(st.grids + st.micro_grids + st.addresses, 0);
    locate_free(l);
    locate_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_width_digits_and_letters_become_ascii),
        cmocka_unit_test(test_every_kind_of_blank_is_removed),
        cmocka_unit_test(test_case_is_folded_to_lower_case_everywhere),
        cmocka_unit_test(test_compatibility_forms_are_composed_and_expanded),
        cmocka_unit_test(test_bad_utf8_and_overlong_results_are_refused),
        cmocka_unit_test(test_number_is_the_last_run_of_digits_and_the_road_what_precedes_it),
        cmocka_unit_test(test_an_address_without_road_or_number_has_no_key),
        cmocka_unit_test(test_method_names_round_trip),
        cmocka_unit_test(test_empty_locator_places_nothing_and_says_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
