-- Name uniqueness through plain unique indexes (no constraints): they become the primary keys.
alter table llm_providers drop constraint llm_providers_name_key;
create unique index llm_providers_name_uidx on llm_providers (name);
create unique index llm_models_name_uidx on llm_models (name);
