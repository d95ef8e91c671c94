-- supabase_realtime publishes the whole of llm_usage and llm_models: it keeps them.
alter publication supabase_realtime add table llm_usage, llm_models;
