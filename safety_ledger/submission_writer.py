"""Write a contract-v1 submission folder: CSV files first, manifest.json last.

Used by the seed sample, the synthetic generator and the tests, so that all of them
produce exactly what a site would send.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from . import contract
from .atomic import write_bytes, write_text


def csv_bytes(header: Sequence[str], rows: Iterable[Mapping[str, object] | Sequence[object]]) -> tuple[bytes, int]:
    """RFC 4180 CSV (CRLF line ends, minimal quoting) and its number of data rows.

    Rows are dicts by column name or sequences in header order; None is an empty cell,
    lists are joined with ';', booleans are written true/false.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        values = [row.get(c) for c in header] if isinstance(row, Mapping) else list(row)
        writer.writerow([_cell(v) for v in values])
        n += 1
    return buf.getvalue().encode("utf-8"), n


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_submission(landing: Path, site_id: str, submission_id: str, exported_at: str,
                     files: Mapping[str, Iterable[Mapping[str, object]]],
                     header_order: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write `<landing>/<site_id>/<submission_id>/` with one CSV per entry of `files`
    (file name -> rows as dicts) and a manifest listing each one's SHA-256 and row count.
    The manifest is written last, so a reader never sees a half-written submission."""
    folder = Path(landing) / site_id / submission_id
    listed = {}
    for name, rows in files.items():
        header = (header_order or {}).get(name) or contract.FILES[name].column_names
        data, n = csv_bytes(header, rows)
        write_bytes(folder / name, data)
        listed[name] = {"sha256": sha256_hex(data), "rows": n}
    manifest = {"schema_version": contract.SCHEMA_VERSION, "site_id": site_id,
                "submission_id": submission_id, "exported_at": exported_at, "files": listed}
    write_text(folder / contract.MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return folder
