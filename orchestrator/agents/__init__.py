"""The agents: one module per role, each turning a reaction into work through a provider."""
