-- supabase_realtime publishes the whole of llm_usage: it keeps the table.
create publication supabase_realtime for table llm_usage, llm_models;
