"""Training half of emolens (needs the ``train`` extra: torch). Never imported by the inference path."""
