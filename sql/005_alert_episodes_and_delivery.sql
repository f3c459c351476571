-- Alert episodes and webhook delivery across runs.

-- The same quote can open more than one episode: it fires, the API corrects it and it
-- resolves, the correction is undone and it fires again (or a setting changes for one run).
-- The fingerprint is therefore pair|kind|direction|start plus an episode number among the
-- alerts with that same start ("#1", "#2", ...; none for the first, so fingerprints written
-- before this migration, and every rescan's, stay what they were).
comment on column alerts.fingerprint is
  'sha256 of pair|kind|direction|started_at, then #n for the n-th later episode with the same start';

-- When a run saw the alert fire and resolve (the run's clock), beside the quote times in
-- started_at and resolved_at: a correction can fire and resolve an alert on one quote, and the
-- RESOLVED message says when each happened. Null for episodes a rescan found in history.
alter table alerts
  add column fired_seen_at    timestamptz,
  add column resolved_seen_at timestamptz;

-- Delivery is retried across runs with backoff, up to a limit, and may fail for good.
--   next_attempt_at: not before this time (null: as soon as possible); a round that takes a
--                    notification sets it ahead first, so two rounds never send it at once.
--   failed_at:       given up (a 3xx or 4xx answer, or retried past the limit); last_error
--                    says why. Never sent again.
alter table alert_notifications
  add column next_attempt_at timestamptz,
  add column last_attempt_at timestamptz,
  add column failed_at       timestamptz,
  add constraint alert_notifications_delivered_or_failed check (delivered_at is null or failed_at is null);

drop index alert_notifications_pending;
create index alert_notifications_due on alert_notifications (next_attempt_at nulls first, id)
  where delivered_at is null and failed_at is null;
