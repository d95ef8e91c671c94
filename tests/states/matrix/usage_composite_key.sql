-- llm_usage keyed by (agent_name, seq): a composite key of two types.
alter table llm_usage drop constraint llm_usage_pkey;
alter table llm_usage rename column id to seq;
update llm_usage set agent_name = coalesce(agent_name, 'none');
alter table llm_usage alter column agent_name set not null;
alter table llm_usage add primary key (agent_name, seq);
