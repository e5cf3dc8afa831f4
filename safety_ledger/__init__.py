"""safety-ledger domain core."""
