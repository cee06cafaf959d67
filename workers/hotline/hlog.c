/* hlog.c - gd-hotline's log records: one line per event on stderr with a journald priority prefix.
 */
#include "hlog.h"

#include <stdarg.h>
#include <stdio.h>

void hlog(int max, enum hlog_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const char *const prio[] = {"<3>", "<4>", "<6>", "<7>"};
    if ((int)level > max)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s%s gd-hotline: %s\n", prio[level], names[level], line);
}
