-- Identifiers that break hand-made quoting: a key column and constraints with quotes and spaces.
alter table llm_usage rename column id to "Row ""Id""";
alter table llm_usage rename constraint llm_usage_pkey to "usage ""pk""";
alter table llm_usage rename constraint llm_usage_model_id_fkey to "fk ""model"" → id";
alter table llm_providers rename constraint llm_providers_pkey to "providers; drop table x";
create index "idx ""names""" on llm_usage (provider_name, model_name);
