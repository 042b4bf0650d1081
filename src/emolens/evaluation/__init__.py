"""Evaluation of trained models: metrics, figures, predictors and run comparison.

- :mod:`.metrics`: ``compute_metrics`` (accuracy, F1s, per-class, confusion matrix, ROC AUC, ECE, NLL),
  ``fit_temperature`` / ``apply_temperature``; pure numpy + scikit-learn.
- :mod:`.plots`: ``confusion_matrix.png``, ``roc.png``, ``reliability.png``.
- :mod:`.predict`: ``load_predictor(path)`` -> an ONNX (torch-free) or checkpoint predictor, flip TTA.
- :mod:`.runner`: ``evaluate_model`` behind ``emolens evaluate`` (label checks, train-duplicate exclusion).
- :mod:`.compare`: run-folder summaries behind ``emolens compare``.

Nothing is imported here, so importing one submodule does not pull in the others' dependencies.
"""
