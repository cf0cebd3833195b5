-- Who keeps an employee's identity: 'gatehouse' (onboarded here, the first
-- administrator, the demo company) or 'scim' (created by the company's
-- identity provider, through which the employee signs in). Gatehouse
-- issues no invitation link for the latter. Accounts created by SCIM
-- before this column existed are known by their external id.
ALTER TABLE users ADD COLUMN provisioned_by VARCHAR(16) NOT NULL DEFAULT 'gatehouse';
UPDATE users SET provisioned_by = 'scim' WHERE scim_external_id IS NOT NULL;
-- (notification_outbox also carries channel 'invitation': an email whose
-- body, holding the link, is emptied once sent or given up.)
