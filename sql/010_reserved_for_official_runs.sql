-- PLACEHOLDER, branch h-divergence only: number 010 belongs to another helper's migration
-- (the pipeline's official run counts). It is here so that 011 has no gap on this branch;
-- drop this file when merging, the other branch's 010 takes its place.
select 1;
