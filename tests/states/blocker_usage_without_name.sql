alter table llm_usage alter column model_name drop not null;
insert into llm_usage (provider_name, model_name) values ('openai', null), ('openai', null);
