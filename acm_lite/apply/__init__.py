"""Writing to a cluster. ``writes`` builds every request that creates, changes or deletes an
object (drift repair and the status store send theirs through it too); ``applier`` executes a
change set with them, waiting for CRDs (``wait``) between levels; ``inventory`` records what a
sync applied in ResourceInventory parts. Only the daemon's Lease and Events are written
elsewhere (``reconcile.leader``, ``reconcile.events``)."""
