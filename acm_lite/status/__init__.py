"""What a sync did, as data (``model``) and kept in the cluster (``store``); the command line
shows it to people (``cli.report``)."""
