"""Whole-submission checks: folder names, manifest.json, checksums, row counts.

A submission that fails any of them is rejected whole: nothing of it becomes an event.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import contract, values
from .csv_reader import FileRejected, count_rows


class SubmissionRejected(Exception):
    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class Manifest:
    ids: dict[str, str]         # e.g. {"site_id": ..., "submission_id": ...}
    exported_at: datetime
    files: dict[str, dict]      # file name -> {"sha256", "rows"}
    sha256: str                 # of manifest.json's bytes


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_names(site_id: str, submission_id: str) -> None:
    if not contract.ID_PATTERN_SITE.match(site_id):
        raise SubmissionRejected("folder.site_id", f"site folder name {site_id!r} is not 2-32 characters "
                                 "of A-Z a-z 0-9 _ -: rename the folder")
    if not contract.ID_PATTERN_SUBMISSION.match(submission_id):
        raise SubmissionRejected("folder.submission_id", f"submission folder name {submission_id!r} is not "
                                 "1-64 characters of A-Z a-z 0-9 _ -: rename the folder")


def load_manifest(folder: Path, files_key: str = "files", id_keys=("site_id", "submission_id"),
                  known_files=tuple(contract.FILES)) -> Manifest:
    """Read and check a manifest: ids equal the folder names, every listed file present
    with its SHA-256 and row count, no unlisted CSV. Raises SubmissionRejected."""
    expected_ids = (folder.parent.name, folder.name) if len(id_keys) == 2 else (folder.name,)
    path = folder / contract.MANIFEST
    if path.is_symlink() or not path.is_file():
        raise SubmissionRejected("manifest.not_a_file", "manifest.json is not a regular file")
    raw = path.read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SubmissionRejected("manifest.invalid_json", f"manifest.json is not valid JSON ({e}): re-export it") from e
    if not isinstance(doc, dict):
        raise SubmissionRejected("manifest.invalid_json", "manifest.json must be a JSON object")
    if doc.get("schema_version") != contract.SCHEMA_VERSION:
        raise SubmissionRejected("manifest.schema_version",
                                 f"manifest schema_version is {doc.get('schema_version')!r}; this pipeline reads 1")
    for key, expected in zip(id_keys, expected_ids):
        if doc.get(key) != expected:
            raise SubmissionRejected(f"manifest.{key}",
                                     f"manifest {key} {doc.get(key)!r} differs from its folder name {expected!r}")
    try:
        exported_at = values.parse_timestamp(str(doc.get("exported_at")))
    except values.Invalid:
        raise SubmissionRejected("manifest.exported_at", f"manifest exported_at {doc.get('exported_at')!r} "
                                 "is not an ISO 8601 timestamp with an offset") from None
    files = doc.get(files_key)
    if not isinstance(files, dict):
        raise SubmissionRejected("manifest.files", f"manifest has no '{files_key}' object")
    for name, entry in files.items():
        if name not in known_files:
            raise SubmissionRejected("manifest.unknown_file", f"manifest lists {name!r}, which is not a file of "
                                     f"the contract ({', '.join(known_files)})")
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not isinstance(entry.get("rows"), int) or isinstance(entry.get("rows"), bool)
                or entry["rows"] < 0):
            raise SubmissionRejected("manifest.files", f"manifest entry for {name} needs a 'sha256' string "
                                     "and a 'rows' count")
    present = {p.name for p in folder.iterdir() if p.name.lower().endswith(".csv")}
    unlisted = sorted(present - set(files))
    if unlisted:
        raise SubmissionRejected("file.unlisted", f"{', '.join(unlisted)} present but not listed in "
                                 "manifest.json: list it or remove it")
    for name, entry in files.items():
        p = folder / name
        if p.is_symlink() or not p.is_file():
            raise SubmissionRejected("file.missing", f"{name} is listed in manifest.json but "
                                     f"{'is a symbolic link' if p.is_symlink() else 'missing'}: "
                                     "the transfer is incomplete, send it again")
        digest = file_sha256(p)
        if digest != entry["sha256"].lower():
            raise SubmissionRejected("file.checksum", f"{name} SHA-256 is {digest}, manifest says "
                                     f"{entry['sha256']}: the file was changed or truncated, send it again")
        try:
            n = count_rows(p)
        except FileRejected as e:
            raise SubmissionRejected(e.rule, e.message) from e
        if n != entry["rows"]:
            raise SubmissionRejected("file.row_count", f"{name} has {n} data rows, manifest says "
                                     f"{entry['rows']}: re-export the submission")
    return Manifest(dict(zip(id_keys, expected_ids)), exported_at, dict(files),
                    hashlib.sha256(raw).hexdigest())
