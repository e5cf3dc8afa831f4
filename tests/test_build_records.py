"""Warehouse build: retractions (and their cascade), orphans, the date rules, data_issues.

Every expected figure is worked out by hand from the events written here.
"""
from __future__ import annotations

import pytest

from eventkit import build_home, infusion, irae, one, patient, reaction, retraction, rows, write_batch
from safety_ledger.home import Home


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


def totals(path) -> tuple[int, int, int]:
    """(infusions, reaction_infusions, patients) over all sites."""
    r = one(path, "SELECT sum(infusions) AS i, sum(reaction_infusions) AS r, sum(patients) AS p "
                  "FROM marts.reaction_rate_by_site")
    return (r["i"], r["r"], r["p"])


def issues(path) -> list[tuple]:
    return [(r["site_id"], r["record_type"], r["ref"], r["issue"])
            for r in rows(path, "SELECT * FROM marts.data_issues")]


def two_patients(home, **extra) -> None:
    # P1: I1 (reaction R1 grade 2), I2; irAE E1.  P2: I3 (reaction R3 grade 1); irAE E2.
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z",
                patients=[patient("P1", recorded_at="2025-05-01T00:00:00Z"), patient("P2")],
                infusions=[infusion("I1", "P1", cycle=1),
                           infusion("I2", "P1", cycle=2, started_at="2025-01-31T09:00:00+08:00"),
                           infusion("I3", "P2", cycle=1)],
                reactions=[reaction("R1", "I1", grade=2), reaction("R3", "I3", grade=1)],
                iraes=[irae("E1", "P1", onset_date="2025-02-03"),
                       irae("E2", "P2", onset_date="2025-02-04")], **extra)


def test_before_any_retraction(home):
    two_patients(home)
    path = build_home(home)
    # 3 infusions, 2 with a reaction, 2 patients; irAEs: 2 in February 2025 (hepatitis).
    assert totals(path) == (3, 2, 2)
    assert one(path, "SELECT events, patients FROM marts.irae_monthly") == {"events": 2, "patients": 2}
    assert issues(path) == []


def test_retracted_patient_takes_infusions_reactions_and_iraes(home):
    two_patients(home)
    # The retraction is recorded BEFORE the patient's own recorded_at (2025-05-01): it
    # still removes the record - a retraction applies whatever the order.
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z",
                retractions=[retraction("patient", "P1", recorded_at="2025-04-01T00:00:00Z")])
    path = build_home(home)
    # Left: P2 with I3 (R3) -> 1 infusion, 1 with a reaction, 1 patient; irAE E2 only.
    assert totals(path) == (1, 1, 1)
    assert rows(path, "SELECT month::VARCHAR AS m, category, events, patients FROM marts.irae_monthly") == [
        {"m": "2025-02-01", "category": "hepatitis", "events": 1, "patients": 1}]
    # Cascade, not a data issue: the history keeps them, the figures do not count them.
    assert issues(path) == []
    status = {r["infusion_ref"]: r["status"] for r in rows(path, "SELECT * FROM core.infusion_status")}
    assert status == {"I1": "parent_retracted", "I2": "parent_retracted", "I3": "current"}
    assert one(path, "SELECT status FROM core.reaction_status WHERE reaction_ref = 'R1'")["status"] == "parent_retracted"


def test_retracted_infusion_takes_its_reactions(home):
    two_patients(home)
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z",
                retractions=[retraction("infusion", "I1")])
    path = build_home(home)
    # Left: I2 (no reaction), I3 (R3) -> 2 infusions, 1 with a reaction; P1 and P2 still
    # have an infusion each -> 2 patients.  Both irAEs stay.
    assert totals(path) == (2, 1, 2)
    assert one(path, "SELECT sum(events) AS n FROM marts.irae_monthly")["n"] == 2
    # P1 has no index reaction any more: only P2 (R3 on I3, no later infusion).
    assert rows(path, "SELECT patient_key FROM core.patient_rechallenge") == [{"patient_key": "P2"}]


def test_retracted_reaction_and_irae(home):
    two_patients(home)
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z",
                retractions=[retraction("reaction", "R1"), retraction("irae", "E2")])
    path = build_home(home)
    # 3 infusions stay, only I3 has a reaction now; irAEs: E1 only.
    assert totals(path) == (3, 1, 2)
    assert one(path, "SELECT events FROM marts.irae_monthly")["events"] == 1


def test_a_record_retracted_twice_at_the_same_time_keeps_the_first_ingested_reason(home):
    """core.retracted_records.reason is the first retraction's: by recorded_at, then
    ingested_at, then event_id; never whichever the scan met first (a full replay and an
    incremental build must agree).  Here the later-ingested batch is the one read first."""
    two_patients(home)
    same = "2025-06-01T12:00:00Z"
    write_batch(home, "b2", ingested_at="2025-06-03T00:00:00Z",
                retractions=[retraction("infusion", "I1", reason="duplicate entry", recorded_at=same)])
    write_batch(home, "b3", ingested_at="2025-06-02T00:00:00Z",
                retractions=[retraction("infusion", "I1", reason="wrong patient", recorded_at=same)])
    path = build_home(home)
    assert rows(path, "SELECT ref, retractions, reason FROM core.retracted_records") == [
        {"ref": "I1", "retractions": 2, "reason": "wrong patient"}]


def test_retraction_is_scoped_to_its_site(home):
    two_patients(home)
    write_batch(home, "x1", site_id="SITE-X", ingested_at="2025-06-02T00:00:00Z",
                retractions=[retraction("infusion", "I1")])
    path = build_home(home)
    # SITE-X's retraction of "I1" is not SITE-A's I1: nothing leaves the figures, and the
    # retraction is listed for SITE-X as matching nothing it sent.
    assert totals(path) == (3, 2, 2)
    assert issues(path) == [("SITE-X", "infusion", "I1", "retraction_unmatched")]


def test_orphan_reaction_counts_once_its_infusion_arrives(home):
    # Batch 1: P1 and a reaction on infusion I9, which the site has not sent yet.
    write_batch(home, "b1", ingested_at="2025-06-01T00:00:00Z",
                patients=[patient("P1")], reactions=[reaction("R9", "I9", grade=3)])
    path = build_home(home)
    assert issues(path) == [("SITE-A", "reaction", "R9", "orphan")]
    assert one(path, "SELECT count(*) AS n FROM core.current_reactions")["n"] == 0
    # Batch 2: the infusion arrives; no resend of the reaction needed.
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z", infusions=[infusion("I9", "P1")])
    path = build_home(home)
    assert issues(path) == []
    r = one(path, "SELECT * FROM marts.reaction_rate_by_site")
    # 1 infusion, 1 with a reaction, grade 3 -> rate 1/1, grade 3+ 1/1.
    assert (r["infusions"], r["reaction_infusions"], r["grade3plus_infusions"]) == (1, 1, 1)


def test_orphans_and_their_children(home):
    # I5 and E5 hang off patient P5, never sent; R5 hangs off I5.  Also a reaction at
    # SITE-B on "I1", which exists only at SITE-A: parents are looked up within the site.
    write_batch(home, "a1", site_id="SITE-A", patients=[patient("P1")],
                infusions=[infusion("I1", "P1"), infusion("I5", "P5")],
                reactions=[reaction("R5", "I5")], iraes=[irae("E5", "P5")])
    write_batch(home, "b1", site_id="SITE-B", reactions=[reaction("RB", "I1")])
    path = build_home(home)
    assert sorted(issues(path)) == [
        ("SITE-A", "infusion", "I5", "orphan"),
        ("SITE-A", "irae", "E5", "orphan"),
        ("SITE-A", "reaction", "R5", "parent_excluded"),
        ("SITE-B", "reaction", "RB", "orphan"),
    ]
    # Only I1 counts, with no reaction.
    assert totals(path) == (1, 0, 1)
    # Once P5 arrives, I5, R5 and E5 all count.
    write_batch(home, "a2", site_id="SITE-A", ingested_at="2025-06-02T00:00:00Z", patients=[patient("P5")])
    path = build_home(home)
    assert sorted(issues(path)) == [("SITE-B", "reaction", "RB", "orphan")]
    assert totals(path) == (2, 1, 2)
    assert one(path, "SELECT sum(events) AS n FROM marts.irae_monthly")["n"] == 1


def test_dates_before_first_dose_are_issues_and_left_out(home):
    # P1's first dose 2025-01-10.
    #   I_early started 2025-01-09 local: before -> issue; its reaction R_early -> parent_excluded.
    #   I_edge started 2025-01-10T01:00+08:00 = 2025-01-09T17:00Z: the site's local date is
    #     2025-01-10, the first-dose day, so it is NOT before and counts.
    #   E_early onset 2025-01-05: before -> issue.  E_ok onset 2025-01-20 counts.
    write_batch(home, "b1", patients=[patient("P1", first_dose_date="2025-01-10")],
                infusions=[infusion("I_early", "P1", started_at="2025-01-09T09:00:00+08:00"),
                           infusion("I_edge", "P1", started_at="2025-01-10T01:00:00+08:00")],
                reactions=[reaction("R_early", "I_early")],
                iraes=[irae("E_early", "P1", onset_date="2025-01-05"),
                       irae("E_ok", "P1", onset_date="2025-01-20")])
    path = build_home(home)
    assert sorted(issues(path)) == [
        ("SITE-A", "infusion", "I_early", "started_before_first_dose"),
        ("SITE-A", "irae", "E_early", "onset_before_first_dose"),
        ("SITE-A", "reaction", "R_early", "parent_excluded"),
    ]
    assert totals(path) == (1, 0, 1)
    assert rows(path, "SELECT month::VARCHAR AS m, events FROM marts.irae_monthly") == [
        {"m": "2025-01-01", "events": 1}]
    detail = one(path, "SELECT detail FROM marts.data_issues WHERE ref = 'I_early'")["detail"]
    assert "2025-01-09" in detail and "2025-01-10" in detail
    # A correction of the first-dose date clears the issue.
    write_batch(home, "b2", ingested_at="2025-06-02T00:00:00Z",
                patients=[patient("P1", first_dose_date="2025-01-01", recorded_at="2025-06-01T12:00:00Z")])
    path = build_home(home)
    assert issues(path) == []
    assert totals(path) == (2, 1, 1)
