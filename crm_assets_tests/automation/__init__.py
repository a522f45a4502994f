"""Tests of crm_assets.automation."""
