"""Serving emolens models on engines people already run (NVIDIA Triton Inference Server).

:mod:`.triton_repo` writes a Triton model repository from the packaged models;
:mod:`.triton_client` classifies faces through a running Triton over HTTP. Both need the
``cluster`` extra (``pip install 'emolens[cluster]'``) and depend on the engine, never the reverse.
"""
