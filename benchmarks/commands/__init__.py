"""``bench`` subcommands owned by the benchmarks package: ``eval``."""
