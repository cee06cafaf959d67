/* log.h - leveled one-line log records on stderr, with the level held by the caller. */
#ifndef GD_SLA_LOG_H
#define GD_SLA_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* The owner (main) keeps one and passes a pointer to every module. */
struct logger {
    enum log_level level; /* most verbose level printed */
    const char *name;     /* module name printed after the level */
};

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *s);

/* Prints "<prio>level name: message" when `level` is enabled. Callers
 * pass ids and codes, never personal data. */
void log_printf(const struct logger *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(lg, ...) log_printf(lg, LOG_ERROR, __VA_ARGS__)
#define log_warn(lg, ...)  log_printf(lg, LOG_WARN, __VA_ARGS__)
#define log_info(lg, ...)  log_printf(lg, LOG_INFO, __VA_ARGS__)
#define log_debug(lg, ...) log_printf(lg, LOG_DEBUG, __VA_ARGS__)

#endif
