"""Files → objects: reading manifests, the hierarchical and unstructured formats, selectors.

No network or cluster I/O happens here; only ``reader`` (through ``files``) touches the filesystem.
"""
