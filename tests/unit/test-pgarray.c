/* test-pgarray.c - specification tests for binary array parameters (broker/pgarray.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pgarray.h"

/* PostgreSQL's array_send layout: ndim, flags, element OID, length, lower bound */
static const unsigned char header_int8_two_with_null[20] = {
    0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 1,
};

static void test_an_int8_array_is_laid_out_as_postgresql_sends_it(void **state)
{
    (void)state;
    struct pgarray a = {0};
    pgarray_begin(&a, PGARRAY_INT8);
    pgarray_int8(&a, -2);
    pgarray_null(&a);
    assert_int_equal(pgarray_end(&a), 0);
    const unsigned char elements[] = {
        0,    0,    0,    8,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, /* -2 */
        0xff, 0xff, 0xff, 0xff,                                                 /* NULL */
    };
    assert_int_equal(pgarray_length(&a), 20 + sizeof(elements));
    assert_memory_equal(pgarray_data(&a), header_int8_two_with_null, 20);
    assert_memory_equal(pgarray_data(&a) + 20, elements, sizeof(elements));
    pgarray_fini(&a);
}

static void test_text_goes_as_its_bytes_without_quoting(void **state)
{
    (void)state;
    struct pgarray a = {0};
    pgarray_begin(&a, PGARRAY_TEXT);
    pgarray_text(&a, "a\"\\,{}");
    pgarray_text(&a, NULL);
    assert_int_equal(pgarray_end(&a), 0);
    const char *d = pgarray_data(&a);
    assert_int_equal((unsigned char)d[7], 0);   /* no NULL element: flags 0 */
    assert_int_equal((unsigned char)d[11], 25); /* text */
    assert_int_equal((unsigned char)d[15], 2);
    const char elements[] = "\0\0\0\6a\"\\,{}\0\0\0\0"; /* NULL as "" */
    assert_int_equal(pgarray_length(&a), 20 + sizeof(elements) - 1);
    assert_memory_equal(d + 20, elements, sizeof(elements) - 1);
    pgarray_fini(&a);
}

static void test_times_count_from_2000_in_microseconds_and_zero_is_null(void **state)
{
    (void)state;
    struct pgarray a = {0};
    pgarray_begin(&a, PGARRAY_TIMESTAMPTZ);
    pgarray_time_ms(&a, 946684800001LL); /* 2000-01-01 00:00:00.001 UTC */
    pgarray_time_ms(&a, 0);
    assert_int_equal(pgarray_end(&a), 0);
    const char *d = pgarray_data(&a);
    assert_int_equal((unsigned char)d[7], 1); /* has a NULL */
    assert_int_equal(((unsigned char)d[10] << 8) | (unsigned char)d[11], 1184);
    const unsigned char elements[] = {0, 0, 0,    8,    0,    0,    0,    0,
                                      0, 0, 0x03, 0xe8, 0xff, 0xff, 0xff, 0xff};
    assert_memory_equal(d + 20, elements, sizeof(elements));
    pgarray_fini(&a);
}

static void test_a_reused_array_starts_empty_with_its_new_type(void **state)
{
    (void)state;
    struct pgarray a = {0};
    pgarray_begin(&a, PGARRAY_TEXT);
    for (int i = 0; i < 1000; i++)
        pgarray_text(&a, "a long enough string to make the buffer grow");
    assert_int_equal(pgarray_end(&a), 0);
    pgarray_begin(&a, PGARRAY_BOOL);
    pgarray_bool(&a, true);
    assert_int_equal(pgarray_end(&a), 0);
    const char *d = pgarray_data(&a);
    assert_int_equal(pgarray_length(&a), 20 + 5);
    assert_int_equal((unsigned char)d[11], 16);
    assert_int_equal((unsigned char)d[15], 1);
    assert_int_equal(d[24], 1);
    pgarray_fini(&a);
}

static void test_an_empty_array_has_length_zero(void **state)
{
    (void)state;
    struct pgarray a = {0};
    pgarray_begin(&a, PGARRAY_FLOAT8);
    assert_int_equal(pgarray_end(&a), 0);
    assert_int_equal(pgarray_length(&a), 20);
    assert_int_equal(pgarray_data(&a)[15], 0);
    pgarray_fini(&a);
    pgarray_fini(&a); /* twice is harmless */
}

static void test_rows_take_each_field_from_its_column_with_its_type(void **state)
{
    (void)state;
    struct pgarray cols[2] = {{0}, {0}}, rows = {0};
    pgarray_begin(&cols[0], PGARRAY_INT4);
    pgarray_begin(&cols[1], PGARRAY_TEXT);
    pgarray_int4(&cols[0], 7);
    pgarray_text(&cols[1], "ab");
    pgarray_int4(&cols[0], 8);
    pgarray_null(&cols[1]);
    assert_int_equal(pgarray_end(&cols[0]), 0);
    assert_int_equal(pgarray_end(&cols[1]), 0);
    assert_int_equal(pgarray_rows(&rows, 99999, cols, 2), 0);
    const unsigned char expect[] = {
        0, 0, 0, 1,  0,    0,    0,    0,    0,   1,   0x86, 0x9f,
        0, 0, 0, 2,  0,    0,    0,    1,                       /* 2 rows of OID 99999 */
        0, 0, 0, 26, 0,    0,    0,    2,                       /* row 1: 26 bytes, 2 fields */
        0, 0, 0, 23, 0,    0,    0,    4,    0,   0,   0,    7, /* int4 7 */
        0, 0, 0, 25, 0,    0,    0,    2,    'a', 'b',          /* text "ab" */
        0, 0, 0, 24, 0,    0,    0,    2,                       /* row 2: 24 bytes */
        0, 0, 0, 23, 0,    0,    0,    4,    0,   0,   0,    8, /* int4 8 */
        0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff,                    /* text NULL */
    };
    assert_int_equal(pgarray_length(&rows), sizeof(expect));
    assert_memory_equal(pgarray_data(&rows), expect, sizeof(expect));
    pgarray_fini(&rows);
    pgarray_fini(&cols[0]);
    pgarray_fini(&cols[1]);
}

static void test_rows_refuse_columns_of_different_lengths(void **state)
{
    (void)state;
    struct pgarray cols[2] = {{0}, {0}}, rows = {0};
    pgarray_begin(&cols[0], PGARRAY_BOOL);
    pgarray_begin(&cols[1], PGARRAY_BOOL);
    pgarray_bool(&cols[0], true);
    assert_int_equal(pgarray_end(&cols[0]), 0);
    assert_int_equal(pgarray_end(&cols[1]), 0);
    assert_int_equal(pgarray_rows(&rows, 1, cols, 2), -ENOMEM);
    pgarray_fini(&rows);
    pgarray_fini(&cols[0]);
    pgarray_fini(&cols[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_int8_array_is_laid_out_as_postgresql_sends_it),
        cmocka_unit_test(test_text_goes_as_its_bytes_without_quoting),
        cmocka_unit_test(test_times_count_from_2000_in_microseconds_and_zero_is_null),
        cmocka_unit_test(test_a_reused_array_starts_empty_with_its_new_type),
        cmocka_unit_test(test_an_empty_array_has_length_zero),
        cmocka_unit_test(test_rows_take_each_field_from_its_column_with_its_type),
        cmocka_unit_test(test_rows_refuse_columns_of_different_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
