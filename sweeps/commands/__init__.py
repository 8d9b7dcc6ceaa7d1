"""``bench`` subcommands owned by the sweeps package: ``sweep``, ``status``, ``sync``."""
