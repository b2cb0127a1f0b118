"""What bench, tune and ``run --address`` share to drive work on a Ray cluster.

Ray is imported lazily by each module's functions; importing this package needs no Ray.
"""
