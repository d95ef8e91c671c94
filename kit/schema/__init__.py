"""The schema as pg_catalog shows it: the LLM tables' shape, phase, blockers and guarantees, and legacy clients."""
