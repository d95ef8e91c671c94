-- Realistic data for the local default, in the baseline's (UUID-keyed) shape: several
-- providers and models, and thousands of usage rows of which some carry UUIDs.
insert into public.llm_providers (name, display_name, base_url) values
  ('openai', 'OpenAI', 'https://api.openai.com/v1'),
  ('anthropic', 'Anthropic', 'https://api.anthropic.com'),
  ('google', 'Google', 'https://generativelanguage.googleapis.com'),
  ('mistral', 'Mistral AI', 'https://api.mistral.ai'),
  ('groq', 'Groq', 'https://api.groq.com/openai/v1')
on conflict (name) do nothing;

insert into public.llm_models (provider_id, name, context_window, input_cost_per_mtok, output_cost_per_mtok)
select p.id, m.name, m.ctx, m.cin, m.cout
from (values
  ('openai', 'gpt-4o', 128000, 2.5, 10.0),
  ('openai', 'gpt-4o-mini', 128000, 0.15, 0.6),
  ('openai', 'o3-mini', 200000, 1.1, 4.4),
  ('anthropic', 'claude-sonnet-4', 200000, 3.0, 15.0),
  ('anthropic', 'claude-haiku-3.5', 200000, 0.8, 4.0),
  ('google', 'gemini-2.0-flash', 1000000, 0.1, 0.4),
  ('google', 'gemini-2.5-pro', 1000000, 1.25, 10.0),
  ('mistral', 'mistral-large', 128000, 2.0, 6.0),
  ('groq', 'llama-3.3-70b', 128000, 0.59, 0.79)
) as m (provider, name, ctx, cin, cout)
join public.llm_providers p on p.name = m.provider
where not exists (select 1 from public.llm_models x where x.name = m.name);

-- One in three rows carries the UUIDs, as rows written by the older client did.
insert into public.llm_usage (provider_id, model_id, provider_name, model_name, agent_name, user_id,
                              prompt_tokens, completion_tokens, cost_usd, metadata, created_at)
select case when g % 3 = 0 then p.id end, case when g % 3 = 0 then m.id end, p.name, m.name,
       (array['planner', 'coder', 'reviewer', 'support-bot'])[1 + g % 4],
       ('00000000-0000-4000-8000-' || lpad((g % 25)::text, 12, '0'))::uuid,
       100 + (g * 37) % 4000, 20 + (g * 13) % 1500,
       round(((100 + (g * 37) % 4000) * m.input_cost_per_mtok
              + (20 + (g * 13) % 1500) * m.output_cost_per_mtok) / 1000000, 6),
       jsonb_build_object('request_id', g),
       now() - make_interval(mins => g)
from generate_series(1, 5000) as g
join lateral (select * from public.llm_models order by name offset (g % 9) limit 1) as m on true
join public.llm_providers p on p.id = m.provider_id;

-- What an app beside the LLM tables has on Supabase: users in auth.users, a public table referencing
-- them, and a key default from uuid-ossp in schema `extensions`.
do $app$
begin
  if to_regprocedure('extensions.uuid_generate_v4()') is null then
    raise notice 'no uuid-ossp in schema extensions: the app tables are left out';
    return;
  end if;
  create table if not exists public.agent_profiles (
    id uuid primary key default extensions.uuid_generate_v4(),
    user_id uuid not null references auth.users (id) on delete cascade,
    agent_name text not null,
    created_at timestamptz not null default now()
  );
  insert into auth.users (id, aud, role, email, created_at)
  select ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'authenticated', 'authenticated',
         'user' || g || '@example.com', now()
  from generate_series(0, 24) as g
  on conflict (id) do nothing;
  insert into public.agent_profiles (user_id, agent_name)
  select u.id, a.name
  from auth.users u cross join unnest(array['planner', 'coder']) as a (name)
  where u.email like 'user%@example.com'
    and not exists (select 1 from public.agent_profiles p where p.user_id = u.id and p.agent_name = a.name);
end
$app$;
