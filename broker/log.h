/* log.h - leveled, single-line log records on stderr (journald-friendly). */
#ifndef GD_BROKER_LOG_H
#define GD_BROKER_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the most verbose level that is printed; returns the previous one. */
enum log_level log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *s);

/* Prints one record: "<level> <module>: <message>". Never logs reporter
 * contact data: callers pass codes and ids only. */
void log_printf(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) log_printf(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_printf(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) log_printf(LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) log_printf(LOG_DEBUG, mod, __VA_ARGS__)

#endif
