-- How a run ended, beyond succeeded or failed. A failed run may still have stored quotes: one
-- pair's failure never costs the other pairs their data, and a failure in the analysis step
-- comes after the quotes were committed. These columns let the record say which case it was.
alter table pipeline_runs
  -- The step that failed: null for a run that succeeded, or one the next run found interrupted.
  add column failed_step    text    check (failed_step in ('start', 'fetch', 'store', 'analyse', 'deliver')),
  -- The pairs whose fetch failed while the others were stored.
  add column failed_pairs   text[]  not null default '{}',
  add column rows_unchanged integer not null default 0 check (rows_unchanged >= 0),
  -- What the run printed as warnings (an old gap, a conflicting record, an undelivered alert).
  add column warnings       text[]  not null default '{}',
  add check (failed_step is null or status = 'failed');
