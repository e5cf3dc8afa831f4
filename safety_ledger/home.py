"""Where safety-ledger keeps its state: one folder, $SAFETY_LEDGER_HOME (default ./var)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None) -> "Home":
        return cls(Path(root or os.environ.get("SAFETY_LEDGER_HOME") or "var").resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def literature_landing(self) -> Path:
        return self.root / "literature"

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def data_docs(self) -> Path:
        return self.root / "data_docs"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "safety.duckdb"

    @property
    def cache(self) -> Path:
        """Derived files that only save work (safe to delete: they are made again)."""
        return self.root / "cache"

    @property
    def key_file(self) -> Path:
        return self.root / "secret.key"

    @property
    def lock_file(self) -> Path:
        return self.root / ".ingest.lock"

    def ensure(self) -> "Home":
        for d in (self.landing, self.literature_landing, self.events, self.quarantine,
                  self.data_docs, self.warehouse.parent):
            d.mkdir(parents=True, exist_ok=True)
        return self
