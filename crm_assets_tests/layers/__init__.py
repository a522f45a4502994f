"""Tests of crm_assets.layers."""
