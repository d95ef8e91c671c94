insert into llm_models (provider_id, name) values (null, 'orphan-model');
