"""Tests of crm_assets.outputs."""
