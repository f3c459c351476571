-- The cross-check's rule (issue 18), once, for every reader: the dashboard's series and card,
-- /metrics, the divergence alert (all through divergenceSeries() in lib/views.ts) and the
-- monitor's one query (readSnapshot()). Written in SQL so that a query sent as one text, as the
-- monitor's lean client sends it, uses it too.
--
-- The AwesomeAPI quote a closing PTAX published at p_at is compared with: the quote nearest to
-- p_at within p_window before or after it (on a tie, the earlier); with none that near, the
-- latest quote from p_daily_source (the API's daily history) of p_at's São Paulo day; with
-- neither, no row. Two index probes (and a third when falling back), not a scan.
create function cross_check_quote(p_pair text, p_at timestamptz, p_window interval, p_daily_source text)
returns table (ts timestamptz, bid numeric, match text)
language sql stable
as $$
  select candidates.ts, candidates.bid, candidates.match from (
    (select near.ts, near.bid, 'nearest'::text as match, 0 as preference from (
       (select q.ts, q.bid from quotes q
        where q.pair = p_pair and q.ts <= p_at and q.ts >= p_at - p_window
        order by q.ts desc limit 1)
       union all
       (select q.ts, q.bid from quotes q
        where q.pair = p_pair and q.ts > p_at and q.ts <= p_at + p_window
        order by q.ts limit 1)
     ) near
     order by abs(extract(epoch from near.ts - p_at)), near.ts
     limit 1)
    union all
    (select q.ts, q.bid, 'daily', 1 from quotes q
     where q.pair = p_pair and q.source = p_daily_source
       and q.ts >= (p_at at time zone 'America/Sao_Paulo')::date::timestamp at time zone 'America/Sao_Paulo'
       and q.ts < ((p_at at time zone 'America/Sao_Paulo')::date + 1)::timestamp at time zone 'America/Sao_Paulo'
     order by q.ts desc limit 1)
  ) candidates
  order by candidates.preference
  limit 1
$$;
