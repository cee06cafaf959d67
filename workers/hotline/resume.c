/* resume.c - gd-hotline's durable resume position (state file) and its reject file, kept consistent
 * across crashes. */
#include "resume.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC "gd-hotline-state 1"

struct resume {
    char *state_path;
    char *tmp_path;
    char *dir;
    int reject_fd;
    uint64_t reject_len;
    bool reject_dirty;
};

static int read_state(const char *path, struct resume_pos *pos)
{
    *pos = (struct resume_pos){0};
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    char magic[64] = "";
    unsigned long long ino, off, line, rlen;
    int n = fscanf(f, "%63[^\n]\ninode %llu\noffset %llu\nline %llu\nreject_len %llu", magic, &ino,
                   &off, &line, &rlen);
    fclose(f);
    if (n != 5 || strcmp(magic, STATE_MAGIC) != 0)
        return -EINVAL;
    *pos = (struct resume_pos){(ino_t)ino, off, line, rlen};
    return 0;
}

int resume_open(const char *state_path, const char *reject_path, struct resume **ret,
                struct resume_pos *ret_pos)
{
    struct resume *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->reject_fd = -1;
    int rc = -ENOMEM;
    r->state_path = strdup(state_path);
    size_t n = strlen(state_path) + 5;
    r->tmp_path = malloc(n);
    char *copy = strdup(state_path);
    if (!r->state_path || !r->tmp_path || !copy)
        goto free_copy;
    snprintf(r->tmp_path, n, "%s.tmp", state_path);
    r->dir = strdup(dirname(copy));
    if (!r->dir)
        goto free_copy;
    struct resume_pos pos;
    rc = read_state(state_path, &pos);
    if (rc < 0)
        goto free_copy;
    r->reject_fd = open(reject_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (r->reject_fd < 0) {
        rc = -errno;
        goto free_copy;
    }
    struct stat st;
    if (fstat(r->reject_fd, &st) != 0) {
        rc = -errno;
        goto free_copy;
    }
    /* A missing state file with a non-empty reject file: the entries are of
     * another run (or the state was removed to start over): keep them. */
    uint64_t keep = pos.inode ? pos.reject_len : (uint64_t)st.st_size;
    if ((uint64_t)st.st_size > keep && ftruncate(r->reject_fd, (off_t)keep) != 0) {
        rc = -errno;
        goto free_copy;
    }
    r->reject_len = (uint64_t)st.st_size < keep ? (uint64_t)st.st_size : keep;
    if (lseek(r->reject_fd, (off_t)r->reject_len, SEEK_SET) < 0) {
        rc = -errno;
        goto free_copy;
    }
    free(copy);
    *ret = r;
    *ret_pos = pos;
    return 0;

free_copy:
    free(copy);
    resume_close(r);
    return rc;
}

void resume_close(struct resume *r)
{
    if (!r)
        return;
    if (r->reject_fd >= 0)
        close(r->reject_fd);
    free(r->state_path);
    free(r->tmp_path);
    free(r->dir);
    free(r);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int resume_reject(struct resume *r, ino_t inode, uint64_t line, uint64_t offset, const char *ticket,
                  const char *reason)
{
    json_t *v =
        json_pack("{s:I,s:I,s:I,s:s,s:s}", "line", (json_int_t)line, "offset", (json_int_t)offset,
                  "inode", (json_int_t)inode, "ticket_no", ticket, "reason", reason);
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    s[n] = '\n'; /* json_dumps's NUL becomes the newline; written by length */
    int rc = write_all(r->reject_fd, s, n + 1);
    free(s);
    if (rc == 0) {
        r->reject_len += n + 1;
        r->reject_dirty = true;
    }
    return rc;
}

int resume_save(struct resume *r, struct resume_pos pos)
{
    if (r->reject_dirty) {
        if (fdatasync(r->reject_fd) != 0)
            return -errno;
        r->reject_dirty = false;
    }
    pos.reject_len = r->reject_len;
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     STATE_MAGIC "\ninode %llu\noffset %" PRIu64 "\nline %" PRIu64
                                 "\nreject_len %" PRIu64 "\n",
                     (unsigned long long)pos.inode, pos.offset, pos.line, pos.reject_len);
    int fd = open(r->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, buf, (size_t)n);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(r->tmp_path, r->state_path) != 0)
        rc = -errno;
    if (rc == 0) {
        int dfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0)
                rc = -errno;
            close(dfd);
        }
    }
    return rc;
}
