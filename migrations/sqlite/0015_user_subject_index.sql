-- The subject index serves only lookups of events about a user
-- (target_type = 'user'): sign-in activity, the console's employee filter,
-- the anomaly rules, the "what did employee Y access" report. Events about
-- a customer (every reported access) made it grow at a random place on
-- each append, the costliest part of ingesting at millions of events; they
-- are left out of it now. (MySQL has no partial indexes; its index stays.)
DROP INDEX audit_events_target;
CREATE INDEX audit_events_target ON audit_events(target_type, target_id, seq) WHERE target_type = 'user';
