"""The schema as pg_catalog shows it: the LLM tables' shape, the phase and blockers, the migration's guarantees, legacy clients."""
