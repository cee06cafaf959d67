#!/usr/bin/python3
"""Generate the demo district's CSV files: org tree, categories, time limits, calendar.

The district is shaped like Banan district, Chongqing (500113): its real 23
towns/streets, 313 communities/villages, ~2,000 grids of ~400 households,
micro-grids of ~50 households and ~30 special grids. Town and street names
are real; their 3-digit codes, and every community, village, grid and
household count below them, are made up (deterministically, from a fixed
seed), so the same command always writes the same files.

    deploy/demo/gen_demo.py [OUTDIR]      (default: deploy/demo/data/)

Writes org_units.csv, categories.csv, category_sla.csv and calendar.csv in
the column layout deploy/import-csv.sh expects, and prints the counts.
Standard library only.
"""

import csv
import os
import random
import sys
from datetime import date, timedelta

SEED = 500113
DISTRICT = ("500113", "巴南区")

# (name, street?) in code order: streets 街道 get 001-099, towns 镇 100-199.
TOWNS = [
    ("龙洲湾街道", True), ("鱼洞街道", True), ("花溪街道", True), ("李家沱街道", True),
    ("南泉街道", True), ("一品街道", True), ("南彭街道", True), ("惠民街道", True),
    ("界石镇", False), ("安澜镇", False), ("跳石镇", False), ("木洞镇", False),
    ("双河口镇", False), ("麻柳嘴镇", False), ("丰盛镇", False), ("二圣镇", False),
    ("东温泉镇", False), ("姜家镇", False), ("天星寺镇", False), ("接龙镇", False),
    ("石滩镇", False), ("石龙镇", False), ("圣灯山镇", False),
]
N_COMMUNITIES = 313
N_GRIDS = 2000
GRID_HOUSEHOLDS = (300, 500)
MICRO_GRID_HOUSEHOLDS = 50

# Community (社区) and village (村) names are two characters from these
# lists plus the suffix; combinations are drawn without repetition.
URBAN_FIRST = "龙鱼滨渝金锦华新融和兴盛康安宁惠民光明阳春翠碧云星丽泉城江鹿箭巴南"
URBAN_SECOND = "江湖苑园城港湾府坊街门桥林岸洲庭景秀华馨泰福苑路坝台"
RURAL_FIRST = "石红白青黄新大小长高双金银龙凤鹤松柏桂梅竹桃杨马牛狮虎观天东西南北中上下清明福寿"
RURAL_SECOND = "岗岩坝桥湾坪沟塘林山溪河坡垭院峰田堡寺庙园场滩井口"

# Special grids (专属网格): (town, name). Each hangs under a community of
# that town and gets a code in 901-999 under it.
SPECIAL_GRIDS = [
    ("龙洲湾街道", "巴南区人民医院"), ("龙洲湾街道", "龙洲湾商圈"), ("龙洲湾街道", "巴南区政务服务中心"),
    ("鱼洞街道", "巴南区中医院"), ("鱼洞街道", "鱼洞中学"), ("鱼洞街道", "鱼洞农贸市场"),
    ("花溪街道", "花溪工业园区"), ("花溪街道", "花溪小学"),
    ("李家沱街道", "李家沱中学"), ("李家沱街道", "李家沱滨江商业街"),
    ("南泉街道", "南泉风景区"), ("南泉街道", "南泉中心小学"),
    ("一品街道", "一品中心卫生院"), ("南彭街道", "南彭公路物流基地"), ("南彭街道", "南彭中学"),
    ("惠民街道", "惠民医养中心"), ("界石镇", "界石工业园区"), ("界石镇", "界石汽摩产业园"),
    ("界石镇", "界石中学"), ("安澜镇", "安澜中心卫生院"), ("木洞镇", "木洞古镇景区"),
    ("木洞镇", "木洞中学"), ("麻柳嘴镇", "麻柳嘴中心小学"), ("丰盛镇", "丰盛古镇景区"),
    ("二圣镇", "二圣茶叶产业园"), ("东温泉镇", "东温泉景区"), ("姜家镇", "姜家敬老院"),
    ("接龙镇", "接龙中心卫生院"), ("石滩镇", "石滩农产品加工园"), ("圣灯山镇", "圣灯山中心小学"),
]

# Category catalogue. Normal-priority resolve limits are in working hours
# (8 per working day): consultation 3 WD, help 5-7 WD, complaint 13-15 WD,
# city management items per sub-category (exposed rubbish 1 WD, dirty road
# 5 h, illegal construction 15 WD). Outages (停水/停电/停气) are emergencies
# due within 24 h of wall clock, other emergencies the same day (12 h).
# (code, name, sector, admitted_level, default_priority, group, resolve_wh, outage)
WD = 8
# Demo-only items with limits of seconds on the wall clock, so that a local run
# (deploy/run-local.sh) shows warnings and escalations within a minute:
# code -> (sign_limit_s, resolve_limit_s, warn_percent).
FAST = {"LV-9901": (20, 60, 50)}
CATEGORIES = [
    ("LV-9901", "演示：秒级时限事项 (demo: limits in seconds)", "livelihood", "grid", "normal",
     "演示", 1, False),
    # 民生服务: city management facilities and events
    ("LH-0101", "暴露垃圾", "livelihood", "grid", "normal", "市容环境", 1 * WD, False),
    ("LH-0102", "道路不洁", "livelihood", "grid", "normal", "市容环境", 5, False),
    ("LH-0103", "乱堆物堆料", "livelihood", "grid", "normal", "市容环境", 2 * WD, False),
    ("LH-0104", "违规张贴小广告", "livelihood", "grid", "normal", "宣传广告", 2 * WD, False),
    ("LH-0106", "楼道和公共区域卫生差", "livelihood", "grid", "normal", "市容环境", 1 * WD, False),
    ("LH-0105", "违规设置户外广告", "livelihood", "town", "normal", "宣传广告", 15 * WD, False),
    ("LH-0201", "井盖破损或缺失", "livelihood", "grid", "urgent", "公共设施", 1 * WD, False),
    ("LH-0202", "路灯损坏", "livelihood", "community", "normal", "公共设施", 5 * WD, False),
    ("LH-0203", "供水管道破裂", "livelihood", "town", "urgent", "公共设施", 1 * WD, False),
    ("LH-0204", "停水", "livelihood", "town", "emergency", "公共设施", 1 * WD, True),
    ("LH-0205", "停电", "livelihood", "town", "emergency", "公共设施", 1 * WD, True),
    ("LH-0206", "停气", "livelihood", "town", "emergency", "公共设施", 1 * WD, True),
    ("LH-0207", "绿地和行道树损毁", "livelihood", "community", "normal", "园林绿化", 7 * WD, False),
    ("LH-0301", "占道经营", "livelihood", "grid", "normal", "街面秩序", 1 * WD, False),
    ("LH-0302", "乱停放非机动车", "livelihood", "grid", "normal", "街面秩序", 1 * WD, False),
    ("LH-0303", "噪声扰民", "livelihood", "grid", "normal", "街面秩序", 13 * WD, False),
    ("LH-0401", "施工扬尘", "livelihood", "town", "normal", "施工管理", 5 * WD, False),
    ("LH-0402", "渣土车辆抛洒", "livelihood", "town", "normal", "施工管理", 5 * WD, False),
    # 民生服务: 12345-style consultation, help and complaint items
    ("LH-0501", "独居老人探访求助", "livelihood", "grid", "normal", "养老服务", 5 * WD, False),
    ("LH-0504", "特殊困难群体走访需求", "livelihood", "grid", "normal", "养老服务", 5 * WD, False),
    ("LH-0502", "养老服务政策咨询", "livelihood", "community", "normal", "养老服务", 3 * WD, False),
    ("LH-0503", "高龄失能老人帮扶", "livelihood", "community", "normal", "养老服务", 7 * WD, False),
    ("LH-0601", "社会保险政策咨询", "livelihood", "town", "normal", "社会保障", 3 * WD, False),
    ("LH-0602", "低保和临时救助申请", "livelihood", "community", "normal", "社会保障", 7 * WD, False),
    ("LH-0603", "医疗保险办理求助", "livelihood", "town", "normal", "社会保障", 5 * WD, False),
    ("LH-0701", "物业服务投诉", "livelihood", "community", "normal", "物业管理", 15 * WD, False),
    # 平安法治
    ("SF-0101", "楼道堆物消防隐患", "safety", "grid", "urgent", "消防安全", 1 * WD, False),
    ("SF-0102", "电动自行车入户充电", "safety", "grid", "urgent", "消防安全", 1 * WD, False),
    ("SF-0107", "高空抛物隐患", "safety", "grid", "urgent", "消防安全", 2 * WD, False),
    ("SF-0103", "燃气泄漏", "safety", "town", "emergency", "突发事件", 1 * WD, False),
    ("SF-0104", "地质灾害和危房隐患", "safety", "town", "urgent", "安全生产", 5 * WD, False),
    ("SF-0105", "企业安全生产隐患", "safety", "town", "normal", "安全生产", 13 * WD, False),
    ("SF-0106", "防汛险情", "safety", "district", "emergency", "突发事件", 1 * WD, False),
    ("SF-0201", "邻里纠纷", "safety", "grid", "normal", "矛盾纠纷", 7 * WD, False),
    ("SF-0202", "婚姻家庭纠纷", "safety", "community", "normal", "矛盾纠纷", 13 * WD, False),
    ("SF-0203", "劳资纠纷和拖欠工资", "safety", "town", "normal", "矛盾纠纷", 15 * WD, False),
    ("SF-0204", "土地山林权属纠纷", "safety", "town", "normal", "矛盾纠纷", 15 * WD, False),
    ("SF-0301", "治安隐患", "safety", "community", "urgent", "治安防控", 5 * WD, False),
    ("SF-0302", "违法建设", "safety", "town", "normal", "治安防控", 15 * WD, False),
    ("SF-0303", "群体性突发事件", "safety", "district", "emergency", "突发事件", 1 * WD, False),
    # 经济发展
    ("EC-0101", "涉企政策咨询", "economy", "town", "normal", "营商环境", 3 * WD, False),
    ("EC-0102", "营商环境投诉", "economy", "district", "normal", "营商环境", 15 * WD, False),
    ("EC-0103", "个体工商户登记求助", "economy", "community", "normal", "营商环境", 5 * WD, False),
    ("EC-0201", "农业生产技术求助", "economy", "town", "normal", "农业农村", 7 * WD, False),
    ("EC-0202", "农村集体经济事务", "economy", "community", "normal", "农业农村", 13 * WD, False),
    ("EC-0301", "商品价格和质量投诉", "economy", "district", "normal", "市场监管", 15 * WD, False),
    # 党的建设
    ("PB-0101", "党员组织关系转接咨询", "party", "community", "normal", "党员服务", 3 * WD, False),
    ("PB-0102", "流动党员服务", "party", "community", "normal", "党员服务", 5 * WD, False),
    ("PB-0103", "党员志愿服务需求", "party", "grid", "normal", "党员服务", 5 * WD, False),
    ("PB-0201", "困难党员帮扶", "party", "community", "normal", "组织建设", 7 * WD, False),
    ("PB-0202", "基层党组织建设建议", "party", "town", "normal", "组织建设", 7 * WD, False),
    ("PB-0301", "党员干部作风问题反映", "party", "district", "normal", "作风建设", 15 * WD, False),
]

# Official PRC holiday arrangements: (first holiday, last holiday, name,
# make-up working days). Sources: 国务院办公厅关于2025年部分节假日安排的通知
# (国办发明电〔2024〕12号, 2024-11-12) and 国务院办公厅关于2026年部分节假日
# 安排的通知 (2025-11-04).
HOLIDAYS = [
    ("2025-01-01", "2025-01-01", "元旦", []),
    ("2025-01-28", "2025-02-04", "春节", ["2025-01-26", "2025-02-08"]),
    ("2025-04-04", "2025-04-06", "清明节", []),
    ("2025-05-01", "2025-05-05", "劳动节", ["2025-04-27"]),
    ("2025-05-31", "2025-06-02", "端午节", []),
    ("2025-10-01", "2025-10-08", "国庆节、中秋节", ["2025-09-28", "2025-10-11"]),
    ("2026-01-01", "2026-01-03", "元旦", ["2026-01-04"]),
    ("2026-02-15", "2026-02-23", "春节", ["2026-02-14", "2026-02-28"]),
    ("2026-04-04", "2026-04-06", "清明节", []),
    ("2026-05-01", "2026-05-05", "劳动节", ["2026-05-09"]),
    ("2026-06-19", "2026-06-21", "端午节", []),
    ("2026-09-25", "2026-09-27", "中秋节", []),
    ("2026-10-01", "2026-10-07", "国庆节", ["2026-09-20", "2026-10-10"]),
]


def share(total, weights, minimum, rng):
    """Split TOTAL into len(WEIGHTS) integers >= MINIMUM, proportional to WEIGHTS.

    Largest-remainder rounding, ties broken by RNG; the parts sum to TOTAL.
    """
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError("total too small for the minimum")
    wsum = sum(weights)
    exact = [spare * w / wsum for w in weights]
    parts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], rng.random()))
    for i in order[: spare - sum(parts)]:
        parts[i] += 1
    return [p + minimum for p in parts]


def names(first, second, suffix, count, rng, taken):
    """COUNT distinct names FIRST-char + SECOND-char + SUFFIX not in TAKEN."""
    pool = sorted({a + b + suffix for a in first for b in second if a != b})
    rng.shuffle(pool)
    out = [n for n in pool if n not in taken][:count]
    if len(out) < count:
        raise ValueError("name pool exhausted")
    taken.update(out)
    return out


def build_org(rng):
    """Return the org rows (parents first) and a dict of counts."""
    rows = []
    district_code, district_name = DISTRICT

    # Towns: streets 001.., towns 100..
    towns = []
    street_no, town_no = 1, 100
    for name, street in TOWNS:
        if street:
            code = f"{district_code}{street_no:03d}"
            street_no += 1
        else:
            code = f"{district_code}{town_no:03d}"
            town_no += 1
        towns.append({"code": code, "name": name, "street": street})

    # Communities per town: streets are bigger and urban (mostly 社区, a few
    # 村 at the edge of town); towns are mostly villages with 1-3 社区 at the
    # town seat.
    weights = [rng.uniform(1.1, 1.6) if t["street"] else rng.uniform(0.7, 1.1) for t in towns]
    per_town = share(N_COMMUNITIES, weights, 6, rng)
    taken = set()
    communities = []
    for town, n in zip(towns, per_town):
        if town["street"]:
            n_villages = rng.choice([0, 0, 0, 1, 2, 3])
        else:
            n_villages = n - rng.randint(1, 3)
        n_urban = n - n_villages
        urban = names(URBAN_FIRST, URBAN_SECOND, "社区", n_urban, rng, taken)
        rural = names(RURAL_FIRST, RURAL_SECOND, "村", n_villages, rng, taken)
        for i, name in enumerate(urban, start=1):
            communities.append({"code": f"{town['code']}{i:03d}", "name": name,
                                "town": town, "urban": True})
        for i, name in enumerate(rural, start=200):
            communities.append({"code": f"{town['code']}{i:03d}", "name": name,
                                "town": town, "urban": False})

    # Grids per community: dense urban communities have more.
    weights = [rng.uniform(6, 11) if c["urban"] else rng.uniform(3, 7) for c in communities]
    per_community = share(N_GRIDS, weights, 2, rng)

    grid_rows, micro_rows = [], []
    for community, n in zip(communities, per_community):
        community["households"] = 0
        for g in range(1, n + 1):
            hh = rng.randint(*GRID_HOUSEHOLDS)
            gcode = f"{community['code']}{g:03d}"
            gname = f"{community['name']}第{g}网格"
            grid_rows.append([gcode, gname, "grid", "regular", community["code"], hh])
            community["households"] += hh
            n_micro = max(1, round(hh / MICRO_GRID_HOUSEHOLDS))
            split = share(hh, [rng.uniform(0.8, 1.2) for _ in range(n_micro)], 1, rng)
            for m, mhh in enumerate(split, start=1):
                micro_rows.append([f"{gcode}{m:02d}", f"{gname}第{m}微网格", "micro_grid",
                                   "regular", gcode, mhh])

    # Special grids: under a community of their town; no households.
    special_rows = []
    next_special = {}
    for town_name, name in SPECIAL_GRIDS:
        candidates = [c for c in communities if c["town"]["name"] == town_name]
        community = rng.choice(candidates)
        k = next_special.get(community["code"], 901)
        next_special[community["code"]] = k + 1
        special_rows.append([f"{community['code']}{k:03d}", name, "grid", "special",
                             community["code"], ""])

    town_hh = {t["code"]: 0 for t in towns}
    for c in communities:
        town_hh[c["town"]["code"]] += c["households"]
    total_hh = sum(town_hh.values())

    rows.append([district_code, district_name, "district", "regular", "", total_hh])
    rows += [[t["code"], t["name"], "town", "regular", district_code, town_hh[t["code"]]]
             for t in towns]
    rows += [[c["code"], c["name"], "community", "regular", c["town"]["code"], c["households"]]
             for c in communities]
    rows += grid_rows + special_rows + micro_rows

    counts = {
        "towns": len(towns),
        "streets": sum(t["street"] for t in towns),
        "communities": len(communities),
        "residents' committees (社区)": sum(c["urban"] for c in communities),
        "villages (村)": sum(not c["urban"] for c in communities),
        "grids": len(grid_rows),
        "micro-grids": len(micro_rows),
        "special grids": len(special_rows),
        "households": total_hh,
        "org units": len(rows),
    }
    return rows, counts


def build_sla():
    """One row per category and priority; limits in seconds."""
    hour = 3600
    wd = WD * hour
    rows = []
    for code, _name, _sector, _level, _prio, _group, resolve_wh, outage in sorted(CATEGORIES):
        if code in FAST:
            sign, resolve, warn = FAST[code]
            rows += [[code, p, "wall", sign, resolve, warn, 0]
                     for p in ("normal", "urgent", "emergency")]
            continue
        normal = resolve_wh * hour
        # Sign-for within 1 WD, or half the resolve limit when that is shorter.
        rows.append([code, "normal", "working", min(wd, normal // 2), normal, 80,
                     min(normal, 10 * wd)])
        # Urgent: sign-for within 2 working hours, resolve in half the time
        # (at least half a working day, never more than the normal limit).
        urgent = max(normal // 2, min(4 * hour, normal))
        rows.append([code, "urgent", "working", min(2 * hour, urgent // 2), urgent, 80,
                     min(urgent, 10 * wd)])
        # Emergency: wall clock; sign-for within 30 minutes; outages within
        # 24 h, everything else the same day.
        emergency = (24 if outage else 12) * hour
        rows.append([code, "emergency", "wall", 30 * 60, emergency, 80, emergency])
    return rows


def build_calendar():
    rows = []
    for first, last, name, makeup in HOLIDAYS:
        d, end = date.fromisoformat(first), date.fromisoformat(last)
        source = f"{first[:4]}年国务院办公厅节假日安排"
        while d <= end:
            rows.append([d.isoformat(), "false", f"{name} ({source})"])
            d += timedelta(days=1)
        for m in makeup:
            rows.append([m, "true", f"{name}调休上班 ({source})"])
    rows.sort()
    return rows


def write(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        sys.stderr.write(__doc__)
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = argv[1] if len(argv) == 2 else os.path.join(here, "data")
    os.makedirs(outdir, exist_ok=True)

    rng = random.Random(SEED)
    org, counts = build_org(rng)
    write(os.path.join(outdir, "org_units.csv"),
          ["code", "name", "level", "kind", "parent", "households"], org)
    write(os.path.join(outdir, "categories.csv"),
          ["code", "name", "sector", "admitted_level", "default_priority", "group_name"],
          [c[:6] for c in sorted(CATEGORIES)])
    sla = build_sla()
    write(os.path.join(outdir, "category_sla.csv"),
          ["category", "priority", "basis", "sign_limit_s", "resolve_limit_s", "warn_percent",
           "max_extension_s"], sla)
    calendar = build_calendar()
    write(os.path.join(outdir, "calendar.csv"), ["day", "working", "name"], calendar)

    counts["categories"] = len(CATEGORIES)
    counts["grid-admitted categories"] = sum(c[3] == "grid" for c in CATEGORIES)
    counts["SLA rows"] = len(sla)
    counts["calendar days"] = len(calendar)
    print(f"wrote {outdir}")
    for k, v in counts.items():
        print(f"  {k:30} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
