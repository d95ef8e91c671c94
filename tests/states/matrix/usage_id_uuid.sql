-- llm_usage keyed by a uuid, the most common Supabase default.
create temp table llm_usage_old as select * from llm_usage;
drop table llm_usage;
create table llm_usage (
  id uuid primary key default gen_random_uuid(),
  provider_id uuid references llm_providers (id),
  model_id uuid references llm_models (id),
  provider_name varchar(255) not null,
  model_name varchar(255) not null,
  agent_name text,
  prompt_tokens integer not null default 0,
  completion_tokens integer not null default 0,
  cost_usd numeric(12, 6),
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now()
);
insert into llm_usage (provider_id, model_id, provider_name, model_name, agent_name, prompt_tokens,
                       completion_tokens, cost_usd, metadata, created_at)
select provider_id, model_id, provider_name, model_name, agent_name, prompt_tokens, completion_tokens, cost_usd,
       metadata, created_at from llm_usage_old;
drop table llm_usage_old;
grant select, insert, update, delete on llm_usage to service_role;
