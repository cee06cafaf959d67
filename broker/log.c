/* log.c - leveled, single-line log records on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The one piece of process-wide state: the log level is set once from the
 * configuration and read by every module. */
static enum log_level current_level = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* systemd-journald understands "<N>" prefixes as syslog priorities. */
static const char *const level_prio[] = {"<3>", "<4>", "<6>", "<7>"};

enum log_level log_set_level(enum log_level level)
{
    enum log_level old = current_level;
    current_level = level;
    return old;
}

int log_level_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void log_printf(enum log_level level, const char *module, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s%s %s: ", level_prio[level], level_names[level], module);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    if ((size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
