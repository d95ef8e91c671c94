"""The local default: a PostgreSQL server set up like Supabase, its demo rows, and the PostgreSQL programs."""
