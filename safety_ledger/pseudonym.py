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
    """site_id, patient_ref -> pseudonym. A patient's reference comes back in every file
    and submission of its site, so the pseudonyms made are kept, up to CACHE_SIZE of them
    (then the cache starts empty again), in memory only, like the references being read."""
    CACHE_SIZE = 2**17

    def __init__(self, key: bytes):
        # the HMAC with its key set up once: each pseudonym starts from a copy of it
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self._made: dict[tuple[str, str], str] = {}

    def __call__(self, site_id: str, patient_ref: str | None) -> str | None:
        if patient_ref is None:
            return None
        made = self._made.get((site_id, patient_ref))
        if made is None:
            mac = self._keyed.copy()
            mac.update(f"{site_id}\x1f{patient_ref}".encode("utf-8"))
            made = "P-" + mac.hexdigest()[:24]
            if len(self._made) >= self.CACHE_SIZE:
                self._made.clear()
            self._made[(site_id, patient_ref)] = made
        return made
