"""Widgets, grouped by area."""
