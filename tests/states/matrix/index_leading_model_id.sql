-- An index that leads with model_id goes with the column; the migration suggests its name match.
create index llm_usage_model_id_created_idx on llm_usage (model_id, created_at);
