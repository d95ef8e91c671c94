-- More generated columns than the baseline's total_tokens, and an identity always key.
alter table llm_usage add column cost_cents numeric generated always as (cost_usd * 100) stored,
  add column day date generated always as ((created_at at time zone 'UTC')::date) stored;
