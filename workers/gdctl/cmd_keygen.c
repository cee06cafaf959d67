/* cmd_keygen.c - gdctl keygen: a CurveZMQ key pair for the broker or one of its principals. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "gdctl.h"

/* Writes `text` to `path`, created with `mode` (never overwriting). */
static int write_new(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int rc = n == (ssize_t)len ? 0 : -EIO;
    if (fsync(fd) != 0 && rc == 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* gdctl keygen NAME [DIR]: DIR/NAME.key (the key pair, mode 0600: give it
 * to NAME only) and DIR/NAME.pub (the public key, for the broker's
 * principals file or for clients to know the broker). */
int cmd_keygen(struct gdctl *g, int argc, char **argv)
{
    if (argc < 2 || argc > 3 || !argv[1][0] || strchr(argv[1], '/'))
        return gdctl_usage("keygen");
    const char *name = argv[1], *dir = argc == 3 ? argv[2] : ".";
    char public[41], secret[41];
    if (zmq_curve_keypair(public, secret) != 0)
        return gdctl_fail(g, EXIT_LOCAL, "curve", "this libzmq has no CURVE support: %s",
                          zmq_strerror(errno));
    char keypath[4096], pubpath[4096], text[512];
    snprintf(keypath, sizeof(keypath), "%s/%s.key", dir, name);
    snprintf(pubpath, sizeof(pubpath), "%s/%s.pub", dir, name);
    snprintf(text, sizeof(text),
             "# CurveZMQ key pair of %s (gdctl keygen). Secret: readable by %s only.\n"
             "public = %s\nsecret = %s\n",
             name, name, public, secret);
    int rc = write_new(keypath, 0600, text);
    memset(text, 0, sizeof(text));
    memset(secret, 0, sizeof(secret));
    if (rc < 0)
        return gdctl_fail(g, EXIT_LOCAL, "write", "cannot create %s: %s", keypath, strerror(-rc));
    snprintf(text, sizeof(text), "# CurveZMQ public key of %s (gdctl keygen)\npublic = %s\n",
             name, public);
    rc = write_new(pubpath, 0644, text);
    if (rc < 0)
        return gdctl_fail(g, EXIT_LOCAL, "write", "cannot create %s: %s", pubpath, strerror(-rc));
    if (g->json) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "name", name, "public", public, "key_file",
                              keypath);
        json_dumpf(o, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(o);
    } else {
        printf("%s\n%s\n\nfor the broker's principals file:\n[%s]\nkey = %s\n"
               "role = intake        ; intake, worker, sla, dashboard or admin\n"
               "scope = 500113       ; org-unit codes (subtrees); the district code = all\n",
               keypath, pubpath, name, public);
    }
    return EXIT_OK;
}
