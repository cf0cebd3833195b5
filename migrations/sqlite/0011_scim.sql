-- Provisioning from the company's identity provider (SCIM 2.0): the
-- provider's own id for the employee, and when the provider deleted the
-- employee (offboarded; SCIM answers 404 for them from then on).
ALTER TABLE users ADD COLUMN scim_external_id TEXT;
ALTER TABLE users ADD COLUMN scim_deleted_at INTEGER;
