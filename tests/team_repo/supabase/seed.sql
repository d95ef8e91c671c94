-- Data for local development and preview branches: runs after every migration.
insert into public.profiles (handle) values ('alice'), ('bob') on conflict (handle) do nothing;
insert into public.projects (owner, title)
select id, handle || '''s first project' from public.profiles;
insert into public.llm_providers (name, display_name) values ('openai', 'OpenAI'), ('anthropic', 'Anthropic')
on conflict (name) do nothing;
