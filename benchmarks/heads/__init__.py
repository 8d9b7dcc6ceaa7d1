"""Downstream heads trained on pre-extracted features: VSLNet-style span predictor (EgoNLQ) and a
multi-scale temporal detector (EgoMQ), plus their shared training loop. Compact re-implementations."""
