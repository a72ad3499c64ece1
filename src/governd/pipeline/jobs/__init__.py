"""Accelerator jobs: submitted (budget held), queued, scheduled, executed, settled, recorded.

``pipeline`` runs them (``Jobs``), ``terms`` says what a submission may ask
and what it holds, ``state`` is a job as this process holds it, ``entries``
the ledger entry a job ends with.
"""
