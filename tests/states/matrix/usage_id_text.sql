-- llm_usage keyed by text ids an application makes, with no default: smoke must fill it.
create temp table llm_usage_old as select * from llm_usage;
drop table llm_usage;
create table llm_usage (
  id text primary key,
  provider_id uuid references llm_providers (id),
  model_id uuid references llm_models (id),
  provider_name varchar(255) not null,
  model_name varchar(255) not null,
  prompt_tokens integer not null default 0,
  completion_tokens integer not null default 0,
  created_at timestamptz not null default now()
);
insert into llm_usage (id, provider_id, model_id, provider_name, model_name, prompt_tokens, completion_tokens,
                       created_at)
select 'req_' || id, provider_id, model_id, provider_name, model_name, prompt_tokens, completion_tokens, created_at
from llm_usage_old;
drop table llm_usage_old;
grant select, insert, update, delete on llm_usage to service_role;
