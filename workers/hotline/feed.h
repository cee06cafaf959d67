/* feed.h - the input of gd-hotline: lines with their byte offsets from a file, a growing file, or
 * stdin. */
#ifndef GD_HOTLINE_FEED_H
#define GD_HOTLINE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct feed;

/* One line handed out by feed_next(): its bytes without the newline (valid
 * until the next call), where it starts, where the next line starts, and
 * its number (1 = the file's first line). `too_long` lines carry no bytes. */
struct feed_line {
    const char *data;
    size_t len;
    uint64_t start, end;
    uint64_t number;
    bool too_long;
};

/* Opens `path` ("-" for stdin) and positions it at byte `offset`, which is
 * line `line` + 1's start, when the file's inode is `inode`; from the start
 * otherwise (another file, or one shorter than `offset`: rotated or
 * truncated). Lines longer than max_line bytes are reported too_long.
 * Returns 0 and *ret, or -errno. */
int feed_open(const char *path, bool follow, size_t max_line, ino_t inode, uint64_t offset,
              uint64_t line, struct feed **ret);

/* Closes and frees; accepts NULL. */
void feed_close(struct feed *f);

/* The inode of the open file (0 for a pipe) and whether it can be resumed
 * (a regular file). */
ino_t feed_inode(const struct feed *f);
bool feed_seekable(const struct feed *f);

/* The next complete line. Returns 1 with *ret; 0 when there is none now
 * (follow: try again later; else the input is exhausted, see feed_eof());
 * or -errno. Without follow, a last line without a newline is a line. */
int feed_next(struct feed *f, struct feed_line *ret);

/* True once the input is exhausted for good (not following). */
bool feed_eof(const struct feed *f);

/* Following a path: true when the path now names another file or the open
 * file shrank below what was read (rotation). The caller drains what is in
 * flight and then calls feed_reopen(). */
bool feed_rotated(struct feed *f);

/* Reopens the path from its start (a new file: line 1, offset 0). Returns
 * 0 or -errno (the old file stays open on failure). */
int feed_reopen(struct feed *f);

#endif
