-- History that was delivered is never lost, and days a run could not fill are remembered.

-- A rescan rebuilds the deviation alerts that history holds, but an episode delivered to a
-- webhook is part of the record: it keeps its row and id. When a rescan no longer finds it
-- (other settings, corrected quotes) it is marked superseded here instead of deleted; a later
-- rescan that finds it again clears the mark. Null for every other alert.
alter table alerts
  add column superseded_at timestamptz,
  add constraint alerts_superseded_resolved check (superseded_at is null or status = 'resolved');

-- Days missing further back than a latest-quote run fills in (30 days): the person must run
-- the backfill that loads them. Every run says so, and the monitor and the dashboard show it,
-- until a backfill covers them.
create table quote_gaps (
  pair      text        not null,
  from_day  date        not null,
  to_day    date        not null,
  found_at  timestamptz not null default now(),
  primary key (pair, from_day),
  check (from_day <= to_day)
);
