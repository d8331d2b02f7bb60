-- The `app` database the ops runbooks act on (PLAYBOOK_DB_APP): what an application's own database and
-- its deploy ledger would hold. Loaded by tests/fixtures_ops.py; for `playbook test`: psql "$PLAYBOOK_DB_APP" -f app.sql
CREATE TABLE app_errors (id serial PRIMARY KEY, service text NOT NULL, level text NOT NULL, message text NOT NULL,
                         at timestamptz NOT NULL DEFAULT now());
INSERT INTO app_errors (service, level, message) VALUES
  ('checkout', 'error', 'payment provider timeout'), ('checkout', 'error', 'payment provider timeout'),
  ('checkout', 'fatal', 'pool exhausted'), ('search', 'error', 'index shard unavailable');

-- the artifact registry and the deploy ledger that deployctl writes
CREATE TABLE app_artifacts (service text NOT NULL, version text NOT NULL, digest text NOT NULL,
                            smoke_ok boolean NOT NULL DEFAULT true, PRIMARY KEY (service, version));
CREATE TABLE app_deployments (id serial PRIMARY KEY, service text NOT NULL, version text NOT NULL,
                              action text NOT NULL, idempotency_key text NOT NULL UNIQUE,
                              at timestamptz NOT NULL DEFAULT now());
INSERT INTO app_artifacts (service, version, digest, smoke_ok) VALUES
  ('SVC-CHECKOUT', '4.18.2', 'sha256:1f2c1e0b7a4d5c6e8f90123456789abcdef0123456789abcdef0123456789abc', true),
  ('SVC-CHECKOUT', '4.19.0', 'sha256:9f2c1e0b7a4d5c6e8f90123456789abcdef0123456789abcdef0123456789abc', true),
  ('SVC-LEDGER', '1.14.3', 'sha256:0a11223344556677889900aabbccddeeff00112233445566778899aabbccddee', true),
  ('SVC-LEDGER', '2.0.0', 'sha256:0011223344556677889900aabbccddeeff00112233445566778899aabbccddee', true),
  ('SVC-CART', '5.2.0', 'sha256:cc2c1e0b7a4d5c6e8f90123456789abcdef0123456789abcdef0123456789abc', true),
  ('SVC-CART', '5.3.0', 'sha256:dd2c1e0b7a4d5c6e8f90123456789abcdef0123456789abcdef0123456789abc', false),
  ('SVC-PAYMENTS', '3.1.0', 'sha256:ee2c1e0b7a4d5c6e8f90123456789abcdef0123456789abcdef0123456789abc', true),
  ('SVC-PAYMENTS', '3.2.0', 'sha256:ef2c1e0b7a4d5c6e8f90123456789abcdef0123456789abcdef0123456789abc', true),
  ('SVC-PAYMENTS', '3.3.0', 'sha256:ff2c1e0b7a4d5c6e8f90123456789abcdef0123456789abcdef0123456789abc', true);
INSERT INTO app_deployments (service, version, action, idempotency_key, at) VALUES
  ('SVC-CHECKOUT', '4.18.2', 'rollout', 'seed-1', now() - interval '20 days'),
  ('SVC-LEDGER', '1.14.3', 'rollout', 'seed-2', now() - interval '40 days'),
  ('SVC-CART', '5.2.0', 'rollout', 'seed-3', now() - interval '9 days'),
  ('SVC-PAYMENTS', '3.1.0', 'rollout', 'seed-4', now() - interval '30 days'),
  ('SVC-PAYMENTS', '3.2.0', 'rollout', 'seed-5', now() - interval '12 days'),
  ('SVC-PAYMENTS', '3.3.0', 'rollout', 'seed-6', now() - interval '2 hours');

-- application accounts: access reviews and on-call onboarding
CREATE TABLE app_accounts (login text PRIMARY KEY, team text NOT NULL, role text NOT NULL,
                           active boolean NOT NULL DEFAULT true, last_login timestamptz);
INSERT INTO app_accounts (login, team, role, active, last_login) VALUES
  ('ana.silva', 'payments', 'admin', true, now() - interval '3 days'),
  ('ben.okafor', 'payments', 'admin', true, now() - interval '140 days'),
  ('carl.svc', 'payments', 'admin', true, NULL),
  ('dina.roy', 'payments', 'viewer', true, now() - interval '200 days'),
  ('eva.lind', 'platform', 'admin', true, now() - interval '120 days'),
  ('finn.moe', 'platform', 'admin', true, now() - interval '1 day');

-- orders, for data corrections after an incident
CREATE TABLE app_orders (id serial PRIMARY KEY, batch text NOT NULL, status text NOT NULL, total numeric(12, 2) NOT NULL);
INSERT INTO app_orders (batch, status, total) VALUES
  ('B-0412', 'pending_payment', 49.90), ('B-0412', 'pending_payment', 120.00), ('B-0412', 'pending_payment', 15.50),
  ('B-0412', 'paid', 80.00), ('B-0413', 'pending_payment', 22.00), ('B-0413', 'pending_payment', 64.10);

-- daily samples: storage used per datastore, requests per service
CREATE TABLE app_storage (datastore text NOT NULL, day integer NOT NULL, used_gb numeric NOT NULL,
                          PRIMARY KEY (datastore, day));
INSERT INTO app_storage (datastore, day, used_gb)
  SELECT 'DS-PG-ORDERS', d, 400 + 2.5 * d FROM generate_series(1, 30) d
  UNION ALL SELECT 'DS-PG-EVENTS', d, 1700 + 12 * d FROM generate_series(1, 30) d;
CREATE TABLE app_requests (service text NOT NULL, day integer NOT NULL, total bigint NOT NULL, failed bigint NOT NULL,
                           PRIMARY KEY (service, day));
INSERT INTO app_requests (service, day, total, failed)
  SELECT 'SVC-SEARCH', d, 1000000, 200 FROM generate_series(1, 28) d
  UNION ALL SELECT 'SVC-CHECKOUT', d, 500000, CASE WHEN d = 12 THEN 30000 ELSE 150 END FROM generate_series(1, 28) d;
