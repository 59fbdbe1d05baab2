"""The offline simulated team: deterministic model answers derived from the spec."""
