"""Cluster-wide rate limits: token buckets in Ray actors, leased to replicas in small batches.

config.py (the `rate_limits:` section) · scope.py (which buckets a request counts against) ·
estimate.py (the token reservation) · bucket.py (the buckets and their leases) · lease.py (a
replica's allowances) · actor.py (the bucket actors, or a board in this process) · stage.py
(the chain stage, the settle sink and the headers). See docs/rate-limits.md.
"""
