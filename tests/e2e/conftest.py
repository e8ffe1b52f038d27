"""tests/e2e: end-to-end runs (Ray studies, the report on a real results tree, the real data set, interrupts,
the GPU script at CPU size). Every test here is `slow`: `make test` runs them (at a small size),
`make test-fast` (-m "not slow") skips them."""
import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
