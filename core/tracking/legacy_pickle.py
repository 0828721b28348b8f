"""Reading a champion promoted before skops (`model.pkl`, a cloudpickle) without running
any code from it.

A pickle names the functions and classes that rebuild it, and `pickle.loads` calls them: a
crafted file runs whatever it names (`os.system`, `eval`...). `read_legacy` unpickles with
a `find_class` that admits only classes by name: `model_format.TRUSTED_TYPES`, the sklearn
types our families are made of (`SKLEARN_TYPES`, which skops trusts by default), and numpy's
array reconstruction. Any other name ends the read, refused, before anything is called.
The previous release's module paths (`core.features`, `core.models`, `core.rules`) are read
as today's (`LEGACY_MODULES`). The trees are then checked as a skops model's are.
"""

from __future__ import annotations

import importlib
import io
import pickle
from collections.abc import Iterable
from typing import Any

from core.errors import Conflict

# Where the previous release's classes live now (the package restructuring).
LEGACY_MODULES = {
    "core.features": "core.modeling.features",
    "core.models": "core.modeling.models",
    "core.rules": "core.modeling.rules",
}

# The sklearn types a pickled model of our families holds (skops trusts them by default).
SKLEARN_TYPES = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.link.Interval",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.__pyx_unpickle_CyHalfMultinomialLoss",  # rebuilds the one above
    }
)

# What rebuilds numpy arrays, scalars and random generators (HistGradientBoosting keeps one).
NUMPY_RECONSTRUCTION = frozenset(
    {
        "numpy.ndarray",
        "numpy.dtype",
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy._core.numeric._frombuffer",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pcg64.PCG64",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    }
)


class _TrustedUnpickler(pickle.Unpickler):
    """Unpickles only the `allowed` names; anything else raises before it is called."""

    def __init__(self, data: bytes, allowed: frozenset[str]):
        super().__init__(io.BytesIO(data))
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        module = LEGACY_MODULES.get(module, module)
        if "." in name or f"{module}.{name}" not in self.allowed:
            raise pickle.UnpicklingError(f"{module}.{name} is not a trusted type")
        return getattr(importlib.import_module(module), name)


def read_legacy(data: bytes, name: str, trusted_types: Iterable[str]) -> Any:
    """The model pickled in `data` (the file `name`), rebuilt from `trusted_types`
    (`model_format.TRUSTED_TYPES`), `SKLEARN_TYPES` and `NUMPY_RECONSTRUCTION` only;
    Conflict naming the first other name it uses, or why it cannot be read."""
    allowed = frozenset(trusted_types) | SKLEARN_TYPES | NUMPY_RECONSTRUCTION
    try:
        return _TrustedUnpickler(data, allowed).load()
    except pickle.UnpicklingError as error:
        raise Conflict(f"{name} refused: {error}") from None
    except Exception as error:  # a truncated or malformed pickle
        raise Conflict(f"{name} could not be read as a pickled model: {error}") from None
