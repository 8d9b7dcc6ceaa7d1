"""Subcommands of ``bench``; each module declares ``NAME``, ``HELP``, ``DESCRIPTION``, ``EPILOG``,
``add_arguments(parser)`` and ``run(args)`` (``henasy.cli.add_command`` builds the parser) and imports heavy
code lazily, inside ``run``."""
