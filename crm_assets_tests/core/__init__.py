"""Tests of crm_assets.core."""
