-- Alerts: a price that strays from its moving average ("deviation"), or a pair whose quotes
-- stopped arriving ("stale"). One row per episode, from firing to resolved.
create table alerts (
  id                 bigint      generated always as identity primary key,
  pair               text        not null,
  kind               text        not null check (kind in ('deviation', 'stale')),
  -- up or down for a deviation; null for staleness.
  direction          text        check (direction in ('up', 'down')),
  status             text        not null check (status in ('firing', 'resolved')),
  -- When the condition was first seen: the quote's own time (deviation) or the time the pair
  -- went stale (staleness).
  started_at         timestamptz not null,
  last_seen_at       timestamptz not null,
  resolved_at        timestamptz,
  -- What opened it. Prices are quotes as stored; the average and deviations are the rule's maths.
  price              numeric,
  average            double precision,
  deviation          double precision,
  peak_deviation     double precision,
  peak_at            timestamptz,
  threshold          double precision,
  window_days        integer,
  -- Stable across runs and rescans: pair, kind, direction and start.
  fingerprint        text        not null unique,
  check ((status = 'resolved') = (resolved_at is not null)),
  check ((kind = 'deviation') = (direction is not null))
);

-- At most one open alert of a kind per pair: the lifecycle relies on it.
create unique index alerts_one_firing on alerts (pair, kind) where status = 'firing';
create index alerts_pair_started on alerts (pair, started_at);

-- Every transition to deliver, to each webhook: written in the transaction that makes the
-- transition (nothing is lost if delivery fails), marked delivered on a 2xx (never sent twice).
-- The endpoint is a hash of the URL: webhook URLs are secrets and are not stored.
create table alert_notifications (
  id            bigint      generated always as identity primary key,
  alert_id      bigint      not null references alerts (id) on delete cascade,
  transition    text        not null check (transition in ('firing', 'resolved')),
  endpoint      text        not null,
  payload       jsonb       not null,
  created_at    timestamptz not null default now(),
  attempts      integer     not null default 0,
  last_error    text,
  delivered_at  timestamptz,
  unique (alert_id, transition, endpoint)
);

create index alert_notifications_pending on alert_notifications (id) where delivered_at is null;

-- The last São Paulo day the alert rule has looked at, per pair: a run looks again at that day
-- (its close may have moved) and at every day after it.
create table alert_state (
  pair            text primary key,
  evaluated_day   date        not null,
  updated_at      timestamptz not null default now()
);
