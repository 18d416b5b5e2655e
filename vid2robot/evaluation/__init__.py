"""Offline evaluation of policies and its report (tables, attention picture)."""
