"""Baseline models re-implemented for the benchmark tables (LaViLa; HelpingHands builds on it).

Each module mirrors one official code base (own code; each cites the upstream file)
and exposes factory functions registered in ``henasy.core.catalog.MODELS``.
"""
