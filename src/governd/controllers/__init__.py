"""Controllers: reconcile loops from ledger aggregates back into governance (none yet)."""
