-- Someone ran the plan's steps 2 and 3 by hand and started step 4.
alter table llm_usage drop constraint llm_usage_provider_id_fkey;
alter table llm_usage drop constraint llm_usage_model_id_fkey;
alter table llm_usage drop column provider_id;
alter table llm_usage drop column model_id;
alter table llm_models add column provider_name varchar(255);
update llm_models m set provider_name = p.name from llm_providers p where m.provider_id = p.id;
