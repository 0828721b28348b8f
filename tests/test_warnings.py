"""The warnings policy of the test run (`filterwarnings` in pyproject.toml): a deprecation
raised from our own code fails the test; a third-party one is shown, or ignored by name."""

import warnings

import pytest
from sqlalchemy.exc import SADeprecationWarning


def warn_from(module: str, message: str, category: type[Warning]) -> list:
    """Raise `message` as if `module` had warned; returns what was recorded (shown)."""
    with warnings.catch_warnings(record=True) as shown:  # the run's filters still decide
        warnings.warn_explicit(message, category, f"{module}.py", 1, module=module)
    return shown


@pytest.mark.parametrize("module", ["core.modeling.train", "api.main", "ui.charts", "tests.x"])
@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning])
def test_a_deprecation_raised_by_our_code_fails(module, category):
    with pytest.raises(category):
        warn_from(module, "this call is deprecated", category)


def test_a_third_party_deprecation_is_shown_not_fatal():
    [shown] = warn_from("pandas.core.frame", "this call is deprecated", DeprecationWarning)
    assert shown.category is DeprecationWarning
    assert warn_from("corelib.x", "this call is deprecated", DeprecationWarning)  # not `core`


def test_a_known_third_party_warning_is_ignored_by_its_message():
    message = "The ``noload`` loader strategy is deprecated and will be removed"
    assert warn_from("mlflow.store.tracking.sqlalchemy_store", message, SADeprecationWarning) == []
    # The same message raised from our code is ours to fix.
    with pytest.raises(SADeprecationWarning):
        warn_from("core.tracking.registry", message, SADeprecationWarning)
