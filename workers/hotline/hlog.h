/* hlog.h - gd-hotline's log records: one line per event on stderr with a journald priority prefix.
 */
#ifndef GD_HOTLINE_HLOG_H
#define GD_HOTLINE_HLOG_H

enum hlog_level { HLOG_ERROR = 0, HLOG_WARN, HLOG_INFO, HLOG_DEBUG };

/* Prints "<N>LEVEL gd-hotline: message" when `level` <= `max`. Callers pass
 * line numbers, ticket numbers, ids and codes only: never a caller's name,
 * phone or the content of an order. */
void hlog(int max, enum hlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
