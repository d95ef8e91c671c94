-- Names as text in all three tables instead of varchar(255).
alter table llm_usage alter column provider_name type text, alter column model_name type text;
alter table llm_models alter column name type text;
alter table llm_providers alter column name type text;
