-- A per-employee counter that changes with anything their permissions
-- depend on: their status, their grants, the roles they hold. Every request
-- reads it with the employee's row, so a process may keep an employee's
-- grants in memory and still see a change made by any connection or process
-- on the very next request. Triggers keep it, so no write path can forget.
ALTER TABLE users ADD COLUMN access_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER users_access_status AFTER UPDATE OF status ON users
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = NEW.id;
END;

CREATE TRIGGER grants_access_insert AFTER INSERT ON grants
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER grants_access_update AFTER UPDATE ON grants
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = OLD.user_id OR id = NEW.user_id;
END;

CREATE TRIGGER grants_access_delete AFTER DELETE ON grants
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id = OLD.user_id;
END;

CREATE TRIGGER roles_access_insert AFTER INSERT ON roles
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id IN (SELECT user_id FROM grants WHERE role = NEW.role_key);
END;

CREATE TRIGGER roles_access_update AFTER UPDATE ON roles
BEGIN
    UPDATE users SET access_version = access_version + 1
    WHERE id IN (SELECT user_id FROM grants WHERE role = OLD.role_key OR role = NEW.role_key);
END;

CREATE TRIGGER roles_access_delete AFTER DELETE ON roles
BEGIN
    UPDATE users SET access_version = access_version + 1 WHERE id IN (SELECT user_id FROM grants WHERE role = OLD.role_key);
END;
