"""Fleet-scale replay on Ray: many drives through the normal pipeline, resumable, as Parquet.

``fusionrt fleet run`` (:mod:`fusionrt.fleet.runner`) replays drives as Ray tasks and writes
the tables of :mod:`fusionrt.fleet.results`; ``fusionrt fleet report``
(:mod:`fusionrt.fleet.report`) sums them up and compares runs. Needs the ``ray`` extra (ray,
pyarrow); importing this package does not import Ray.
"""
