create function public.usage_for_model(m uuid) returns bigint language plpgsql as $$
begin
  return (select count(*) from public.llm_usage where model_id = m);
end $$;
