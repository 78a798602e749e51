"""Tracking a search where researchers already look: TensorBoard and MLflow (``pip install -e
'.[tracking]'``). :class:`~gp_loss.tracking.tracker.Tracker` is the search's hook;
:mod:`~gp_loss.tracking.points` what it logs; one module per backend."""
