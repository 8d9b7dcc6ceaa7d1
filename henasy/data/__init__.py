"""Data loaders: one module per annotation format, the clip loader (PyAV, or decord), and DataLoader helpers.

Every loader reads the *official* file formats (EgoClip/EgoMCQ from EgoVLP, EPIC-KITCHENS-100, EGTEA Gaze+,
Ego4D NLQ/MQ, HelpingHands' 100DOH boxes, the grounding masks) in the dataset layout of
``henasy/data/layout.py``, for real and synthetic data alike, and fails with a ``DataFormatError`` that names the
file, the line/column or JSON key path, and what was expected.

Modules (import the one you need; this package imports nothing heavy):
``parsing`` (strict CSV/JSON helpers), ``safe_pickle`` (restricted unpickler), ``taxonomy``, ``egoclip``,
``egomcq``, ``verb_phrases``, ``ek100``, ``egtea``, ``nlq``, ``mq``, ``handobj``, ``grounding`` (formats);
``transforms`` (resize/crop/normalise), ``video`` (frame sampling, video layouts, ``ClipLoader``),
``batching`` (datasets, collate, skip policy, ``make_dataloader``), ``egoclip_dataset`` (training dataset).
"""
