-- smoke-set: client_ip=10.1.2.3
-- Extra NOT NULL columns without defaults, of every type the smoke test fills, and one it
-- cannot (inet), which the test fills with --set.
do $$ begin
  if to_regtype('public.usage_tier') is null then create type usage_tier as enum ('free', 'pro'); end if;
end $$;
alter table llm_usage
  add column tenant text, add column request_id uuid, add column attempt integer, add column latency_s numeric(8, 3),
  add column occurred_at timestamptz, add column payload jsonb, add column billed boolean, add column tier usage_tier,
  add column client_ip inet;
update llm_usage set tenant = 'acme', request_id = gen_random_uuid(), attempt = 1, latency_s = 0.5,
  occurred_at = created_at, payload = '{}', billed = false, tier = 'pro', client_ip = '10.0.0.1';
alter table llm_usage alter column tenant set not null, alter column request_id set not null,
  alter column attempt set not null, alter column latency_s set not null, alter column occurred_at set not null,
  alter column payload set not null, alter column billed set not null, alter column tier set not null,
  alter column client_ip set not null;
