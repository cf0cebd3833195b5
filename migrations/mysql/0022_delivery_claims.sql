-- Deliveries to the outside are claimed before they are sent, so that two
-- servers never send the same alert call at once and a server that dies
-- while sending leaves the call to another once its claim has passed
-- (outbox messages are claimed through next_attempt_at).
ALTER TABLE alerts ADD COLUMN webhook_claimed_until BIGINT NOT NULL DEFAULT 0;
