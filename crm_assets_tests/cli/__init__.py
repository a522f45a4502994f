"""Tests of crm_assets.cli."""
