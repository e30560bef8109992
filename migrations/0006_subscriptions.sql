-- Subscriptions (issue 10): the transactional outbox, subscription state, numbered events and the delivery log.
-- Every table is a tenant table (tenant_id first in every key, row-level security on it), like the rest.

-- One change event per written version, inserted by the same statement that writes the version
-- (src/store/resources.ts), so a rolled-back write leaves none. The dispatcher deletes events once it has matched them.
CREATE TABLE outbox (
  tenant_id     text NOT NULL,
  seq           bigint GENERATED ALWAYS AS IDENTITY,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  version_id    integer NOT NULL,
  action        text NOT NULL,            -- create | update | delete
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, seq)
);

-- What the server keeps about each Subscription beside the resource: its parsed criteria or topic and filters, its
-- channel, who created it (deliveries are checked against that owner's current access), the sealed HMAC secret, the
-- event counter (events-since-subscription-start) and the lifecycle status the server drives.
CREATE TABLE subscription_state (
  tenant_id          text NOT NULL,
  id                 text NOT NULL,
  status             text NOT NULL,       -- requested | active | error | off
  resource_type      text NOT NULL,       -- the type whose changes it is about
  spec               jsonb NOT NULL,
  owner              jsonb NOT NULL,
  secret             text NOT NULL,
  events_since_start bigint NOT NULL DEFAULT 0,
  error              text,
  last_sent_at       timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX subscription_state_type_idx ON subscription_state (tenant_id, resource_type) WHERE status <> 'off';

-- Numbered events of a subscription (gapless per subscription: numbered in the dispatcher's transaction), with
-- their delivery state. Kept after delivery for $events, for EVENT_RETENTION_DAYS.
CREATE TABLE subscription_event (
  tenant_id       text NOT NULL,
  subscription_id text NOT NULL,
  event_number    bigint NOT NULL,
  resource_type   text NOT NULL,
  resource_id     text NOT NULL,
  version_id      integer NOT NULL,
  occurred_at     timestamptz NOT NULL,   -- when the write committed (its outbox row)
  status          text NOT NULL DEFAULT 'pending',  -- pending | delivered | failed | withheld
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  delivered_at    timestamptz,
  PRIMARY KEY (tenant_id, subscription_id, event_number)
);
-- the head of each subscription's line (deliveries go in event order): found without walking delivered history
CREATE INDEX subscription_event_pending_idx ON subscription_event (tenant_id, subscription_id, event_number) WHERE status = 'pending';

-- Every delivery attempt (handshakes and heartbeats included): what $status, $events and `subscription log` show.
CREATE TABLE delivery_log (
  tenant_id       text NOT NULL,
  subscription_id text NOT NULL,
  seq             bigint GENERATED ALWAYS AS IDENTITY,
  at              timestamptz NOT NULL DEFAULT now(),
  type            text NOT NULL,          -- handshake | heartbeat | event-notification
  event_number    bigint,
  attempt         integer NOT NULL,
  status_code     integer,
  latency_ms      integer NOT NULL,
  error           text,
  PRIMARY KEY (tenant_id, subscription_id, seq)
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['outbox', 'subscription_state', 'subscription_event', 'delivery_log'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_setting('app.tenant_id', true))
                      WITH CHECK (tenant_id = current_setting('app.tenant_id', true))$p$, t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO fhir_app', t);
  END LOOP;
END
$$;

-- The dispatcher must learn WHICH tenants have work without seeing their rows: two functions answer tenant ids
-- only. They run as fhir_notify_scan, a role that cannot log in, whose one policy lets it see these tables' tenant
-- ids; fhir_app may call the functions and nothing else of that role.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fhir_notify_scan') THEN
    CREATE ROLE fhir_notify_scan NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  -- ALTER FUNCTION ... OWNER TO needs membership in the new owner (superusers have it anyway)
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT fhir_notify_scan TO %I', current_user);
  END IF;
END
$$;
GRANT SELECT ON outbox, subscription_state, subscription_event TO fhir_notify_scan;
CREATE POLICY notify_scan ON outbox FOR SELECT TO fhir_notify_scan USING (true);
CREATE POLICY notify_scan ON subscription_state FOR SELECT TO fhir_notify_scan USING (true);
CREATE POLICY notify_scan ON subscription_event FOR SELECT TO fhir_notify_scan USING (true);

-- Tenants with change events waiting (a skip scan over the primary key: one probe per tenant, not per event).
CREATE FUNCTION outbox_tenants() RETURNS SETOF text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $f$
  WITH RECURSIVE t(tenant_id) AS (
    (SELECT o.tenant_id FROM public.outbox o ORDER BY o.tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT o.tenant_id FROM public.outbox o WHERE o.tenant_id > t.tenant_id ORDER BY o.tenant_id LIMIT 1) FROM t WHERE t.tenant_id IS NOT NULL
  )
  SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL
$f$;

-- Tenants with subscriptions that are not off (heartbeats, handshakes, deliveries left pending, ends reached).
CREATE FUNCTION subscription_tenants() RETURNS SETOF text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $f$
  SELECT DISTINCT s.tenant_id FROM public.subscription_state s WHERE s.status <> 'off'
  UNION
  SELECT DISTINCT e.tenant_id FROM public.subscription_event e WHERE e.status = 'pending'
$f$;

ALTER FUNCTION outbox_tenants() OWNER TO fhir_notify_scan;
ALTER FUNCTION subscription_tenants() OWNER TO fhir_notify_scan;
REVOKE ALL ON FUNCTION outbox_tenants(), subscription_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_tenants(), subscription_tenants() TO fhir_app;
