"""Baseline models re-implemented for the benchmark tables (LaViLa; HelpingHands builds on it).

Each module mirrors one official code base (facts from ``shared/reference/anchors-models.md``, own code)
and exposes factory functions registered in ``henasy.catalog.MODELS``.
"""
