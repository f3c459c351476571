-- The cross-check's alert (issue 18): a pair whose AwesomeAPI quote strays from the day's closing
-- PTAX by more than COTACAO_DIVERGENCE_PCT fires a "divergence" alert, with the same lifecycle,
-- history and webhooks as the others. Like a deviation it goes up or down (the sign of the
-- divergence), so it has a direction. For a divergence alert, started_at, last_seen_at,
-- resolved_at and peak_at are closing PTAX times (published_at), price is the AwesomeAPI bid
-- compared, average is the closing PTAX buy rate, deviation and peak_deviation the divergence
-- as a fraction (0.0182 for +1.82 %), threshold the setting as a fraction, window_days null.
-- (The constraint names are the ones PostgreSQL gave 003's unnamed checks.)
alter table alerts
  drop constraint alerts_kind_check,
  add constraint alerts_kind_check check (kind in ('deviation', 'stale', 'divergence')),
  drop constraint alerts_check1,
  add constraint alerts_direction_by_kind check ((kind in ('deviation', 'divergence')) = (direction is not null));

-- The last São Paulo business day the divergence alert has looked at, per pair (null: not yet;
-- the first run looks at the newest day only). A run looks again at that day (a quote nearer the
-- closing PTAX may have arrived) and at every day after it.
alter table alert_state add column divergence_day date;
