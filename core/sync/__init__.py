"""Sync engine, webhook ingestion, cursors and runs (DESIGN.md §4 "Read path")."""
