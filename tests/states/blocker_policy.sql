create policy usage_with_model on llm_usage for select to anon using (model_id is not null);
