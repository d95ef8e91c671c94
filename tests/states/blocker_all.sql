-- Every kind of blocker at once.
insert into llm_models (provider_id, name) select id, 'gpt-4o' from llm_providers where name = 'groq';
create table public.llm_budgets (
  id bigint generated always as identity primary key,
  model_id uuid references public.llm_models (id),
  monthly_usd numeric
);
create function public.usage_for_model(m uuid) returns bigint language plpgsql as $$
begin
  return (select count(*) from public.llm_usage where model_id = m);
end $$;
insert into llm_models (provider_id, name) values (null, 'orphan-model');
create policy usage_with_model on llm_usage for select to anon using (model_id is not null);
create function public.touch_model() returns trigger language plpgsql as $$ begin return new; end $$;
create trigger models_provider_changed before update of provider_id on llm_models
  for each row execute function public.touch_model();
alter table llm_usage alter column model_name drop not null;
insert into llm_usage (provider_name, model_name) values ('openai', null), ('openai', null);
create view public.usage_by_model_id as select model_id, count(*) as calls from llm_usage group by model_id;
