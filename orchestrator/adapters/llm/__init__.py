"""LLM providers behind the one provider interface: offline (default), openai, replay."""
