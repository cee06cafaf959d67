/* resume.h - gd-hotline's durable resume position (state file) and its reject file, kept consistent
 * across crashes.
 *
 * The state file holds the inode of the input, the byte offset and number of
 * the last line whose outcome is final (accepted by the broker, or written
 * to the reject file), and the reject file's length at that moment. It is
 * replaced atomically (write, fsync, rename, fsync the directory), after
 * the reject file has been fsync'd. On start the reject file is cut back to
 * the recorded length: entries written after the last saved position are
 * written again when their lines are read again, so every bad line is
 * listed exactly once, in line order.
 */
#ifndef GD_HOTLINE_RESUME_H
#define GD_HOTLINE_RESUME_H

#include <stdint.h>
#include <sys/types.h>

struct resume_pos {
    ino_t inode;         /* 0: nothing saved yet */
    uint64_t offset;     /* where the next line to read starts */
    uint64_t line;       /* lines before `offset` */
    uint64_t reject_len; /* reject file length that goes with it */
};

struct resume;

/* Opens (creating) the reject file and reads the state file (a missing one
 * is a fresh start: *ret_pos zeroed). Cuts the reject file back to the
 * saved length. Returns 0 with *ret and *ret_pos, -EINVAL for a state file
 * that does not parse, or -errno. */
int resume_open(const char *state_path, const char *reject_path, struct resume **ret,
                struct resume_pos *ret_pos);

/* Closes and frees; accepts NULL. */
void resume_close(struct resume *r);

/* Appends one entry to the reject file (not yet durable). `ticket` may be
 * "". Returns 0 or -errno. */
int resume_reject(struct resume *r, ino_t inode, uint64_t line, uint64_t offset, const char *ticket,
                  const char *reason);

/* Makes the reject file durable and then records `pos` (its reject_len is
 * filled in here). Returns 0 or -errno (the previous state stays). */
int resume_save(struct resume *r, struct resume_pos pos);

#endif
