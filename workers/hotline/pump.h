/* pump.h - gd-hotline's submit window: orders in flight to the broker, in line order, committed as
 * a prefix. */
#ifndef GD_HOTLINE_PUMP_H
#define GD_HOTLINE_PUMP_H

#include <stdbool.h>
#include <stdint.h>

#include "city.h"
#include "feed.h"
#include "intake.h"
#include "resume.h"
#include "svcnotify.h"

struct pump_config {
    unsigned window;      /* orders in flight at once, 1..1000 */
    unsigned batch;       /* due orders of a shard sent in one SUBMITS, 1..GD_MAX_SUBMITS (1: each
                             order its own SUBMIT) */
    int timeout_ms;       /* resend an unanswered SUBMIT after this */
    uint32_t failover_ms; /* a broker silent this long while orders wait: the next endpoint of
                             its list (intake_failover_due()); 0 never */
    int save_ms;          /* longest time between state saves while busy */
    int poll_ms;          /* follow: look for new lines this often */
    int log_level;        /* 0 error .. 3 debug */
};

struct pump_stats {
    uint64_t lines, accepted, duplicates, rejected, busy, resent, failovers;
    uint64_t submit_msgs;     /* SUBMIT messages sent (an order alone) */
    uint64_t submits_msgs;    /* SUBMITS messages sent */
    uint64_t submits_orders;  /* orders they carried */
    uint64_t batches_refused; /* SUBMITS refused as a whole (their orders then went alone) */
};

/* Runs the feed to its end (or, following, until `stop_fd` becomes
 * readable: a signalfd), keeping at most cfg->window orders in flight. The
 * orders due at once for one shard go in SUBMITS messages of up to
 * cfg->batch orders (one alone as a SUBMIT); an item's outcome counts as
 * its SUBMIT's would, and the orders of a SUBMITS the broker refuses as a
 * whole are sent again one by one. BUSY and `limit` answers (of an order or
 * of a whole SUBMITS) are waited out and the orders sent again.
 * The resume position only ever covers lines whose outcome is final and
 * all lines before them, so a crash at any point neither skips an order
 * nor lists a bad line twice; resubmits after a crash are answered
 * duplicate by the broker. With a `city`, in[i] is the intake of shard i
 * (n_in of them) and each order goes to the shard that owns the town of its
 * unit, else to the city's default shard (which must be set), so that a
 * resubmit reaches the same shard; without one, in[0] takes everything
 * (n_in is 1). An intake with a list of endpoints (an HA pair) whose
 * broker is silent for cfg->failover_ms while orders wait moves to the next
 * endpoint, and every order waiting on it is sent there at once. Every turn of the loop feeds the
 * systemd watchdog through `notify` (which bounds each wait), and a signal sends STOPPING=1.
 * Returns 0 when everything read was committed, 1 when stopped by a signal (what was committed is
 * saved), -EINVAL for a cfg->batch out of range, or -errno. */
int pump_run(const struct pump_config *cfg, struct feed *feed, struct intake *const *in,
             size_t n_in, const struct city *city, struct resume *res, int stop_fd,
             struct svcnotify *notify, struct pump_stats *ret_stats);

#endif
