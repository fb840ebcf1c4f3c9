"""One module per scenario of BENCHMARKS.md, each a function that measures and returns its section.

=====  =================  ==========================================================================
 no.   module             what it measures
=====  =================  ==========================================================================
 1     ``per_user``       per-user updates per vendor, beside the naive loop, ``HttpHook`` and dlt
 2     ``mass_update``    User.com's mass update against hand-written chunks and a per-user loop
 3     ``streaming``      warehouse rows streamed through ``stream_sql`` + ``from_records``: memory
 4     ``rate_limit``     a vendor limited to 50 requests/s (429 + ``Retry-After``)
 5     ``capacity``       what the sandbox itself serves on this machine
 6     ``incremental``    ``benchmarks.incremental`` (its own interpreter and sandbox) as a section
 7     ``quota``          ``benchmarks.quota`` (tasks sharing one quota, deferral) as a section
 8     ``warehouses``     ``benchmarks.warehouses`` (incremental diff per engine) as a section
=====  =================  ==========================================================================

``benchmarks.run`` picks and orders them; the plumbing they share lives one level up (``sandbox``,
``processes``, ``measure``, ``cases``, ``report``).
"""
