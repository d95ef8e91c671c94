create function public.touch_model() returns trigger language plpgsql as $$ begin return new; end $$;
create trigger models_provider_changed before update of provider_id on llm_models
  for each row execute function public.touch_model();
