"""The shared training loop: run configuration, trainer, callbacks (EgoNCE itself lives in ``henasy.core``)."""
