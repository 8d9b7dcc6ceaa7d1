"""Subcommands of ``bench``; each module defines ``register(subparsers)`` and imports heavy code lazily."""
