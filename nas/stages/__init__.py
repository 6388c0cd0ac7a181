"""A job's stages, in the order ``nas.lifecycle`` runs them: teacher, baselines, supernet, search, refine.

Each is a function of a ``JobContext`` (and what earlier stages produced); none sees the coordinator.
"""
