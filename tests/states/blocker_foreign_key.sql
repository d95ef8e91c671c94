create table public.llm_budgets (
  id bigint generated always as identity primary key,
  model_id uuid references public.llm_models (id),
  monthly_usd numeric
);
