/* olog.h - gd-open311's log records: one line per event on stderr with a journald priority prefix.
 */
#ifndef GD_OPEN311_OLOG_H
#define GD_OPEN311_OLOG_H

enum olog_level { OLOG_ERROR = 0, OLOG_WARN, OLOG_INFO, OLOG_DEBUG };

/* Prints "<N>LEVEL gd-open311: message" when `level` <= `max`; safe from
 * any thread (one write per record). Callers pass methods, paths, codes,
 * ids and principals only: never a form's contents (names, phones,
 * emails, descriptions). */
void olog(int max, enum olog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
