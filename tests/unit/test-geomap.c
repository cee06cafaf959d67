/* test-geomap.c - specification tests for the drill-down map documents
 * (workers/dashboard/geomap.h): colour classes, counts from the model's queues, labels and
 * escaping. No database: the views are made by hand as geomap_load() would make them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "geomap.h"

#define DISTRICT  "500113"
#define TOWN      "500113001"
#define COMMUNITY "500113001001"
#define GRID_1    "500113001001001"
#define GRID_2    "500113001001002"

static void gauge(struct dash_model *m, const char *queue, uint32_t depth, uint32_t in_flight,
                  uint32_t overdue)
{
    struct gd_gauge g = {
        .queue = gd_str_c(queue), .depth = depth, .in_flight = in_flight, .overdue = overdue};
    dash_model_gauge(m, 0, &g, 1000);
}

/* A district of one town, one community (名 & <"2"> in its name) and two
 * grids, with the grids' and the town's queues gauged. */
static void model(struct dash_model *m)
{
    dash_model_init(m, 480, 1000);
    assert_int_equal(dash_model_add_unit(m, DISTRICT, "巴南区", GD_LEVEL_DISTRICT, NULL), 0);
    assert_int_equal(dash_model_add_unit(m, TOWN, "龙洲湾街道", GD_LEVEL_TOWN, DISTRICT), 0);
    assert_int_equal(
        dash_model_add_unit(m, COMMUNITY, "融门社区 & <\"2\">", GD_LEVEL_COMMUNITY, TOWN), 0);
    assert_int_equal(
        dash_model_add_unit(m, GRID_1, "融门社区 & <\"2\">第1网格", GD_LEVEL_GRID, COMMUNITY), 0);
    assert_int_equal(dash_model_add_unit(m, GRID_2, "第二网格", GD_LEVEL_GRID, COMMUNITY), 0);
    assert_int_equal(dash_model_add_category(m, "LH-0101", "livelihood"), 0);
    gauge(m, GRID_1, 2, 1, 1);         /* open 3, overdue 1: a quarter or more */
    gauge(m, GRID_2, 7, 1, 1);         /* open 8, overdue 1: under a quarter */
    gauge(m, TOWN ".safety", 4, 0, 0); /* the town's own queue: on the town only */
}

/* A view of `parent` with one shape per code, each a square of 100 units. */
static struct geomap_view *view(const char *parent, const char *const *codes, uint32_t n)
{
    struct geomap_view *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    snprintf(v->unit, sizeof(v->unit), "%s", parent);
    v->width = 100.0f * (float)n;
    v->height = 100;
    v->shapes = calloc(n, sizeof(*v->shapes));
    assert_non_null(v->shapes);
    for (uint32_t i = 0; i < n; i++) {
        struct geomap_shape *s = &v->shapes[i];
        snprintf(s->code, sizeof(s->code), "%s", codes[i]);
        char d[64];
        snprintf(d, sizeof(d), "M %u 0 l 100 0 0 100 -100 0 z", 100 * i);
        s->path = strdup(d);
        assert_non_null(s->path);
        s->label_x = 100.0f * (float)i + 50;
        s->label_y = 50;
        s->label_size = 100;
    }
    v->n_shapes = n;
    return v;
}

static void view_free(struct geomap_view *v)
{
    for (uint32_t i = 0; i < v->n_shapes; i++)
        free(v->shapes[i].path);
    free(v->shapes);
    free(v);
}

/* The text of the element that starts with `start` in doc (up to its '>'). */
static char *tag(const char *doc, const char *start)
{
    const char *p = strstr(doc, start);
    assert_non_null(p);
    const char *e = strchr(p, '>');
    return strndup(p, (size_t)(e - p + 1));
}

static void test_classes_follow_the_overdue_share_of_the_open(void **state)
{
    (void)state;
    assert_string_equal(geomap_class(0, 0), "m-idle");
    assert_string_equal(geomap_class(5, 0), "m-ok");
    assert_string_equal(geomap_class(5, 1), "m-warn"); /* 20 % */
    assert_string_equal(geomap_class(4, 1), "m-bad");  /* 25 % */
    assert_string_equal(geomap_class(1, 1), "m-bad");
    assert_string_equal(geomap_class(0, 2), "m-bad"); /* overdue with nothing open: flagged */
    assert_string_equal(geomap_class(UINT32_MAX, UINT32_MAX / 4), "m-warn"); /* no overflow */
}

static void test_each_grid_gets_its_queues_counts_class_and_tooltip(void **state)
{
    (void)state;
    struct dash_model m;
    model(&m);
    const char *codes[] = {GRID_1, GRID_2};
    struct geomap_view *v = view(COMMUNITY, codes, 2);
    struct tb out = {0};
    geomap_render(&out, v, &m);
    assert_false(out.failed);
    char *p1 = tag(out.data, "<path data-unit=\"" GRID_1 "\"");
    assert_non_null(strstr(p1, "data-open=\"3\" data-overdue=\"1\" class=\"m-bad\""));
    assert_non_null(strstr(p1, "d=\"M 0 0 l 100 0 0 100 -100 0 z\""));
    char *p2 = tag(out.data, "<path data-unit=\"" GRID_2 "\"");
    assert_non_null(strstr(p2, "data-open=\"8\" data-overdue=\"1\" class=\"m-warn\""));
    /* the tooltip: name (escaped), code, open and overdue */
    assert_non_null(strstr(out.data, "<title>融门社区 &amp; &lt;&quot;2&quot;&gt;第1网格 " GRID_1
                                     " · 在办 open 3 · 超期 overdue 1</title>"));
    /* labels leave out the community's name: 第1网格 */
    assert_non_null(strstr(out.data, "<tspan class=\"n\">第1网格</tspan>"));
    assert_non_null(strstr(out.data, "<tspan class=\"n\">第二网格</tspan>"));
    assert_non_null(strstr(out.data, ">3 / 1</tspan></text>"));
    assert_non_null(strstr(out.data, ">8 / 1</tspan></text>"));
    free(p1);
    free(p2);
    tb_fini(&out);
    view_free(v);
    dash_model_fini(&m);
}

static void test_a_unit_counts_the_queues_of_its_subtree_and_drills_down(void **state)
{
    (void)state;
    struct dash_model m;
    model(&m);
    const char *codes[] = {TOWN};
    struct geomap_view *v = view(DISTRICT, codes, 1);
    struct tb out = {0};
    geomap_render(&out, v, &m);
    assert_false(out.failed);
    /* 3 + 8 in the grids, 4 in the town's sector queue; 2 overdue */
    char *p = tag(out.data, "<path data-unit=\"" TOWN "\"");
    assert_non_null(strstr(p, "data-open=\"15\" data-overdue=\"2\" class=\"m-warn drill\""));
    assert_non_null(strstr(out.data, "viewBox=\"-6.0 -6.0 112.0 112.0\""));
    free(p);
    tb_fini(&out);
    view_free(v);
    dash_model_fini(&m);
}

static void test_a_shape_of_a_unit_the_model_does_not_know_is_left_out(void **state)
{
    (void)state;
    struct dash_model m;
    model(&m);
    const char *codes[] = {"500113001001099", GRID_2};
    struct geomap_view *v = view(COMMUNITY, codes, 2);
    struct tb out = {0};
    geomap_render(&out, v, &m);
    assert_false(out.failed);
    assert_null(strstr(out.data, "500113001001099"));
    assert_non_null(strstr(out.data, "data-unit=\"" GRID_2 "\""));
    tb_fini(&out);
    view_free(v);
    dash_model_fini(&m);
}

static void test_a_label_stays_inside_the_box(void **state)
{
    (void)state;
    struct dash_model m;
    model(&m);
    const char *codes[] = {GRID_2, GRID_1};
    struct geomap_view *v = view(COMMUNITY, codes, 2);
    v->shapes[0].label_x = 1; /* on the western edge */
    struct tb out = {0};
    geomap_render(&out, v, &m);
    /* 第二网格: 4 characters of size 25 (100 / 4): 50 units from the edge */
    char *t = tag(out.data, "<text data-unit=\"" GRID_2 "\"");
    assert_non_null(strstr(t, "x=\"50.0\" y=\"50.0\" font-size=\"25.0\""));
    free(t);
    tb_fini(&out);
    view_free(v);
    dash_model_fini(&m);
}

static void test_a_view_is_found_by_its_unit(void **state)
{
    (void)state;
    struct geomap *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    const char *codes[] = {GRID_1};
    struct geomap_view *v = view(COMMUNITY, codes, 1);
    HASH_ADD_STR(g->views, unit, v);
    assert_ptr_equal(geomap_view(g, COMMUNITY), v);
    assert_null(geomap_view(g, TOWN));
    assert_null(geomap_view(NULL, COMMUNITY));
    geomap_free(g); /* frees the view, its shapes and paths */
    geomap_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_follow_the_overdue_share_of_the_open),
        cmocka_unit_test(test_each_grid_gets_its_queues_counts_class_and_tooltip),
        cmocka_unit_test(test_a_unit_counts_the_queues_of_its_subtree_and_drills_down),
        cmocka_unit_test(test_a_shape_of_a_unit_the_model_does_not_know_is_left_out),
        cmocka_unit_test(test_a_label_stays_inside_the_box),
        cmocka_unit_test(test_a_view_is_found_by_its_unit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
