"""Routing of new incidents to queues (DESIGN §3), dispatch from triage, priority order."""

import pytest

from demo import (CAT_COMMUNITY, CAT_DISTRICT, CAT_GRID, CAT_TOWN, COMMUNITY, DISTRICT, GRID,
                  MICRO_GRID, OTHER_GRID, SPECIAL_COMMUNITY, SPECIAL_GRID, TOWN, submission)

ROUTES = [
    ("grid_category_at_a_grid_lands_on_the_grid", CAT_GRID, GRID, GRID, GRID, "grid"),
    ("grid_category_at_a_micro_grid_lands_on_its_grid", CAT_GRID, MICRO_GRID, GRID, GRID,
     "grid"),
    ("community_category_at_a_grid_lands_on_its_community", CAT_COMMUNITY, GRID, COMMUNITY,
     COMMUNITY, "community"),
    ("community_category_at_a_micro_grid_lands_on_its_community", CAT_COMMUNITY, MICRO_GRID,
     COMMUNITY, COMMUNITY, "community"),
    ("grid_category_at_a_community_stays_on_the_community", CAT_GRID, COMMUNITY, COMMUNITY,
     COMMUNITY, "community"),
    ("town_category_lands_on_the_towns_sector_queue", CAT_TOWN, GRID, f"{TOWN}.economy", TOWN,
     "town"),
    ("town_category_at_the_town_itself", CAT_TOWN, TOWN, f"{TOWN}.economy", TOWN, "town"),
    ("district_category_lands_on_the_district_queue", CAT_DISTRICT, GRID, DISTRICT, DISTRICT,
     "district"),
    ("grid_category_at_a_special_grid_lands_on_the_special_grid", CAT_GRID, SPECIAL_GRID,
     SPECIAL_GRID, SPECIAL_GRID, "grid"),
    ("community_category_at_a_special_grid_lands_on_its_community", CAT_COMMUNITY, SPECIAL_GRID,
     SPECIAL_COMMUNITY, SPECIAL_COMMUNITY, "community"),
]


@pytest.mark.parametrize("category,unit,queue,owner,level", [r[1:] for r in ROUTES],
                         ids=[r[0] for r in ROUTES])
def test_new_incident_is_routed_to_the_admitted_level(broker, pg, category, unit, queue, owner,
                                                       level):
    r = broker.intake().submit(**submission(category=category, unit=unit))
    assert r.type == "ACCEPTED", r
    assert r["queue"] == queue
    row = pg.incident(r["incident_id"])
    assert (row["queue"], row["owner_unit"], row["owner_level"]) == (queue, owner, level)
    assert row["location_unit"] == unit
    ev = pg.events(r["incident_id"])
    assert [(e["kind"], e["to_state"], e["queue"]) for e in ev] == [("receive", "QUEUED", queue)]


TRIAGE = [
    ("unknown_category", dict(category="XX-9999")),
    ("no_category", dict(category="")),
    ("no_location", dict(unit=None)),
    ("unknown_location_unit", dict(unit="500113999999999")),
    ("location_is_the_district", dict(unit=DISTRICT)),
]


@pytest.mark.parametrize("fields", [t[1] for t in TRIAGE], ids=[t[0] for t in TRIAGE])
def test_incident_that_cannot_be_routed_goes_to_triage(broker, pg, fields):
    body = submission(**fields)
    if body["category"] == "":
        del body["category"]
    r = broker.intake().submit(**body)
    assert r.type == "ACCEPTED", r
    assert r["queue"] == "triage"
    row = pg.incident(r["incident_id"])
    assert row["queue"] == "triage" and row["state"] == "QUEUED"
    assert row["owner_level"] == "district"


def test_dispatch_from_triage_moves_it_to_the_chosen_units_queue(broker, pg):
    intake = broker.intake()
    r = intake.submit(**submission("DSP-1", category="XX-9999"))
    assert r["queue"] == "triage"
    w = broker.worker(queues=[OTHER_GRID], credit=1)
    done = intake.dispatch(r["incident_id"], r["version"], OTHER_GRID, "路灯归滨街社区")
    assert done.type == "DONE", done
    assert done["queue"] == OTHER_GRID and done["state"] == "QUEUED"
    assert done["version"] == r["version"] + 1
    d = w.deliver()
    assert d["incident"]["id"] == r["incident_id"]
    assert d["incident"]["queue"] == OTHER_GRID
    row = pg.wait_incident(r["incident_id"], lambda row: row["state"] == "DELIVERED",
                           hub=broker.hub)
    assert row["owner_unit"] == OTHER_GRID and row["owner_level"] == "grid"
    ev = pg.events(r["incident_id"])
    assert [e["kind"] for e in ev] == ["receive", "dispatch", "deliver"]
    dispatch = ev[1]
    assert (dispatch["from_state"], dispatch["to_state"]) == ("QUEUED", "QUEUED")
    assert dispatch["queue"] == OTHER_GRID and dispatch["note"] == "路灯归滨街社区"


def test_dispatch_to_a_town_with_a_known_category_uses_its_sector_queue(broker, pg):
    intake = broker.intake()
    r = intake.submit(**submission("DSP-2", category=CAT_TOWN, unit=None))
    assert r["queue"] == "triage"
    done = intake.dispatch(r["incident_id"], r["version"], TOWN)
    assert done.type == "DONE" and done["queue"] == f"{TOWN}.economy", done


def test_dispatch_with_a_stale_version_is_rejected(broker, pg):
    intake = broker.intake()
    r = intake.submit(**submission("DSP-3", unit=None))
    bad = intake.dispatch(r["incident_id"], r["version"] + 5, GRID)
    assert bad.type == "REJECTED" and bad["code"] == "stale_version", bad
    assert pg.incident(r["incident_id"])["queue"] == "triage"


def test_dispatch_to_an_unknown_unit_is_rejected(broker, pg):
    intake = broker.intake()
    r = intake.submit(**submission("DSP-4", unit=None))
    bad = intake.dispatch(r["incident_id"], r["version"], "999999")
    assert bad.type == "REJECTED" and bad["code"] == "not_found" and bad["field"] == "unit", bad
    assert pg.kinds(r["incident_id"]) == ["receive"]


def test_delivery_order_is_by_priority_then_first_in_first_out(broker):
    intake = broker.intake()
    order = [("N1", "normal"), ("U1", "urgent"), ("N2", "normal"), ("E1", "emergency"),
             ("U2", "urgent"), ("E2", "emergency"), ("N3", "normal")]
    ids = {}
    for ext, prio in order:
        r = intake.submit(**submission(ext, priority=prio))
        assert r.type == "ACCEPTED", r
        ids[r["incident_id"]] = ext
    w = broker.worker(queues=[GRID], credit=len(order))
    got = [ids[w.deliver()["incident"]["id"]] for _ in order]
    assert got == ["E1", "E2", "U1", "U2", "N1", "N2", "N3"]
