"""Test plugin for the distributed job runner."""
