-- blocker: publication kit_usage_linked (its column list or row filter) on llm_usage depends on a UUID column
-- fix: alter publication kit_usage_linked set table llm_usage where (id > 0)
create publication kit_usage_linked for table llm_usage where (model_id is not null);
