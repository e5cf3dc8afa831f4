"""The peer: the three reaction-rate marts computed with pandas, the way an analyst
would write it against the Parquet events (read the files, drop_duplicates for the
current versions, merges, groupby).

    uv run python bench/peer.py --home H [--out DIR]     (DIR/<mart>.parquet)

Same semantics as bench/limit.py (marts-v1, warehouse/README.md): accepted batches only,
latest version by (recorded_at, ingested_at, event_id), retractions whatever their
order and cascading to children, orphans and infusions started before the patient's
first dose left out, Wilson 95% intervals.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import reference_cli  # bench/, beside this script

Z = 1.959964
CHEMO = {"capecitabine", "oxaliplatin", "s1", "paclitaxel", "nab_paclitaxel", "docetaxel",
         "carboplatin", "cisplatin", "fluorouracil", "etoposide", "pemetrexed", "gemcitabine",
         "irinotecan", "leucovorin"}
BEV = {"bevacizumab"}
TKI = {"apatinib", "lenvatinib", "anlotinib", "regorafenib", "fruquintinib"}
MARTS = {"reaction_rate_by_cycle": "cycle", "reaction_rate_by_tumor_type": "tumor_type",
         "reaction_rate_by_regimen": "regimen_class"}


def regimen_class(combination) -> str:
    agents = set(combination) if combination is not None else set()
    if not agents:
        return "monotherapy"
    c, b, t = bool(agents & CHEMO), bool(agents & BEV), bool(agents & TKI)
    if c and t:
        return "chemo_tki"
    if c and b:
        return "chemo_bevacizumab"
    if c:
        return "chemotherapy"
    if t:
        return "tki"
    return "other"


def wilson(x: pd.Series, n: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    x, n = x.astype(float), n.astype(float)
    p = x / n
    denom = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denom
    half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denom
    low = np.where(x == 0, 0.0, np.maximum(0.0, centre - half))
    high = np.where(x == n, 1.0, np.minimum(1.0, centre + half))
    return p, pd.Series(low, index=x.index), pd.Series(high, index=x.index)


def compute(home: Path) -> dict[str, pd.DataFrame]:
    events = Path(home) / "events"
    ledger = pd.concat([pd.read_parquet(f) for f in sorted((events / "submissions").glob("*.parquet"))])
    accepted = ledger.loc[ledger["status"] == "accepted", "batch_id"].tolist()

    def load(table: str) -> pd.DataFrame:
        files = [events / table / f"{b}.parquet" for b in accepted]
        return pd.concat([pd.read_parquet(f) for f in files if f.exists()], ignore_index=True)

    def current(df: pd.DataFrame, key: str) -> pd.DataFrame:
        df = df.sort_values(["recorded_at", "ingested_at", "event_id"])
        return df.drop_duplicates(["site_id", key], keep="last")

    retractions = load("retractions")

    def not_retracted(df: pd.DataFrame, record_type: str, key: str) -> pd.DataFrame:
        gone = retractions.loc[retractions["record_type"] == record_type, ["site_id", "ref"]]
        gone = gone.drop_duplicates().rename(columns={"ref": key})
        df = df.merge(gone, on=["site_id", key], how="left", indicator=True)
        return df[df["_merge"] == "left_only"].drop(columns="_merge")

    patients = not_retracted(current(load("patients"), "patient_key"), "patient", "patient_key")
    infusions = not_retracted(current(load("infusions"), "infusion_ref"), "infusion", "infusion_ref")
    infusions = infusions.merge(patients[["site_id", "patient_key", "tumor_type", "first_dose_date"]],
                                on=["site_id", "patient_key"], how="inner")
    before = pd.to_datetime(infusions["started_local_date"]) < pd.to_datetime(infusions["first_dose_date"])
    infusions = infusions[~before]

    reactions = not_retracted(current(load("reactions"), "reaction_ref"), "reaction", "reaction_ref")
    reactions = reactions.merge(infusions[["site_id", "infusion_ref"]], on=["site_id", "infusion_ref"])
    per_infusion = (reactions.groupby(["site_id", "infusion_ref"])["grade"]
                    .agg(reactions="size", max_grade="max").reset_index())
    infusions = infusions.merge(per_infusion, on=["site_id", "infusion_ref"], how="left")
    infusions["has_reaction"] = infusions["reactions"].fillna(0) > 0
    infusions["grade3plus"] = infusions["max_grade"].fillna(0) >= 3
    infusions["regimen_class"] = infusions["combination"].apply(regimen_class)
    infusions["patient"] = infusions["site_id"] + "|" + infusions["patient_key"]

    out = {}
    for mart, key in MARTS.items():
        g = infusions.groupby(key).agg(infusions=("infusion_ref", "size"),
                                       reaction_infusions=("has_reaction", "sum"),
                                       grade3plus_infusions=("grade3plus", "sum"),
                                       patients=("patient", "nunique")).reset_index()
        g["reaction_rate"], g["ci_low"], g["ci_high"] = wilson(g["reaction_infusions"], g["infusions"])
        g["grade3plus_rate"], g["grade3plus_ci_low"], g["grade3plus_ci_high"] = \
            wilson(g["grade3plus_infusions"], g["infusions"])
        out[mart] = g.sort_values(key).reset_index(drop=True)
    return out


def main(argv: list[str] | None = None) -> int:
    return reference_cli.main(__doc__.splitlines()[0], "peer", "in pandas", compute, argv)


if __name__ == "__main__":
    raise SystemExit(main())
