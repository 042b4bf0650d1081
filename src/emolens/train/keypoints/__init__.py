"""Training facial-keypoint regressors with the classification trainer's pieces.

- :mod:`.targets`: points in pixels <-> the unit coordinates models predict; tensors of a split.
- :mod:`.augment`: :class:`~.augment.KeypointAugment`, augmentation that moves the points too.
- :mod:`.trainer`: :class:`~.trainer.KeypointTrainer` (same run folder, checkpoints, exact resume).
- :mod:`.export`: ONNX export with point names in the metadata and a parity check.
- :mod:`.recipe`: keypoint defaults under a YAML recipe and CLI overrides.

Nothing is imported here, so importing one submodule does not pull in the others.
"""
