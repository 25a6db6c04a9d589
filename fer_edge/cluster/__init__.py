"""Classify beyond one machine: the same rows as the local engine, computed by a pool of Ray actors.

plan (files, and long videos split into chunks of sampled frames) -> worker (one work item through one
Recognizer: the local engine's own code) -> merge (chunk results back into the local engine's FileResults,
in order) -> ray_engine (Ray Data: map_batches over an actor pool, streamed back in order). Only
ray_engine imports ray (the `ray` extra).
"""
