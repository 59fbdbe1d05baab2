"""orch: a git-native orchestrator for teams of LLM agents."""

__version__ = "0.1.0"
