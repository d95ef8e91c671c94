-- Older clients wrote UUIDs without names: the name columns allow NULL and some rows lack them.
alter table llm_usage alter column model_name drop not null, alter column provider_name drop not null;
update llm_usage set model_name = null where model_id is not null and id % 2 = 0;
update llm_usage set provider_name = null where provider_id is not null and id % 4 = 1;
-- The provider can also come through the model alone.
update llm_usage set provider_name = null, provider_id = null where model_id is not null and id % 4 = 3;
