"""Where governance keeps live counters: in this process, or Redis shared by replicas.

``setup`` picks the state the config names and builds budgets over it;
``redis_budgets``, ``redis_limits`` and ``redis_runs`` are the Redis backends
of budgets, rate limits and runs.
"""
