"""Drivers of the pipeline: one pass (``pipeline``); the daemon and the fleet build on it."""
