-- Alerts people set themselves (issue 19): "tell me when USD-BRL goes above 6.00", "when EUR-BRL
-- moves more than 2 % in a day". This table only stores the rules; lib/rules.ts reads and writes it.

create table alert_rules (
  id           bigserial   primary key,
  -- The same shape check as quotes.pair (sql/001): the format itself is validated where pairs
  -- come in (lib/quote.ts PairSchema).
  pair         text        not null check (length(pair) between 5 and 25 and strpos(pair, '-') between 3 and 13),
  kind         text        not null check (kind in ('above', 'below', 'move')),
  -- above/below: the price; move: the percent. "< 'Infinity'" keeps NaN and Infinity out, as quotes do.
  level        numeric     not null check (level > 0 and level < 'Infinity'),
  -- São Paulo days a move is measured over; a level rule has none.
  window_days  integer     check ((kind = 'move') = (window_days is not null) and (window_days is null or window_days > 0)),
  note         text,
  created_at   timestamptz not null default now(),
  -- A removed rule is disabled, never deleted, so the alerts it fired keep their meaning.
  disabled_at  timestamptz
);

-- The same active rule cannot exist twice (a removed one may be added again). coalesce: null
-- windows (level rules) would otherwise never collide.
create unique index alert_rules_active_unique
  on alert_rules (pair, kind, level, coalesce(window_days, 0))
  where disabled_at is null;
