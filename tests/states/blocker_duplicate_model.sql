insert into llm_models (provider_id, name) select id, 'gpt-4o' from llm_providers where name = 'groq';
