"""Fleets: many clusters, each with its labels, how to reach it (a kubeconfig, or one kept in a
Secret) and what it syncs (the fleet's repository unless it names its own). ``registry`` reads
fleet files; ``fanout`` runs a pass, or reads the status, on every cluster side by side."""
