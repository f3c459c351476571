-- Banco Central do Brasil's PTAX, the official reference rate, stored beside AwesomeAPI's quotes
-- and never mixed with them: the cross-check (lib/views.ts, divergenceSeries()) compares the two,
-- which only means something while each table holds one source.
--
-- One row per bulletin: BCB publishes four a day (around 10h, 11h, 12h and 13h Brasília time) and
-- the closing PTAX (the mean of the four). A bulletin's business day is its São Paulo date,
-- (published_at at time zone 'America/Sao_Paulo')::date: Brasília and São Paulo keep one clock.
create table official_rates (
  -- "USD-BRL": the currency against BRL. The same shape check as quotes.pair (sql/001).
  pair          text        not null check (length(pair) between 5 and 25 and strpos(pair, '-') between 3 and 13),
  -- BCB's dataHoraCotacao, with every fractional digit it gave (up to 6: timestamptz keeps
  -- microseconds; the write path sends it as text, never through a Date, which keeps milliseconds).
  published_at  timestamptz not null,
  bulletin      text        not null check (bulletin in ('opening', 'intermediate', 'closing')),
  -- cotacaoCompra and cotacaoVenda, digit for digit as BCB wrote them. As in quotes, "< 'Infinity'"
  -- keeps NaN and Infinity out along with the non-positive values.
  buy           numeric     not null check (buy > 0 and buy < 'Infinity'),
  sell          numeric     not null check (sell > 0 and sell < 'Infinity'),
  -- When we stored this value (a correction sets it again).
  fetched_at    timestamptz not null default now(),
  -- The cross-check reads a pair's days in order (the closing bulletin of each, by time): this key.
  primary key (pair, published_at)
);

-- When BCB corrects a bulletin already stored (another rate for the same pair and time, or another
-- kind), the row is updated and the values it replaced are kept here, as quote_revisions does for
-- quotes (sql/002): nothing stored is ever lost.
create table official_rate_revisions (
  id            bigint      generated always as identity primary key,
  pair          text        not null,
  published_at  timestamptz not null,
  bulletin      text        not null,
  buy           numeric     not null,
  sell          numeric     not null,
  fetched_at    timestamptz not null,
  replaced_at   timestamptz not null default now(),
  foreign key (pair, published_at) references official_rates (pair, published_at) on delete cascade
);

create index official_rate_revisions_pair_published_at on official_rate_revisions (pair, published_at);

-- How far a backfill of one pair's official history got (`--source bcb --from ...`), committed
-- with each chunk of rates, as backfill_progress (sql/002) does for AwesomeAPI's: an interrupted
-- backfill run again carries on where it stopped. Its own table: a backfill of USD-BRL from each
-- source over the same range are two backfills.
create table official_backfill_progress (
  pair          text        not null,
  range_from    date        not null,
  range_to      date        not null,
  done_through  date        not null,
  updated_at    timestamptz not null default now(),
  primary key (pair, range_from, range_to),
  check (range_from <= done_through and done_through <= range_to)
);

-- An instant as BCB writes it and lib/official.ts's OfficialRate carries it: São Paulo
-- wall-clock time, all six fractional digits, and the offset then in force, e.g.
-- "2020-03-09T13:09:27.123456-03:00". The read queries return official times this way: exact to
-- the microsecond (a Date keeps milliseconds) and readable as the time BCB announced.
create function sao_paulo_instant(at timestamptz) returns text
language sql stable parallel safe as $$
  select to_char(local, 'YYYY-MM-DD"T"HH24:MI:SS.US')
         || case when off < 0 then '-' else '+' end
         || lpad((abs(off) / 3600)::text, 2, '0') || ':' || lpad((abs(off) % 3600 / 60)::text, 2, '0')
  from (select at at time zone 'America/Sao_Paulo' as local) l
  cross join lateral (select extract(epoch from l.local - (at at time zone 'UTC'))::int as off) o
$$;
