"""Training objectives and loops shared by every model (EgoNCE, paper §3 Eq. 1; the trainer)."""
