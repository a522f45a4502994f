"""The catalogue of every check of every layer, in layer order (docs/data_quality.md lists each)."""

from crm_assets.core.quality import Check
from crm_assets.layers import enriched, features, lifecycle, raw, reporting, rfmt


def all_checks() -> list[Check]:
    return [
        *raw.PRODUCT_CHECKS,
        *raw.CUSTOMER_CHECKS,
        *raw.TRANSACTION_CHECKS,
        *enriched.CHECKS,
        *features.CHECKS,
        *lifecycle.CHECKS,
        *rfmt.CHECKS,
        *reporting.CHECKS,
    ]
