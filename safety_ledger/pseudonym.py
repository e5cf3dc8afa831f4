"""Keyed HMAC pseudonyms for patient_ref: the raw reference never leaves ingestion.

The key comes from $SAFETY_LEDGER_SECRET, else from `<home>/secret.key`, created once
with mode 0600. The same key gives the same pseudonym across submissions and runs.
Pseudonyms are namespaced by site, since a patient_ref is only unique within a site:
a pseudonym is "P-" and the first 24 hex digits of HMAC-SHA256(key, site_id US patient_ref).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ENV_VAR = "SAFETY_LEDGER_SECRET"


def load_key(key_file: Path) -> bytes:
    env = os.environ.get(ENV_VAR)
    if env:
        return env.encode("utf-8")
    if key_file.exists():
        return key_file.read_bytes().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key_file.read_bytes().strip()


class Pseudonymizer:
    """site_id, patient_ref -> pseudonym, one at a time (__call__) or a column at once
    (`column`). A patient's reference comes back in every file and submission of its
    site, so the pseudonyms a column needed are kept per site, as Arrow arrays looked up
    in one vectorized step (a dict looked up once per distinct reference cost a quarter
    more), up to CACHE_SIZE of them in all (then they start empty again: about 40 MB),
    in memory only, like the references being read."""
    CACHE_SIZE = 2**20

    def __init__(self, key: bytes):
        # the HMAC with its key set up once: each pseudonym starts from a copy of it
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._made: dict[str, tuple[pa.Array, pa.Array]] = {}   # site -> (references, pseudonyms)

    def __call__(self, site_id: str, patient_ref: str | None) -> str | None:
        if patient_ref is None:
            return None
        mac = self._keyed.copy()
        mac.update(f"{site_id}\x1f{patient_ref}".encode("utf-8"))
        return "P-" + mac.hexdigest()[:24]

    def column(self, site_id: str, refs: pa.Array) -> pa.Array:
        """Each reference's pseudonym (null stays null): one HMAC per reference not met
        before in this site."""
        coded = refs.dictionary_encode()
        distinct = coded.dictionary
        known, made = self._made.get(site_id) or (pa.array([], pa.string()), pa.array([], pa.string()))
        at = pc.index_in(distinct, value_set=known)
        new = pc.is_null(at).to_numpy(zero_copy_only=False)
        if not new.any():
            return made.take(at).take(coded.indices)
        refs_new = distinct.filter(pa.array(new))
        made_new = pa.array([self(site_id, r) for r in refs_new.to_pylist()], type=pa.string())
        at = np.where(new, len(known) + np.cumsum(new) - 1, pc.fill_null(at, 0).to_numpy())
        made = pa.concat_arrays([made, made_new])
        pseudonyms = made.take(at).take(coded.indices)
        if sum(len(k) for k, _ in self._made.values()) + len(refs_new) <= self.CACHE_SIZE:
            self._made[site_id] = (pa.concat_arrays([known, refs_new]), made)
        else:   # full: start again with this column's new references (if they fit)
            self._made = {site_id: (refs_new, made_new)} if len(refs_new) <= self.CACHE_SIZE else {}
        return pseudonyms
