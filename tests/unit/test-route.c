/* test-route.c - specification tests for routing and the escalation ladder (broker/route.h), on an org tree in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "district.h"
#include "route.h"

static struct unit *unit(struct broker *b, const char *code)
{
    struct unit *u = org_unit(&b->org, code, strlen(code));
    assert_non_null(u);
    return u;
}

static struct category *category(struct broker *b, const char *code)
{
    struct category *c = org_category(&b->org, code, strlen(code));
    assert_non_null(c);
    return c;
}

/* An incident owned as route `r` says, of category `cat` (may be NULL). */
static struct incident owned(const struct route *r, struct category *cat)
{
    return (struct incident){.queue = r->queue, .owner = r->owner, .level = r->level,
                             .category = cat};
}

static void test_a_grid_item_located_at_its_grid_goes_to_the_grid_queue(void **state)
{
    struct broker *b = *state;
    struct route r;
    assert_int_equal(route_resolve(b, category(b, "road"), unit(b, D_GRID), &r), 0);
    assert_string_equal(r.queue->name, D_GRID);
    assert_ptr_equal(r.owner, unit(b, D_GRID));
    assert_int_equal(r.level, GD_LEVEL_GRID);
}

static void test_a_micro_grid_location_is_owned_by_its_grid(void **state)
{
    struct broker *b = *state;
    struct route r;
    assert_int_equal(route_resolve(b, category(b, "road"), unit(b, D_MICRO), &r), 0);
    assert_string_equal(r.queue->name, D_GRID);
}

static void test_a_category_admitted_higher_goes_up_to_that_level(void **state)
{
    struct broker *b = *state;
    struct route r;
    assert_int_equal(route_resolve(b, category(b, "party"), unit(b, D_GRID), &r), 0);
    assert_string_equal(r.queue->name, D_COMMUNITY);
    assert_int_equal(r.level, GD_LEVEL_COMMUNITY);
}

static void test_a_town_item_goes_to_the_sector_queue_of_its_category(void **state)
{
    struct broker *b = *state;
    struct route r;
    assert_int_equal(route_resolve(b, category(b, "fire"), unit(b, D_GRID), &r), 0);
    assert_string_equal(r.queue->name, D_TOWN ".safety");
    assert_ptr_equal(r.owner, unit(b, D_TOWN));
    assert_int_equal(r.level, GD_LEVEL_TOWN);
}

static void test_no_location_unknown_category_or_the_district_go_to_triage(void **state)
{
    struct broker *b = *state;
    struct route r;
    assert_int_equal(route_resolve(b, category(b, "road"), NULL, &r), 0);
    assert_string_equal(r.queue->name, "triage");
    assert_null(r.owner);
    assert_int_equal(route_resolve(b, NULL, unit(b, D_GRID), &r), 0);
    assert_ptr_equal(r.queue, b->triage);
    assert_int_equal(route_resolve(b, category(b, "road"), unit(b, D_DISTRICT), &r), 0);
    assert_ptr_equal(r.queue, b->triage);
    assert_int_equal(r.level, GD_LEVEL_DISTRICT);
}

static void test_escalation_climbs_grid_community_town_sector_district_then_stops(void **state)
{
    struct broker *b = *state;
    struct route r;
    struct category *road = category(b, "road");
    assert_int_equal(route_resolve(b, road, unit(b, D_GRID), &r), 0);
    const char *ladder[] = {D_COMMUNITY, D_TOWN ".livelihood", D_DISTRICT};
    for (size_t i = 0; i < sizeof(ladder) / sizeof(ladder[0]); i++) {
        struct incident inc = owned(&r, road);
        assert_int_equal(route_parent(b, &inc, &r), 0);
        assert_string_equal(r.queue->name, ladder[i]);
    }
    struct incident top = owned(&r, road);
    struct route untouched = {0};
    assert_int_equal(route_parent(b, &top, &untouched), 1);
    assert_null(untouched.queue);
}

static void test_triage_has_no_parent(void **state)
{
    struct broker *b = *state;
    struct route r;
    assert_int_equal(route_resolve(b, NULL, NULL, &r), 0);
    struct incident inc = owned(&r, NULL);
    assert_int_equal(route_parent(b, &inc, &r), 1);
}

static void test_return_from_a_grid_goes_to_the_community(void **state)
{
    struct broker *b = *state;
    struct route r;
    assert_int_equal(route_resolve(b, category(b, "road"), unit(b, D_GRID), &r), 0);
    struct incident inc = owned(&r, category(b, "road"));
    assert_int_equal(route_return(b, &inc, &r), 0);
    assert_string_equal(r.queue->name, D_COMMUNITY);
}

static void test_return_from_a_town_goes_to_the_dispatcher_and_triage_stays(void **state)
{
    struct broker *b = *state;
    struct route r;
    assert_int_equal(route_resolve(b, category(b, "fire"), unit(b, D_GRID), &r), 0);
    struct incident inc = owned(&r, category(b, "fire"));
    assert_int_equal(route_return(b, &inc, &r), 0);
    assert_ptr_equal(r.queue, b->triage);
    struct incident in_triage = owned(&r, category(b, "fire"));
    assert_int_equal(route_return(b, &in_triage, &r), 1);
}

static void test_a_dispatcher_names_a_unit_or_a_town_sector(void **state)
{
    struct broker *b = *state;
    struct route r;
    struct incident road = {.category = category(b, "road")};
    assert_int_equal(route_named(b, &road, D_COMMUNITY, strlen(D_COMMUNITY), &r), 0);
    assert_string_equal(r.queue->name, D_COMMUNITY);
    /* a bare town takes the category's sector */
    assert_int_equal(route_named(b, &road, D_TOWN, strlen(D_TOWN), &r), 0);
    assert_string_equal(r.queue->name, D_TOWN ".livelihood");
    const char *sector = D_TOWN ".economy";
    assert_int_equal(route_named(b, &road, sector, strlen(sector), &r), 0);
    assert_string_equal(r.queue->name, sector);
    assert_ptr_equal(r.owner, unit(b, D_TOWN));
}

static void test_a_dispatcher_cannot_name_a_micro_grid_an_unknown_code_or_a_bare_town_without_category(
    void **state)
{
    struct broker *b = *state;
    struct route r;
    struct incident road = {.category = category(b, "road")};
    struct incident unknown = {0};
    assert_int_equal(route_named(b, &road, D_MICRO, strlen(D_MICRO), &r), -GD_E_BAD_VALUE);
    assert_int_equal(route_named(b, &road, "999", 3, &r), -GD_E_NOT_FOUND);
    assert_int_equal(route_named(b, &road, "triage", 6, &r), -GD_E_NOT_FOUND);
    assert_int_equal(route_named(b, &unknown, D_TOWN, strlen(D_TOWN), &r), -GD_E_BAD_VALUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_grid_item_located_at_its_grid_goes_to_the_grid_queue, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_a_micro_grid_location_is_owned_by_its_grid, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_a_category_admitted_higher_goes_up_to_that_level, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_a_town_item_goes_to_the_sector_queue_of_its_category, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_no_location_unknown_category_or_the_district_go_to_triage, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_escalation_climbs_grid_community_town_sector_district_then_stops, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_triage_has_no_parent, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_return_from_a_grid_goes_to_the_community, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_return_from_a_town_goes_to_the_dispatcher_and_triage_stays, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_a_dispatcher_names_a_unit_or_a_town_sector, district_setup, district_teardown),
        cmocka_unit_test_setup_teardown(test_a_dispatcher_cannot_name_a_micro_grid_an_unknown_code_or_a_bare_town_without_category, district_setup, district_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
