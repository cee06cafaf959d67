/* wlog.h - gd-worker's log records: one line per event on stderr, journald priority prefix. */
#ifndef GD_WORKER_WLOG_H
#define GD_WORKER_WLOG_H

#include "config.h"

/* Prints "<N>LEVEL gd-worker: message" when `level` is within `max`.
 * Callers pass ids, codes and outcomes only: never the reporter's name,
 * phone or address, nor the description. */
void wlog(enum wlog_level max, enum wlog_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
