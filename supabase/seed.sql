-- Providers and models for local and preview databases, in the name-keyed shape the
-- migrations end in. `kit smoke` inserts one usage row for each model here.
insert into public.llm_providers (name, display_name, base_url) values
  ('openai', 'OpenAI', 'https://api.openai.com/v1'),
  ('anthropic', 'Anthropic', 'https://api.anthropic.com'),
  ('google', 'Google', 'https://generativelanguage.googleapis.com')
on conflict (name) do nothing;

insert into public.llm_models (name, provider_name, context_window, input_cost_per_mtok, output_cost_per_mtok) values
  ('gpt-4o-mini', 'openai', 128000, 0.15, 0.6),
  ('claude-sonnet-4', 'anthropic', 200000, 3.0, 15.0),
  ('gemini-2.0-flash', 'google', 1000000, 0.1, 0.4)
on conflict (name) do nothing;
