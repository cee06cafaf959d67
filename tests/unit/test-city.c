/* test-city.c - specification tests for the city configuration and the town -> shard map
 * (workers/lib/city.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "city.h"

#define SHARD(name, towns)                                                           \
    "[shard " name "]\nintake = ipc:///run/" name "/intake\nwork = ipc:///run/" name \
    "/work\nstatus = ipc:///run/" name "/status\ndb = dbname=gd_" name "\ntowns = " towns "\n"

static const char two_shards[] = "[city]\ndefault = east\n" SHARD("east", "500113001, 500113002")
    SHARD("west", "500113003 500113100\ntowns = 500113200");

static struct city *parse_ok(const char *text)
{
    struct city *c = NULL;
    char err[512] = "";
    int rc = city_parse(text, "city.ini", &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("refused: %s", err);
    return c;
}

/* Parses `text`, expects a refusal, and checks the message contains `want`. */
static void assert_refused(const char *text, const char *want)
{
    struct city *c = NULL;
    char err[512] = "";
    assert_int_equal(city_parse(text, "city.ini", &c, err, sizeof(err)), -EINVAL);
    assert_null(c);
    if (!strstr(err, want))
        fail_msg("message '%s' does not say '%s'", err, want);
}

static void test_the_shards_come_in_file_order_with_their_endpoints(void **state)
{
    (void)state;
    struct city *c = parse_ok(two_shards);
    assert_int_equal(city_n_shards(c), 2);
    const struct city_shard *e = city_shard(c, 0), *w = city_shard(c, 1);
    assert_string_equal(e->name, "east");
    assert_string_equal(e->intake, "ipc:///run/east/intake");
    assert_string_equal(e->work, "ipc:///run/east/work");
    assert_string_equal(e->status, "ipc:///run/east/status");
    assert_string_equal(e->db, "dbname=gd_east");
    assert_int_equal(e->n_towns, 2);
    assert_string_equal(w->name, "west");
    assert_int_equal(w->n_towns, 3); /* the towns key may repeat */
    assert_int_equal(city_default_shard(c), 0);
    assert_int_equal(city_find_shard(c, "west"), 1);
    assert_int_equal(city_find_shard(c, "north"), -1);
    city_free(c);
}

static void test_every_code_of_a_town_goes_to_the_shard_that_owns_the_town(void **state)
{
    (void)state;
    struct city *c = parse_ok(two_shards);
    static const char *const east[] = {"500113001", "500113001001", "500113001001001",
                                       "50011300100100101", "500113002017"};
    static const char *const west[] = {"500113003", "500113100004", "500113200001002"};
    for (size_t i = 0; i < sizeof(east) / sizeof(*east); i++)
        assert_int_equal(city_shard_of_unit(c, east[i], strlen(east[i])), 0);
    for (size_t i = 0; i < sizeof(west) / sizeof(*west); i++)
        assert_int_equal(city_shard_of_unit(c, west[i], strlen(west[i])), 1);
    city_free(c);
}

static void test_a_code_without_a_known_town_has_no_shard(void **state)
{
    (void)state;
    struct city *c = parse_ok(two_shards);
    static const char *const none[] = {"",           "500113",       "50011300",
                                       "500113004",  "500113004001", "50011300a001",
                                       "龙洲湾街道", "x500113001"};
    for (size_t i = 0; i < sizeof(none) / sizeof(*none); i++)
        assert_int_equal(city_shard_of_unit(c, none[i], strlen(none[i])), -1);
    assert_int_equal(city_shard_of_unit(c, NULL, 0), -1);
    /* only `len` bytes count: a prefix shorter than a town code is no town */
    assert_int_equal(city_shard_of_unit(c, "500113001001", 8), -1);
    assert_int_equal(city_shard_of_unit(c, "500113001001", 9), 0);
    city_free(c);
}

static void test_the_towns_list_sorted_with_their_shards(void **state)
{
    (void)state;
    struct city *c = parse_ok(two_shards);
    assert_int_equal(city_n_towns(c), 5);
    static const char *const codes[] = {"500113001", "500113002", "500113003", "500113100",
                                        "500113200"};
    static const int shards[] = {0, 0, 1, 1, 1};
    for (size_t k = 0; k < 5; k++) {
        int s = -1;
        assert_string_equal(city_town(c, k, &s), codes[k]);
        assert_int_equal(s, shards[k]);
    }
    city_free(c);
}

static void test_without_a_default_nothing_is_the_default(void **state)
{
    (void)state;
    struct city *c = parse_ok(SHARD("only", "500113001"));
    assert_int_equal(city_default_shard(c), -1);
    city_free(c);
}

static void test_a_town_in_two_shards_is_refused_naming_both(void **state)
{
    (void)state;
    assert_refused(SHARD("east", "500113001 500113002") SHARD("west", "500113002"),
                   "town 500113002 is in two shards, east and west");
    assert_refused(SHARD("east", "500113001 500113001"),
                   "town 500113001 is listed twice in shard east");
}

static void test_unknown_sections_and_keys_are_refused_with_their_line(void **state)
{
    (void)state;
    assert_refused("[city]\ndefualt = east\n" SHARD("east", "500113001"),
                   "city.ini:2: unknown key 'defualt' in [city]");
    assert_refused(SHARD("east", "500113001") "dsn = x\n", "city.ini:7: unknown key 'dsn'");
    assert_refused("[shards east]\nintake = x\n", "city.ini:2: unknown section [shards east]");
    assert_refused("[city]\nnot a line\n", "city.ini:2: not an INI line");
}

static void test_a_shard_without_an_endpoint_or_database_is_refused(void **state)
{
    (void)state;
    assert_refused("[shard east]\nintake = a\nstatus = b\ndb = c\n", "shard east has no work");
    assert_refused("[shard east]\nintake = a\nwork = b\nstatus = c\n", "shard east has no db");
    assert_refused("[shard east]\nwork = a\nstatus = b\ndb = c\n", "shard east has no intake");
    assert_refused("[shard east]\nintake = a\nwork = b\ndb = c\n", "shard east has no status");
    assert_refused("[city]\ndefault = east\n", "no [shard NAME] section");
}

static void test_bad_names_codes_and_defaults_are_refused(void **state)
{
    (void)state;
    assert_refused("[shard East]\nintake = a\n", "shard name 'East'");
    assert_refused(SHARD("east", "50011300"), "town '50011300': a town code is 9 digits");
    assert_refused(SHARD("east", "500113001001"), "town '500113001001'");
    assert_refused(SHARD("east", "50011300x"), "town '50011300x'");
    assert_refused("[city]\ndefault = north\n" SHARD("east", "500113001"),
                   "default 'north' is not a shard of the file");
    assert_refused(SHARD("east", "500113001") "intake = again\n", "intake is set twice");
    assert_refused(SHARD("east", "500113001") SHARD("west", "500113002") "[shard east]\nwork = x\n",
                   "city.ini:14: shard east is defined twice");
}

static void test_limits_on_shards_towns_and_values(void **state)
{
    (void)state;
    /* one shard more than allowed */
    static char text[(CITY_MAX_SHARDS + 2) * 200];
    size_t off = 0;
    for (int i = 0; i <= CITY_MAX_SHARDS; i++)
        off += (size_t)snprintf(text + off, sizeof(text) - off,
                                "[shard s%d]\nintake = a\nwork = b\nstatus = c\ndb = d\n", i);
    assert_refused(text, "more than 32 shards");

    /* one town more than allowed, in continuation keys */
    static char towns[CITY_MAX_TOWNS * 24 + 200];
    off = (size_t)snprintf(towns, sizeof(towns), "[shard big]\n");
    for (int i = 0; i <= CITY_MAX_TOWNS; i++)
        off += (size_t)snprintf(towns + off, sizeof(towns) - off, "towns = %09d\n", 100000000 + i);
    assert_refused(towns, "more than 4096 towns");

    /* a DSN longer than the limit (inih's own line limit may say it first) */
    static char longv[CITY_MAX_VALUE + 200];
    off = (size_t)snprintf(longv, sizeof(longv), "[shard east]\ndb = ");
    memset(longv + off, 'x', CITY_MAX_VALUE + 1);
    longv[off + CITY_MAX_VALUE + 1] = '\0';
    struct city *c = NULL;
    char err[512];
    assert_int_equal(city_parse(longv, "city.ini", &c, err, sizeof(err)), -EINVAL);
    assert_null(c);
}

static void test_a_missing_file_is_refused_with_its_name(void **state)
{
    (void)state;
    struct city *c = NULL;
    char err[512] = "";
    assert_int_equal(city_load("/nonexistent/city.ini", &c, err, sizeof(err)), -EINVAL);
    assert_null(c);
    assert_string_equal(err, "/nonexistent/city.ini: cannot open the file");
    city_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_shards_come_in_file_order_with_their_endpoints),
        cmocka_unit_test(test_every_code_of_a_town_goes_to_the_shard_that_owns_the_town),
        cmocka_unit_test(test_a_code_without_a_known_town_has_no_shard),
        cmocka_unit_test(test_the_towns_list_sorted_with_their_shards),
        cmocka_unit_test(test_without_a_default_nothing_is_the_default),
        cmocka_unit_test(test_a_town_in_two_shards_is_refused_naming_both),
        cmocka_unit_test(test_unknown_sections_and_keys_are_refused_with_their_line),
        cmocka_unit_test(test_a_shard_without_an_endpoint_or_database_is_refused),
        cmocka_unit_test(test_bad_names_codes_and_defaults_are_refused),
        cmocka_unit_test(test_limits_on_shards_towns_and_values),
        cmocka_unit_test(test_a_missing_file_is_refused_with_its_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
