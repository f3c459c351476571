-- Quotes as the source reported them, and a record of every pipeline run.

create table quotes (
  -- "USD-BRL". The format is validated where pairs come in; a regular expression here would
  -- cost a third of the bulk-load speed, so the database checks only the shape.
  pair        text        not null check (length(pair) between 5 and 25 and strpos(pair, '-') between 3 and 13),
  -- The quote's own timestamp (AwesomeAPI's `timestamp`), not the time we fetched it.
  ts          timestamptz not null,
  -- numeric keeps every digit the source wrote: "5.7008" reads back as 5.7008.
  -- numeric also admits NaN and Infinity, which sort above every number: "< 'Infinity'" keeps
  -- both out along with the other non-positive values.
  bid         numeric     not null check (bid > 0 and bid < 'Infinity'),
  ask         numeric     not null check (ask > 0 and ask < 'Infinity'),
  high        numeric              check (high > 0 and high < 'Infinity'),
  low         numeric              check (low > 0 and low < 'Infinity'),
  var_bid     numeric              check (var_bid > '-Infinity' and var_bid < 'Infinity'),
  pct_change  numeric              check (pct_change > '-Infinity' and pct_change < 'Infinity'),
  source      text        not null,
  fetched_at  timestamptz not null default now(),
  -- One index serves the monitor's "latest per pair" (a backward scan per pair) and the
  -- dashboard's "a pair's range by time"; including bid lets the chart read the index alone.
  primary key (pair, ts) include (bid)
);

create table pipeline_runs (
  id             bigint      generated always as identity primary key,
  started_at     timestamptz not null default now(),
  finished_at    timestamptz,
  status         text        not null default 'running'
                             check (status in ('running', 'succeeded', 'failed')),
  pairs          text[]      not null default '{}',
  rows_fetched   integer     not null default 0 check (rows_fetched >= 0),
  rows_inserted  integer     not null default 0 check (rows_inserted >= 0),
  rows_updated   integer     not null default 0 check (rows_updated >= 0),
  error          text,
  -- A run is finished exactly when it is no longer running.
  check ((status = 'running') = (finished_at is null))
);

-- The monitor and the dashboard ask for the most recent runs.
create index pipeline_runs_started_at on pipeline_runs (started_at desc);
