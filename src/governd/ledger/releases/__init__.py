"""Releases in the ledger's database: their state, their arms' counts, the runs pinned to an arm."""
