-- Coarser resolutions of each pair's bids, for the dashboard's chart: per UTC hour and per São
-- Paulo day, the first, lowest, highest and last bid (so a spike survives any zoom level) and
-- how many quotes. Ten years of minute quotes are 3.7 million rows; a chart of them reads 3,650
-- days or 87,600 hours instead. They are kept up to date by triggers on quotes, in the
-- statement that writes the quotes, whoever writes them (the pipeline, a backfill's COPY, a
-- restore, psql).
--
-- São Paulo's offset from UTC has been a whole number of hours since 1914, so every São Paulo
-- day is a set of whole UTC hours: days are made from hours.
--
-- They hold nothing the quotes do not: a dump leaves them out (DERIVED_TABLES in database.ts), and
-- a restore rebuilds them as it loads the quotes.

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

-- Recomputes the given hours from quotes: an hour left without quotes is removed.
create function refresh_quote_hours(pairs text[], hours timestamptz[]) returns void
language sql as $$
  with wanted as (
    select distinct pair, hour from unnest(pairs, hours) as k(pair, hour)
  ),
  computed as (
    select w.pair, w.hour, a.*
    from wanted w
    cross join lateral (
      select min(q.ts) as first_ts, (array_agg(q.bid order by q.ts))[1] as first_bid,
             min(q.bid) as min_bid, max(q.bid) as max_bid,
             max(q.ts) as last_ts, (array_agg(q.bid order by q.ts desc))[1] as last_bid,
             count(*)::int as quotes
      from quotes q
      where q.pair = w.pair and q.ts >= w.hour and q.ts < w.hour + interval '1 hour'
    ) a
  ),
  emptied as (
    delete from quote_hours h using computed c
    where c.quotes = 0 and h.pair = c.pair and h.hour = c.hour
  )
  insert into quote_hours (pair, hour, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes)
  select pair, hour, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes from computed where quotes > 0
  on conflict (pair, hour) do update set
    first_ts = excluded.first_ts, first_bid = excluded.first_bid, min_bid = excluded.min_bid,
    max_bid = excluded.max_bid, last_ts = excluded.last_ts, last_bid = excluded.last_bid, quotes = excluded.quotes;
$$;

-- Recomputes the given São Paulo days from their hours: a day left without hours is removed.
create function refresh_quote_days(pairs text[], days date[]) returns void
language sql as $$
  with wanted as (
    select distinct pair, day from unnest(pairs, days) as k(pair, day)
  ),
  computed as (
    select w.pair, w.day, a.*
    from wanted w
    cross join lateral (
      select min(h.first_ts) as first_ts, (array_agg(h.first_bid order by h.first_ts))[1] as first_bid,
             min(h.min_bid) as min_bid, max(h.max_bid) as max_bid,
             max(h.last_ts) as last_ts, (array_agg(h.last_bid order by h.last_ts desc))[1] as last_bid,
             coalesce(sum(h.quotes), 0)::int as quotes
      from quote_hours h
      where h.pair = w.pair
        and h.hour >= (w.day::timestamp at time zone 'America/Sao_Paulo')
        and h.hour < ((w.day + 1)::timestamp at time zone 'America/Sao_Paulo')
    ) a
  ),
  emptied as (
    delete from quote_days d using computed c
    where c.quotes = 0 and d.pair = c.pair and d.day = c.day
  )
  insert into quote_days (pair, day, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes)
  select pair, day, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes from computed where quotes > 0
  on conflict (pair, day) do update set
    first_ts = excluded.first_ts, first_bid = excluded.first_bid, min_bid = excluded.min_bid,
    max_bid = excluded.max_bid, last_ts = excluded.last_ts, last_bid = excluded.last_bid, quotes = excluded.quotes;
$$;

-- New quotes: the hours and days that had none are aggregated straight from the statement's new
-- rows with plain inserts, the fastest way in (a backfill's COPY of a million new quotes touches
-- nothing else). If any of them had quotes already, that insert fails as a whole and the units
-- are merged instead: an hour recomputed from quotes, a day from its hours, which is right
-- whatever the new rows are. work_mem: a million new rows aggregate in memory, not on disk.
create function quotes_inserted_rollups() returns trigger
language plpgsql set work_mem = '64MB' as $$
begin
  begin
    insert into quote_hours (pair, hour, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes)
    select pair, date_trunc('hour', ts, 'UTC'), min(ts), (array_agg(bid order by ts))[1], min(bid), max(bid),
           max(ts), (array_agg(bid order by ts desc))[1], count(*)::int
    from changed group by 1, 2;
  exception when unique_violation then
    insert into quote_hours as h (pair, hour, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes)
    select pair, date_trunc('hour', ts, 'UTC'), min(ts), (array_agg(bid order by ts))[1], min(bid), max(bid),
           max(ts), (array_agg(bid order by ts desc))[1], count(*)::int
    from changed group by 1, 2
    on conflict (pair, hour) do update set (first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes) = (
      select min(q.ts), (array_agg(q.bid order by q.ts))[1], min(q.bid), max(q.bid),
             max(q.ts), (array_agg(q.bid order by q.ts desc))[1], count(*)::int
      from quotes q
      where q.pair = h.pair and q.ts >= h.hour and q.ts < h.hour + interval '1 hour');
  end;
  begin
    insert into quote_days (pair, day, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes)
    select pair, (ts at time zone 'America/Sao_Paulo')::date, min(ts), (array_agg(bid order by ts))[1], min(bid), max(bid),
           max(ts), (array_agg(bid order by ts desc))[1], count(*)::int
    from changed group by 1, 2;
  exception when unique_violation then
    perform refresh_quote_days(array_agg(pair), array_agg(day))
    from (select distinct pair, (ts at time zone 'America/Sao_Paulo')::date as day from changed) d;
  end;
  return null;
end;
$$;

-- Corrected or deleted quotes: the hours and days they were in are recomputed.
create function quotes_changed_rollups() returns trigger
language plpgsql set work_mem = '64MB' as $$
begin
  if tg_op = 'UPDATE' then
    perform refresh_quote_hours(array_agg(pair), array_agg(date_trunc('hour', ts, 'UTC')))
    from (select pair, ts from changed union select pair, ts from replaced) k;
    perform refresh_quote_days(array_agg(pair), array_agg(day))
    from (select pair, (ts at time zone 'America/Sao_Paulo')::date as day from changed
          union select pair, (ts at time zone 'America/Sao_Paulo')::date from replaced) d;
  else
    perform refresh_quote_hours(array_agg(pair), array_agg(date_trunc('hour', ts, 'UTC'))) from replaced;
    perform refresh_quote_days(array_agg(pair), array_agg(day))
    from (select distinct pair, (ts at time zone 'America/Sao_Paulo')::date as day from replaced) d;
  end if;
  return null;
end;
$$;

create function quotes_truncated_rollups() returns trigger
language plpgsql as $$
begin
  delete from quote_hours;
  delete from quote_days;
  return null;
end;
$$;

create trigger quotes_inserted_rollups after insert on quotes
  referencing new table as changed for each statement execute function quotes_inserted_rollups();
create trigger quotes_updated_rollups after update on quotes
  referencing old table as replaced new table as changed for each statement execute function quotes_changed_rollups();
create trigger quotes_deleted_rollups after delete on quotes
  referencing old table as replaced for each statement execute function quotes_changed_rollups();
create trigger quotes_truncated_rollups after truncate on quotes
  for each statement execute function quotes_truncated_rollups();

-- The quotes stored before this migration.
insert into quote_hours (pair, hour, first_ts, first_bid, min_bid, max_bid, last_ts, last_bid, quotes)
select pair, date_trunc('hour', ts, 'UTC'), min(ts), (array_agg(bid order by ts))[1], min(bid), max(bid),
       max(ts), (array_agg(bid order by ts desc))[1], count(*)::int
from quotes
group by 1, 2;

select refresh_quote_days(array_agg(pair), array_agg(day))
from (select distinct pair, (hour at time zone 'America/Sao_Paulo')::date as day from quote_hours) d;
