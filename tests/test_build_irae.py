"""Warehouse build: marts.irae_monthly.

Every expected figure is worked out by hand from the events written here.
"""
from __future__ import annotations

from eventkit import build_home, infusion, irae, patient, rows, write_batch
from safety_ledger.home import Home


def test_irae_monthly(tmp_path):
    home = Home(tmp_path / "home")
    write_batch(home, "b1", patients=[patient("P1"), patient("P2"), patient("P3")],
                infusions=[
                    infusion("I1", "P1", cycle=1, started_at="2025-01-10T09:00:00+08:00"),
                    infusion("I2", "P1", cycle=2, started_at="2025-02-01T09:00:00+08:00"),
                    # 2025-01-31T17:00Z in UTC, but 2025-02-01 at the site: a February infusion
                    infusion("I3", "P2", cycle=1, started_at="2025-02-01T01:00:00+08:00"),
                    infusion("I4", "P2", cycle=2, started_at="2025-02-21T09:00:00+08:00"),
                ],
                iraes=[
                    irae("E1", "P1", onset_date="2025-01-20", category="hepatitis", grade=3),
                    irae("E2", "P1", onset_date="2025-01-25", category="hepatitis", grade=1),
                    irae("E3", "P2", onset_date="2025-02-03", category="hepatitis", grade=2),
                    irae("E4", "P2", onset_date="2025-02-10", category="colitis", grade=3),
                    irae("E5", "P1", onset_date="2025-03-05", category="thyroiditis", grade=2),
                    irae("E6", "P3", onset_date="2025-03-31", category="thyroiditis", grade=4),
                ])
    got = [(r["month"].isoformat(), r["category"], r["events"], r["grade3plus_events"],
            r["patients"], r["treated_patients"])
           for r in rows(build_home(home), "SELECT * FROM marts.irae_monthly")]
    # Treated patients (distinct patients with an infusion started that month, local date):
    #   January: P1 (I1) -> 1.  February: P1 (I2), P2 (I3, I4) -> 2.  March: nobody -> 0.
    # (P3 has no infusion at all; its irAE still counts in events and patients.)
    assert got == [
        ("2025-01-01", "hepatitis", 2, 1, 1, 1),    # E1 (G3), E2 (G1); both P1
        ("2025-02-01", "colitis", 1, 1, 1, 2),      # E4 (G3), P2
        ("2025-02-01", "hepatitis", 1, 0, 1, 2),    # E3 (G2), P2
        ("2025-03-01", "thyroiditis", 2, 1, 2, 0),  # E5 (G2, P1), E6 (G4, P3)
    ]
