/* wlog.c - gd-worker's log records: one line per event on stderr, journald priority prefix. */
#include "wlog.h"

#include <stdarg.h>
#include <stdio.h>

void wlog(enum wlog_level max, enum wlog_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const char *const prio[] = {"<3>", "<4>", "<6>", "<7>"};
    if (level > max)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* one write per record, so lines of concurrent processes do not mix */
    fprintf(stderr, "%s%s gd-worker: %s\n", prio[level], names[level], line);
}
