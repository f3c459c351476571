-- Coarser resolutions of each pair's bids, for the dashboard's chart: per UTC hour and per São
-- Paulo day, the first, lowest, highest and last bid (so a spike survives any zoom level) and
-- how many quotes. Ten years of minute quotes are 3.7 million rows; a chart of them reads 3,650
-- days or 87,600 hours instead.
--
-- Writers only note what they changed: a statement-level trigger on quotes, whoever writes
-- (the pipeline, a backfill's COPY, a restore, psql), adds one row per pair and statement to
-- quote_rollups_pending, the span of the quotes it wrote. Readers call refresh_quote_rollups()
-- first (database.ts does), which recomputes the São Paulo days those spans touch, from quotes.
-- So the rollups cost the pipeline's writes nearly nothing (keeping them in the writing statement
-- made a backfill of daily quotes 3.6 times slower), and the first read after a large backfill
-- pays for it once.
--
-- São Paulo's offset from UTC has been a whole number of hours since 1914, so every São Paulo
-- day is a set of whole UTC hours: days are made from hours.
--
-- They hold nothing the quotes do not: a dump leaves them out (DERIVED_TABLES in database.ts);
-- the restore's writes note the spans again.

create table quote_hours (
  pair       text        not null,
  -- The start of the UTC hour.
  hour       timestamptz not null,
  first_ts   timestamptz not null,
  first_bid  numeric     not null,
  min_bid    numeric     not null,
  max_bid    numeric     not null,
  last_ts    timestamptz not null,
  last_bid   numeric     not null,
  quotes     integer     not null check (quotes > 0),
  primary key (pair, hour)
);

create table quote_days (
  pair       text        not null,
  -- The São Paulo calendar day. last_bid is the day's close exactly as the alert rule takes it
  -- (the bid of the day's latest quote; loadDailySeries() in database.ts).
  day        date        not null,
  first_ts   timestamptz not null,
  first_bid  numeric     not null,
  min_bid    numeric     not null,
  max_bid    numeric     not null,
  last_ts    timestamptz not null,
  last_bid   numeric     not null,
  quotes     integer     not null check (quotes > 0),
  primary key (pair, day)
);

-- Spans of quotes written since the rollups were last brought up to date: one row per pair and
-- writing statement (a backfill of a million quotes in batches of 20,000 adds 50 per pair).
create table quote_rollups_pending (
  pair     text        not null,
  from_ts  timestamptz not null,
  to_ts    timestamptz not null
);

create function quotes_note_rollups() returns trigger
language plpgsql as $$
begin
  if tg_op in ('INSERT', 'UPDATE') then
    insert into quote_rollups_pending select pair, min(ts), max(ts) from changed group by pair;
  end if;
  if tg_op in ('UPDATE', 'DELETE') then
    insert into quote_rollups_pending select pair, min(ts), max(ts) from replaced group by pair;
  end if;
  return null;
end;
$$;

create function quotes_truncated_rollups() returns trigger
language plpgsql as $$
begin
  delete from quote_hours;
  delete from quote_days;
  delete from quote_rollups_pending;
  return null;
end;
$$;

create trigger quotes_inserted_rollups after insert on quotes
  referencing new table as changed for each statement execute function quotes_note_rollups();
create trigger quotes_updated_rollups after update on quotes
  referencing old table as replaced new table as changed for each statement execute function quotes_note_rollups();
create trigger quotes_deleted_rollups after delete on quotes
  referencing old table as replaced for each statement execute function quotes_note_rollups();
create trigger quotes_truncated_rollups after truncate on quotes
  for each statement execute function quotes_truncated_rollups();

-- Brings the rollups up to date with every span noted so far; returns how many spans it took.
-- Each span grows to whole São Paulo days, overlapping ones merge, and each merged stretch is
-- recomputed whole: its hours from quotes, its days from those hours. One refresher at a time
-- (an advisory lock); spans noted by writers still running wait for the next call.
create function refresh_quote_rollups() returns integer
language plpgsql set work_mem = '64MB' as $$
declare
  pairs text[];
  los timestamptz[];
  his timestamptz[];
  taken integer;
begin
  if not exists (select 1 from quote_rollups_pending) then
    return 0;
  end if;
  perform pg_advisory_xact_lock(hashtext('cotacao:quote_rollups'));
  with claimed as (
    delete from quote_rollups_pending returning pair, from_ts, to_ts
  ),
  spans as (
    select pair,
           ((from_ts at time zone 'America/Sao_Paulo')::date)::timestamp at time zone 'America/Sao_Paulo' as lo,
           ((to_ts at time zone 'America/Sao_Paulo')::date + 1)::timestamp at time zone 'America/Sao_Paulo' as hi
    from claimed
  ),
  marked as (
    select pair, lo, hi,
           case when lo <= max(hi) over (partition by pair order by lo, hi rows between unbounded preceding and 1 preceding)
                then 0 else 1 end as starts
    from spans
  ),
  numbered as (
    select pair, lo, hi, sum(starts) over (partition by pair order by lo, hi) as stretch from marked
  ),
  stretches as (
    select pair, min(lo) as lo, max(hi) as hi, count(*) as spans from numbered group by pair, stretch
  )
  select array_agg(pair), array_agg(lo), array_agg(hi), coalesce(sum(spans), 0)::int
  into pairs, los, his, taken
  from stretches;
  if taken = 0 then
    return 0;
  end if;

  delete from quote_hours h using unnest(pairs, los, his) as s(pair, lo, hi)
  where h.pair = s.pair and h.hour >= s.lo and h.hour < s.hi;
  insert into quote_hours (pair, hour, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes)
  select q.pair, date_trunc('hour', q.ts, 'UTC'), min(q.ts), (array_agg(q.bid order by q.ts))[1], min(q.bid), max(q.bid),
         max(q.ts), (array_agg(q.bid order by q.ts desc))[1], count(*)::int
  from unnest(pairs, los, his) as s(pair, lo, hi)
  join quotes q on q.pair = s.pair and q.ts >= s.lo and q.ts < s.hi
  group by 1, 2;

  delete from quote_days d using unnest(pairs, los, his) as s(pair, lo, hi)
  where d.pair = s.pair
    and d.day >= (s.lo at time zone 'America/Sao_Paulo')::date
    and d.day < (s.hi at time zone 'America/Sao_Paulo')::date;
  insert into quote_days (pair, day, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes)
  select h.pair, (h.hour at time zone 'America/Sao_Paulo')::date, min(h.first_ts), (array_agg(h.first_bid order by h.first_ts))[1],
         min(h.min_bid), max(h.max_bid), max(h.last_ts), (array_agg(h.last_bid order by h.last_ts desc))[1], sum(h.quotes)::int
  from unnest(pairs, los, his) as s(pair, lo, hi)
  join quote_hours h on h.pair = s.pair and h.hour >= s.lo and h.hour < s.hi
  group by 1, 2;
  return taken;
end;
$$;

-- The quotes stored before this migration: noted, built by the first read.
insert into quote_rollups_pending select pair, min(ts), max(ts) from quotes group by pair;
