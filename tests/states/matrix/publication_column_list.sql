-- blocker: publication kit_usage_cols (its column list or row filter) on llm_usage depends on a UUID column
-- fix: alter publication kit_usage_cols set table llm_usage (id, provider_name, model_name)
create publication kit_usage_cols for table llm_usage (id, provider_name, model_name, model_id);
