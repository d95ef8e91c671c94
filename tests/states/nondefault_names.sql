-- Constraints created by another tool under other names.
alter table llm_usage rename constraint llm_usage_provider_id_fkey to usage_provider_fk;
alter table llm_usage rename constraint llm_usage_model_id_fkey to "fk usage → model";
alter table llm_models rename constraint llm_models_provider_id_fkey to "Models_Provider";
alter table llm_models rename constraint llm_models_pkey to models_uuid_pk;
alter table llm_providers rename constraint llm_providers_pkey to "providers pk";
