"""A run on disk and its assembly: the run directory, its lock, its event log, and starting or resuming a search."""
