"""Adapters: the only places that talk to third-party formats and services."""
