"""Driving the pipeline: one pass on one cluster (``pipeline``), and the daemon that runs passes
in a loop per sync (``daemon``) with what it needs around it: drift repair, leader election, live
Namespaces, RootSyncs to follow, Events, its HTTP endpoints. The fleet (``acm_lite.fleet``) runs
passes across clusters on the same ``pipeline``."""
