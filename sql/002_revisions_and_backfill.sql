-- When the source corrects a quote already stored, the quote is updated and the value it
-- replaced is kept here, so nothing stored is ever lost.
create table quote_revisions (
  id           bigint      generated always as identity primary key,
  pair         text        not null,
  ts           timestamptz not null,
  bid          numeric     not null,
  ask          numeric     not null,
  high         numeric,
  low          numeric,
  var_bid      numeric,
  pct_change   numeric,
  source       text        not null,
  fetched_at   timestamptz not null,
  replaced_at  timestamptz not null default now(),
  foreign key (pair, ts) references quotes (pair, ts) on delete cascade
);

create index quote_revisions_pair_ts on quote_revisions (pair, ts);

-- How far a backfill of one pair over one range got, committed with each chunk, so that an
-- interrupted backfill run again carries on where it stopped.
create table backfill_progress (
  pair          text        not null,
  range_from    date        not null,
  range_to      date        not null,
  done_through  date        not null,
  updated_at    timestamptz not null default now(),
  primary key (pair, range_from, range_to),
  check (range_from <= done_through and done_through <= range_to)
);
