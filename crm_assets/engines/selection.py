"""The warehouse resource of the engine the setting ``CRM_ENGINE`` names, chosen when the definitions load."""

from __future__ import annotations

from crm_assets.core import settings
from crm_assets.core.errors import CrmError
from crm_assets.core.resources import Warehouse


def warehouse_class(name: str | None = None) -> type[Warehouse]:
    """``Warehouse`` (DuckDB) or ``SparkWarehouse`` for the engine ``name`` (default: the setting's)."""
    if (name or settings.engine()) != "spark":
        return Warehouse
    try:
        # PySpark and SQLGlot are optional (the spark extra): imported only when the setting asks for Spark
        from crm_assets.engines.spark import SparkWarehouse  # noqa: PLC0415  (optional: the spark extra)
    except ImportError as exc:
        raise CrmError(
            f"{settings.ENV_ENGINE}=spark needs PySpark and SQLGlot: pip install 'crm_assets[spark]' ({exc})"
        ) from None
    return SparkWarehouse


def warehouse(**config) -> Warehouse:
    """The warehouse resource of the setting's engine, configured with ``config`` (else its fields' defaults)."""
    return warehouse_class()(**config)
