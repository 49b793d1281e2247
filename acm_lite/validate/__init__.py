"""Repository rules: small functions from declared objects to coded problems.

Each module holds one rule (or a few tightly related ones); ``acm_lite.declare`` runs them in the
order Config Sync applies them. No I/O, except that ``schema`` reads the packaged schemas and keeps
its compiled validators in the cache directory.
"""
