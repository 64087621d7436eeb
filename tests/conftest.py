"""What every test starts from, whatever machine runs the suite."""

from __future__ import annotations

import pytest

# Variables the plugin reads to pick its defaults: CI switches the adversarial check to its
# derandomised ci profile. CI services set it, so without this the suite would test one profile
# on a laptop and another in CI; tests that want CI set it themselves.
PLUGIN_ENV = ("CI",)


@pytest.fixture(autouse=True)
def _environment_of_a_developer_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)
