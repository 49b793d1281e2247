"""Sources: fetch a revision of a Git repository (or read a local directory) into an immutable
snapshot. The only stage that talks to Git."""
