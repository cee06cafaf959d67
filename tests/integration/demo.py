"""Units and categories of the demo district (deploy/demo/data) the broker tests use."""

import itertools

DISTRICT = "500113"                    # 巴南区
TOWN = "500113001"                     # 龙洲湾街道
COMMUNITY = "500113001001"             # 融门社区
GRID = "500113001001001"               # 融门社区第1网格
MICRO_GRID = "50011300100100101"       # its first micro-grid
SPECIAL_COMMUNITY = "500113001012"     # 滨街社区
SPECIAL_GRID = "500113001012901"       # 巴南区人民医院 (special grid under 滨街社区)
OTHER_GRID = "500113001012001"         # a regular grid of 滨街社区

CAT_GRID = "LH-0101"        # 暴露垃圾: livelihood, admitted down to grids
CAT_COMMUNITY = "EC-0103"   # 个体工商户登记求助: economy, community
CAT_TOWN = "EC-0101"        # 涉企政策咨询: economy, town
CAT_DISTRICT = "EC-0102"    # 营商环境投诉: economy, district

# Reporter data that must never reach the status topic or the logs.
PII_NAME = "张三丰测试"
PII_PHONE = "13912345678"
PII_ADDRESS = "龙洲大道88号3单元"

_ext = itertools.count(1)


def submission(external_id=None, category=CAT_GRID, unit=GRID, priority="normal", **extra):
    """A valid SUBMIT body (without ref); `unit=None` leaves the location out."""
    body = {
        "source": "hotline",
        "external_id": external_id or f"T-{next(_ext):06d}",
        "category": category,
        "priority": priority,
        "description": "路灯不亮，夜间行人摔倒",
        "reporter": {"name": PII_NAME, "phone": PII_PHONE, "address": PII_ADDRESS},
    }
    if unit is not None:
        body["location"] = {"unit": unit, "address": "龙洲大道88号"}
    body.update(extra)
    return body
