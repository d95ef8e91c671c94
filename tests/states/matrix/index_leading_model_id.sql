-- An index that leads with model_id goes with the column; the migration suggests its name match.
create index llm_usage_model_id_agent_idx on llm_usage (model_id, agent_name);
-- Already matched by the baseline's llm_usage_model_name_idx (model_name, created_at): no suggestion.
create index llm_usage_model_id_created_idx on llm_usage (model_id, created_at);
