"""Queue gauges against hand-counted expectations: depth, in flight and overdue as incidents
pass their deadlines and move through their lifecycle (PROTOCOL §12.2 `gauge`).

The category T-FAST has wall-clock limits of seconds (faultload.make_fast_category), so
deadlines pass while the test watches; gauges come every 200 ms (--gauge-ms).
"""

import faultload
import gdclient
from demo import GRID
from faultload import CAT_FAST

SIGN_S, RESOLVE_S = 2, 5


def gauge(status, queue, pred, what, timeout=10):
    """The first gauge of `queue` for which pred(gauge) holds (fields left out at their
    defaults, as the protocol allows)."""
    def full(m):
        return {**gdclient.GAUGE_DEFAULTS, **m.body}
    try:
        m = status.topic("queue." + queue, lambda m: m.body.get("queue") == queue and pred(full(m)),
                         timeout=timeout)
    except gdclient.Timeout:
        seen = [full(m) for m in status.inbox if m.body.get("queue") == queue][-3:]
        raise AssertionError(f"no gauge of {queue} with {what}; the last ones: {seen}") from None
    return full(m)


def test_overdue_counts_what_passed_its_deadline_and_follows_the_lifecycle(make_broker, pg):
    faultload.make_fast_category(pg, sign_s=SIGN_S, resolve_s=RESOLVE_S)
    broker = make_broker()
    status = broker.status("queue.")
    intake = broker.intake()
    ids = []
    for i in range(3):
        r = intake.submit(source="gauges", external_id=f"g-{i}", category=CAT_FAST,
                          location={"unit": GRID})
        assert r.type == "ACCEPTED", r
        ids.append(r["incident_id"])

    # queued, within the sign limit
    gauge(status, GRID, lambda g: g["depth"] == 3 and g["overdue"] == 0, "three queued")
    # the sign limit passes: all three are overdue
    gauge(status, GRID, lambda g: g["depth"] == 3 and g["overdue"] == 3, "three overdue")

    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    # delivered, not signed: the sign deadline still applies
    gauge(status, GRID, lambda g: g["in_flight"] == 1 and g["overdue"] == 3, "one delivered")
    ok = w.sign(d)
    assert ok.type == "OK", ok
    # signed: no sign deadline any more, and the resolve limit has not passed yet (a
    # signed incident frees its credit: the next one is delivered, unsigned and overdue)
    gauge(status, GRID, lambda g: g["depth"] + g["in_flight"] == 3 and g["overdue"] == 2,
          "one signed")
    # the resolve limit passes: the signed one is overdue again
    gauge(status, GRID, lambda g: g["depth"] + g["in_flight"] == 3 and g["overdue"] == 3,
          "the signed one past its resolve deadline", timeout=RESOLVE_S + 5)
    ok = w.resolve(d["incident"]["id"], ok["version"], result="done")
    assert ok.type == "OK", ok
    # resolved: gone from the count (the next one is delivered: overdue, unsigned)
    gauge(status, GRID, lambda g: g["overdue"] == 2 and g["depth"] + g["in_flight"] == 2,
          "one resolved")
    # the worker leaves: what it held goes back, still overdue
    w.bye()
    gauge(status, GRID, lambda g: g["depth"] == 2 and g["in_flight"] == 0 and g["overdue"] == 2,
          "all back in the queue")
