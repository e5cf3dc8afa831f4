"""Literature drops: `<dir>/<drop_id>/manifest.json` + `publications.csv`, format in
samples/literature/README.md. Ingested like a site submission: manifest checked,
rows validated by the `publications` GX suite, accepted rows written as events."""
from __future__ import annotations

from . import contract

STUDY_TYPES = ("case_report", "phase1", "phase1b_2", "phase2", "phase3", "real_world",
               "health_economics", "review", "other")

PUBLICATIONS = contract.FileSpec("publications.csv", "publication", "publication_id", (
    contract.Column("publication_id", "string", max_length=64),
    contract.Column("title", "string", max_length=1000),
    contract.Column("indication", "string", max_length=200),
    contract.Column("study_type", "enum", vocabulary=STUDY_TYPES),
    contract.Column("key_finding", "string", nullable=True, max_length=1000),
    contract.RECORDED_AT,
), contract="literature-drop-v1")
