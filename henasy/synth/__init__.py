"""Deterministic synthetic egocentric dataset generator (``bench data synth``).

Writes real H.264 mp4 files and every annotation file of the dataset layout (henasy/data/layout.py) in the
official formats of Ego4D/EgoClip/EgoMCQ/NLQ/MQ, EPIC-KITCHENS-100, EGTEA Gaze+ and HelpingHands, plus
per-frame instance masks for entity grounding. Modules: ``world`` (taxonomy, held-out compositions),
``scene`` (scripts), ``motion`` (per-frame tracks), ``background`` and ``render`` (pixels and masks),
``encode`` (PyAV), ``handobj`` (100DOH boxes), ``media`` (one video's files), ``language`` (texts),
``ego4d``/``episodic``/``epic``/``egtea``/``grounding`` (annotation writers), ``formats`` (byte-stable
file writing), ``sizes`` and ``generate`` (orchestration). No torch import anywhere.
"""

from henasy.synth.generate import generate
from henasy.synth.sizes import SIZES

__all__ = ["SIZES", "generate"]
