"""The only stage that writes objects to a cluster: it executes a change set."""
