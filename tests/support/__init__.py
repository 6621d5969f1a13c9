"""Test support code shared by unit and integration tests."""
