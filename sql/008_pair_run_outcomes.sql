-- How a run went for each pair it tried, and runs that stood aside for another.
--
-- A run that fails for one pair (unknown to the API) still stores the others: for them it did
-- not fail, and the monitor, the card and /metrics must not say so. failed_pairs (004) names
-- the pairs a run failed for; this column says whether that is all it failed for, or whether
-- the failure was the run's own (the source down, a write, the analysis step), and so every
-- pair's. Unknown, as for a run the next one found interrupted, is the run's own: false.
alter table pipeline_runs
  add column failed_pairs_only boolean not null default false;

-- A run that waited for the pipeline lock past its timeout and exited (75) tried nothing: it is
-- 'skipped', counted and listed, but no pair's last run.
alter table pipeline_runs drop constraint pipeline_runs_status_check;
alter table pipeline_runs
  add constraint pipeline_runs_status_check check (status in ('running', 'succeeded', 'failed', 'skipped'));

-- The runs recorded before: a lock timeout is a skip; a fetch failure of some pairs, with no
-- other failure in its error, was theirs only.
update pipeline_runs set status = 'skipped', failed_step = null
  where status = 'failed' and failed_step = 'start' and error like 'Cannot run the pipeline: another run has held the lock%';
update pipeline_runs set failed_pairs_only = true
  where status = 'failed' and failed_step = 'fetch' and cardinality(failed_pairs) > 0
    and error not like '%the analysis step failed%';

-- The one rule for "how did run r go for pair p", used by the monitor, the card and /metrics:
-- its status, except that a run that failed for other pairs only succeeded for this one.
create function pipeline_run_status_for(status text, failed_pairs text[], failed_pairs_only boolean, pair text)
  returns text language sql immutable parallel safe
  as $$ select case when status = 'failed' and failed_pairs_only and not (pair = any(failed_pairs)) then 'succeeded' else status end $$;

-- /metrics counts skipped runs at every scrape: from this index, not the whole table.
create index pipeline_runs_skipped on pipeline_runs (id) where status = 'skipped';
