"""What a sync did, as data (model), kept in the cluster (store) and shown to people (render)."""
