"""Repository rules: small pure functions from declared objects to coded problems. No I/O.

Each module holds one rule (or a few tightly related ones); ``rules`` lists them in the order
Config Sync applies them.
"""
