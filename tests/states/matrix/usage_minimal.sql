-- The plan's own llm_usage: none of the optional columns (no metadata, agent_name, tokens,
-- total_tokens or created_at).
drop policy if exists llm_usage_read_own on llm_usage;
alter table llm_usage drop column metadata, drop column agent_name, drop column total_tokens,
  drop column prompt_tokens, drop column completion_tokens, drop column cost_usd, drop column created_at,
  drop column user_id;
