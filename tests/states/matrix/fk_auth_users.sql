-- llm_usage.user_id references auth.users: the migration must keep it.
create table if not exists auth.users (id uuid primary key, email text);
insert into auth.users (id) select distinct user_id from llm_usage where user_id is not null on conflict do nothing;
alter table llm_usage add constraint llm_usage_user_id_fkey foreign key (user_id) references auth.users (id)
  on delete set null;
