"""Test support: fakes of the outside world (an OpenAI-compatible server)."""
