"""Talking to one Kubernetes API server: connection, discovery, live state.

The only package besides ``apply`` and ``status.store`` that performs cluster I/O.
"""
