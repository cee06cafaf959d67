/* log.c - leveled one-line log records on stderr (journald-friendly priorities). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_prio[] = {"<3>", "<4>", "<6>", "<7>"};

int log_level_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void log_printf(const struct logger *lg, enum log_level level, const char *fmt, ...)
{
    if (level > lg->level)
        return;
    char line[1024];
    int n =
        snprintf(line, sizeof(line), "%s%s %s: ", level_prio[level], level_names[level], lg->name);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    if ((size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
