"""The HENASY model (Vo et al., NeurIPS 2024), a peer of ``baselines/lavila.py`` and ``baselines/helpinghands.py``.

``network`` (the dual encoder with its local entity encoder and registered factories ``henasy`` /
``henasy_tiny``, paper §3), ``grouping`` (bootstrapping and entity-aware grouping blocks, Eq. 10–11),
``decoder`` (entity-aware decoder, §3.2), ``losses`` (NEC, VEC and projection losses, Eq. 6–9) and
``verb_phrases`` (verb-phrase text for VEC). It imports only the framework core (``henasy.core``), data
helpers and the LaViLa backbone it is built on.
"""
