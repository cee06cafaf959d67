#!/usr/bin/python3
"""Append a demo stream of 12345 hotline orders (JSON lines) to a file, for gd-hotline --follow.

    deploy/demo/hotline_feed.py OUT [--rate N] [--count N] [--town CODE] [--seed N]

Writes --rate orders per second (default 2) until --count orders (default 0:
until stopped by SIGTERM or SIGINT). Units and categories come from the demo
district (deploy/demo/data/*.csv): 40% of the orders are located at a
community of the demo town (--town, served by run-local's demo worker, so
they get resolved), the rest at a grid anywhere in the district (nobody
serves those queues, so they wait for their deadlines). A quarter use the
demo category LV-9901, whose limits are seconds: unsigned, those escalate
within a minute. Ticket numbers carry the start time, so a second run adds
new orders instead of repeating old ones. The names and phone numbers are
made up. Standard library only.
"""

import argparse
import csv
import json
import os
import random
import signal
import sys
import time
from datetime import datetime, timedelta, timezone

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FAST_CATEGORY = "LV-9901"
CST = timezone(timedelta(hours=8))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
ISSUES = ["路灯不亮", "垃圾未清运", "下水道堵塞", "噪音扰民", "占道经营", "楼道堆放杂物",
          "井盖缺失", "停车纠纷", "树木倒伏", "漏水", "违规搭建", "宠物扰民"]
URGENCY = ["normal"] * 8 + ["urgent"] * 2 + ["emergency"]


def read_csv(name):
    with open(os.path.join(DATA, name), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="file to append to (created when missing)")
    ap.add_argument("--rate", type=float, default=2.0, help="orders per second [2]")
    ap.add_argument("--count", type=int, default=0, help="orders to write; 0 = until stopped")
    ap.add_argument("--town", default="500113001", help="the demo worker's town [500113001]")
    ap.add_argument("--seed", type=int, default=None, help="random seed [time]")
    args = ap.parse_args()
    if args.rate <= 0:
        ap.error("--rate must be positive")

    units = read_csv("org_units.csv")
    communities = [u["code"] for u in units
                   if u["level"] == "community" and u["code"].startswith(args.town)]
    grids = [u["code"] for u in units if u["level"] == "grid" and u["kind"] == "regular"]
    categories = [c["code"] for c in read_csv("categories.csv") if c["code"] != FAST_CATEGORY]
    if not communities or not grids or not categories:
        sys.exit(f"hotline_feed.py: no communities of town {args.town} in {DATA}")

    rng = random.Random(args.seed)
    stop = []
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.append(1))
    prefix = datetime.now(CST).strftime("%Y%m%d%H%M%S")
    period = 1.0 / args.rate
    start = time.monotonic()
    n = 0
    with open(args.out, "a", encoding="utf-8") as out:
        while not stop and (args.count == 0 or n < args.count):
            n += 1
            order = {
                "ticket_no": f"12345-{prefix}-{n:06d}",
                "received_at": datetime.now(CST).isoformat(timespec="seconds"),
                "caller_name": rng.choice(SURNAMES) + rng.choice(GIVEN),
                "caller_phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                "category": FAST_CATEGORY if rng.random() < 0.25 else rng.choice(categories),
                "content": f"{rng.choice(ISSUES)} (demo order {n})",
                "urgency": rng.choice(URGENCY),
            }
            if rng.random() < 0.4:
                order["community"] = rng.choice(communities)
            else:
                order["grid"] = rng.choice(grids)
            out.write(json.dumps(order, ensure_ascii=False) + "\n")
            out.flush()
            delay = start + n * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    print(f"hotline_feed.py: wrote {n} orders to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
