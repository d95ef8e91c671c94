-- llm_usage with no primary key at all (an append-only log).
alter table llm_usage drop constraint llm_usage_pkey;
alter table llm_usage alter column id drop identity;
alter table llm_usage alter column id drop not null;
