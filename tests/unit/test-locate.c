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

static void test_full_width_forms_become_ascii(void **state)
{
    (void)state;
    assert_norm("龙洲大道１２３号", "龙洲大道123号");
    assert_norm("ＡＢＣ路", "abc路");
    assert_norm("！～（＃）", "!~(#)");          /* U+FF01, U+FF5E: the ends of the range */
    assert_norm("\uff00\uff5f", "\uff00\uff5f"); /* just outside it: kept */
}

static void test_the_listed_blanks_are_removed_and_no_other(void **state)
{
    (void)state;
    assert_norm(" Longzhou  Ave\t123\n", "longzhouave123");
    assert_norm("a\v\f\rb", "ab");
    assert_norm("龙洲\u3000大道\u00a0123", "龙洲大道123"); /* ideographic, no-break */
    assert_norm("a\u2028b\u1680c\u2009d", "a\u2028b\u1680c\u2009d");
}

static void test_only_ascii_letters_change_case(void **state)
{
    (void)state;
    assert_norm("LongZHOU", "longzhou");
    assert_norm("ＬＯＮＧ", "long");
    assert_norm("ΑΘΗΝΑ УЛИЦА", "ΑΘΗΝΑУЛИЦА");
    assert_norm("\u212a\u2460\u337fe\u0301", "\u212a\u2460\u337fe\u0301"); /* no NFKC */
}

static void test_bad_utf8_and_overlong_results_are_refused(void **state)
{
    (void)state;
    char buf[16];
    size_t n = 99;
    assert_int_equal(locate_address_norm("\xc3\x28", 2, buf, sizeof(buf), &n), -EINVAL);
    assert_int_equal(locate_address_norm("\xed\xa0\x80", 3, buf, sizeof(buf), &n), -EINVAL);
    assert_int_equal(locate_address_norm("\xe0\x80\xaf", 3, buf, sizeof(buf), &n), -EINVAL);
    assert_int_equal(locate_address_norm("\xf4\x90\x80\x80", 4, buf, sizeof(buf), &n), -EINVAL);
    assert_int_equal(locate_address_norm("\xe4\xb8", 2, buf, sizeof(buf), &n), -EINVAL);
    assert_int_equal(locate_address_norm("abcdefghijklmnopq", 17, buf, sizeof(buf), &n), -E2BIG);
    assert_int_equal(n, 99); /* untouched on failure */
    assert_int_equal(
        locate_address_norm("ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐ", 48, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 16);
    assert_int_equal(locate_address_norm("", 0, buf, sizeof(buf), &n), 0);
    assert_int_equal(n, 0);
}

/* The splits of `normed`, as "road|number" joined by spaces. */
static void assert_splits(const char *normed, const char *want)
{
    size_t starts[LOCATE_MAX_SPLITS];
    int n = locate_address_splits(normed, strlen(normed), starts, LOCATE_MAX_SPLITS);
    char got[512] = "";
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%.*s|%s", i ? " " : "", (int)starts[i],
                              normed, normed + starts[i]);
    if (strcmp(got, want) != 0)
        fail_msg("splits(\"%s\") = \"%s\", want \"%s\"", normed, got, want);
}

static void test_the_number_starts_at_a_digit_run_the_last_one_first(void **state)
{
    (void)state;
    assert_splits("龙洲大道123号", "龙洲大道|123号");
    assert_splits("longzhouave123", "longzhouave|123");
    assert_splits("人民路2段45号", "人民路2段|45号 人民路|2段45号");
    assert_splits("龙洲大道8号附1号", "龙洲大道8号附|1号 龙洲大道|8号附1号");
    assert_splits("a007", "a|007");
}

static void test_an_address_without_road_or_number_has_no_split(void **state)
{
    (void)state;
    assert_splits("123号", "");
    assert_splits("龙洲大道", "");
    assert_splits("", "");
    size_t starts[2];
    const char *many = "a1b2c3d4";
    assert_int_equal(locate_address_splits(many, strlen(many), starts, 2), 2);
    assert_int_equal(starts[0], 7);
    assert_int_equal(starts[1], 5);
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
        cmocka_unit_test(test_full_width_forms_become_ascii),
        cmocka_unit_test(test_the_listed_blanks_are_removed_and_no_other),
        cmocka_unit_test(test_only_ascii_letters_change_case),
        cmocka_unit_test(test_bad_utf8_and_overlong_results_are_refused),
        cmocka_unit_test(test_the_number_starts_at_a_digit_run_the_last_one_first),
        cmocka_unit_test(test_an_address_without_road_or_number_has_no_split),
        cmocka_unit_test(test_method_names_round_trip),
        cmocka_unit_test(test_empty_locator_places_nothing_and_says_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
