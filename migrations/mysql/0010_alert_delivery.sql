-- Delivery of alerts to the configured webhook (GATEHOUSE_ALERT_WEBHOOK_URL).
ALTER TABLE alerts ADD COLUMN webhook_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN webhook_delivered_at BIGINT;
