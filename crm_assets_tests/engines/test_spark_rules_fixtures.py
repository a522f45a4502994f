"""The hand-worked rule fixtures of layers/test_rules_fixtures.py, every test of them, with the layers on Spark.

The tests and fixtures are the same objects as there (imported, not copied); this module only switches
``pipeline.build`` to ``build_all`` on a SparkEngine, before its module-scoped fixtures build.
"""

from __future__ import annotations

import pytest

from crm_assets.engines.spark import SparkEngine
from crm_assets_tests import pipeline
from crm_assets_tests.layers.test_rules_fixtures import *  # noqa: F403  (the fixtures and tests, re-collected here)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _layers_on_spark(spark):
    previous = pipeline.ENGINE
    pipeline.ENGINE = lambda root: SparkEngine(spark, root)
    yield
    pipeline.ENGINE = previous
