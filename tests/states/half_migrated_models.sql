-- The plan's steps 2 to 4 ran (its FK lacks ON UPDATE CASCADE); step 5 did not.
alter table llm_usage drop column provider_id;
alter table llm_usage drop column model_id;
alter table llm_models add column provider_name varchar(255);
update llm_models m set provider_name = p.name from llm_providers p where m.provider_id = p.id;
alter table llm_models drop constraint llm_models_provider_id_fkey;
alter table llm_models drop column provider_id;
alter table llm_models alter column provider_name set not null;
alter table llm_models add constraint llm_models_provider_name_fkey
  foreign key (provider_name) references llm_providers (name) on delete cascade;
