"""``bench`` subcommands owned by the reports package: ``table``, ``compare``."""
