/* gd-samples.h - sample GDP/1 messages of every type for unit tests and the fuzz corpus. */
#ifndef GD_TESTS_SAMPLES_H
#define GD_TESTS_SAMPLES_H

#include "gdp.h"

/* A 12345-hotline description: ~100 CJK characters, ~300 bytes. */
#define GD_SAMPLE_DESC_ZH                                                                                                               \
    "龙洲湾街道龙海大道幸福小区三栋二单元门口的下水道井盖破损，已有一位老人夜间散步时险些"    \
    "跌倒。井盖周围没有任何警示标志，夜间照明也不足，居民担心再次发生危险，希望有关部门尽快" \
    "派人更换井盖并设置临时围挡。另外小区东门外人行道有多块地砖松动，雨天积水严重，请一并处理。"

#define GD_SAMPLE_N_TYPES 33

/* Every message type, in header order. */
extern const enum gd_type gd_sample_types[GD_SAMPLE_N_TYPES];
/* The history and gauges the full INCIDENT and GAUGES samples point to. */
extern const struct gd_event gd_sample_events[3];
extern const struct gd_gauge gd_sample_gauges[2];
extern const struct gd_status_transition gd_sample_transitions[2];
/* The items and results the full SUBMITS and SUBMITTED samples point to. */
extern const struct gd_submit gd_sample_submits[2];
extern const struct gd_submit_result gd_sample_results[3];

/* Fills *m with a message of `type` carrying every field it can; returns
 * the number of keys its encoded body has, or UINT_MAX for an unknown type. */
unsigned gd_sample_full(enum gd_type type, struct gd_msg *m);
/* Same with only the required fields set. */
unsigned gd_sample_min(enum gd_type type, struct gd_msg *m);
/* The same two for status messages. */
unsigned gd_sample_status_full(enum gd_status_kind kind, struct gd_status *s);
unsigned gd_sample_status_min(enum gd_status_kind kind, struct gd_status *s);

#endif
