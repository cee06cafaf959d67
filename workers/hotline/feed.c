/* feed.c - the input of gd-hotline: lines with their byte offsets from a file, a growing file, or
 * stdin. */
#include "feed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 65536

struct feed {
    char *path;
    int fd;
    bool follow, seekable, eof, skipping;
    ino_t inode;
    size_t max_line;
    char *buf; /* bytes read, not yet handed out: [head, tail) */
    size_t cap, head, tail;
    uint64_t buf_offset; /* file offset of buf[head] */
    uint64_t line;       /* number of the last line handed out */
    uint64_t skip_start; /* a too-long line being skipped starts here */
};

static int open_path(struct feed *f)
{
    int fd = strcmp(f->path, "-") == 0 ? dup(STDIN_FILENO) : open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = fd;
    f->seekable = S_ISREG(st.st_mode);
    f->inode = f->seekable ? st.st_ino : 0;
    f->head = f->tail = 0;
    f->buf_offset = 0;
    f->line = 0;
    f->eof = false;
    f->skipping = false;
    return 0;
}

int feed_open(const char *path, bool follow, size_t max_line, ino_t inode, uint64_t offset,
              uint64_t line, struct feed **ret)
{
    struct feed *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->fd = -1;
    f->follow = follow;
    f->max_line = max_line;
    f->cap = max_line + READ_CHUNK;
    int rc = -ENOMEM;
    f->path = strdup(path);
    f->buf = malloc(f->cap);
    if (!f->path || !f->buf)
        goto free_feed;
    rc = open_path(f);
    if (rc < 0)
        goto free_feed;
    struct stat st;
    if (f->seekable && inode && inode == f->inode && fstat(f->fd, &st) == 0 &&
        (uint64_t)st.st_size >= offset) {
        if (lseek(f->fd, (off_t)offset, SEEK_SET) < 0) {
            rc = -errno;
            goto free_feed;
        }
        f->buf_offset = offset;
        f->line = line;
    }
    *ret = f;
    return 0;

free_feed:
    feed_close(f);
    return rc;
}

void feed_close(struct feed *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->buf);
    free(f->path);
    free(f);
}

ino_t feed_inode(const struct feed *f)
{
    return f->inode;
}

bool feed_seekable(const struct feed *f)
{
    return f->seekable;
}

bool feed_eof(const struct feed *f)
{
    return f->eof;
}

/* Reads more bytes behind buf[tail]. Returns bytes read, 0 at end of
 * input, or -errno. */
static ssize_t fill(struct feed *f)
{
    if (f->head > 0 && (f->tail == f->cap || f->head == f->tail)) {
        memmove(f->buf, f->buf + f->head, f->tail - f->head);
        f->tail -= f->head;
        f->head = 0;
    }
    if (f->tail == f->cap)
        return -ENOBUFS; /* cannot happen: a line is cut at max_line */
    for (;;) {
        ssize_t n = read(f->fd, f->buf + f->tail, f->cap - f->tail);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        f->tail += (size_t)n;
        return n;
    }
}

int feed_next(struct feed *f, struct feed_line *ret)
{
    for (;;) {
        char *start = f->buf + f->head;
        size_t avail = f->tail - f->head;
        char *nl = memchr(start, '\n', avail);
        if (f->skipping) {
            /* the rest of a too-long line: drop it up to its newline */
            size_t drop = nl ? (size_t)(nl - start) + 1 : avail;
            f->head += drop;
            f->buf_offset += drop;
            if (nl) {
                f->skipping = false;
                *ret = (struct feed_line){.start = f->skip_start,
                                          .end = f->buf_offset,
                                          .number = ++f->line,
                                          .too_long = true};
                return 1;
            }
        } else if (nl || (avail > f->max_line)) {
            size_t len = nl ? (size_t)(nl - start) : avail;
            if (len > f->max_line) {
                f->skipping = true;
                f->skip_start = f->buf_offset;
                continue;
            }
            f->head += len + 1;
            *ret = (struct feed_line){.data = start,
                                      .len = len && start[len - 1] == '\r' ? len - 1 : len,
                                      .start = f->buf_offset,
                                      .end = f->buf_offset + len + 1,
                                      .number = ++f->line};
            f->buf_offset += len + 1;
            return 1;
        }
        ssize_t n = fill(f);
        if (n < 0)
            return (int)n;
        if (n > 0)
            continue;
        /* end of the input for now */
        if (f->follow)
            return 0;
        avail = f->tail - f->head;
        if (f->skipping) {
            f->skipping = false;
            f->eof = true;
            *ret = (struct feed_line){.start = f->skip_start,
                                      .end = f->buf_offset,
                                      .number = ++f->line,
                                      .too_long = true};
            return 1;
        }
        if (avail == 0) {
            f->eof = true;
            return 0;
        }
        start = f->buf + f->head;
        f->head = f->tail;
        *ret = (struct feed_line){.data = start,
                                  .len = avail,
                                  .start = f->buf_offset,
                                  .end = f->buf_offset + avail,
                                  .number = ++f->line};
        f->buf_offset += avail;
        return 1;
    }
}

bool feed_rotated(struct feed *f)
{
    if (!f->seekable || strcmp(f->path, "-") == 0)
        return false;
    struct stat st, cur;
    if (stat(f->path, &st) != 0)
        return false; /* gone for now: keep reading the open file */
    if (st.st_ino != f->inode)
        return true;
    return fstat(f->fd, &cur) == 0 && (uint64_t)cur.st_size < f->buf_offset + (f->tail - f->head);
}

int feed_reopen(struct feed *f)
{
    return open_path(f);
}
