create view public.usage_by_model_id as select model_id, count(*) as calls from llm_usage group by model_id;
