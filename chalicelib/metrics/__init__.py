"""Metrics for the tools teams already run (Prometheus)."""
