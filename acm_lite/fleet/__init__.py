"""Fleets: many clusters, each with its labels and kubeconfig, driven from one repository."""
