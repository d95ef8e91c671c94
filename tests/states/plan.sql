-- The plan's current state with the local default's data, unchanged.
select 1;
