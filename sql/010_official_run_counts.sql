-- What a pipeline run did with BCB's official bulletins (issue 18), beside AwesomeAPI's quotes.
--
-- A run fetches from two sources, and neither's failure costs the other its rows: a run may fail
-- because BCB did while every quote was stored, or the reverse. failed_sources names the
-- sources that failed ('awesomeapi', 'bcb'); the rows_* columns stay AwesomeAPI's counts, the
-- official_rows_* ones count official_rates. A failure of BCB alone is no pair's failure for
-- AwesomeAPI's quotes: such a run is recorded with failed_pairs_only (008) and no failed pair,
-- so pipeline_run_status_for() says it succeeded for every pair, while status, error and
-- failed_sources say it failed, and for which source.
alter table pipeline_runs
  add column failed_sources          text[]  not null default '{}',
  add column official_rows_fetched   integer not null default 0 check (official_rows_fetched >= 0),
  add column official_rows_inserted  integer not null default 0 check (official_rows_inserted >= 0),
  add column official_rows_updated   integer not null default 0 check (official_rows_updated >= 0),
  add column official_rows_unchanged integer not null default 0 check (official_rows_unchanged >= 0),
  add check (failed_sources <@ array['awesomeapi', 'bcb']::text[]);
