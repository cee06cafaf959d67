/* isotime.h - ISO 8601 date-times with a zone <-> milliseconds since the Unix epoch. */
#ifndef GD_INTAKE_ISOTIME_H
#define GD_INTAKE_ISOTIME_H

#include <stddef.h>
#include <stdint.h>

/* Longest string isotime_format() writes, with its NUL. */
#define ISOTIME_MAX 32

/* Parses `len` bytes of `s` as YYYY-MM-DDTHH:MM[:SS[.fraction]] followed by a
 * zone: Z, +HH:MM, +HHMM or +HH (a space may stand for the T; the fraction is
 * 1 to 9 digits, truncated to milliseconds). A time without a zone is refused:
 * local times are ambiguous between the systems that exchange them. Years
 * 1970-9999 only. Returns 0 and sets *ret_ms, or -EINVAL (nothing written). */
int isotime_parse(const char *s, size_t len, int64_t *ret_ms);

/* Writes `ms` (>= 0) as "YYYY-MM-DDTHH:MM:SS+HH:MM" at the fixed offset
 * `offset_min` minutes east of UTC (-1439..1439; 0 writes "Z"). Returns `out`. */
char *isotime_format(int64_t ms, int offset_min, char out[ISOTIME_MAX]);

#endif
