//! Talking to a target: one connection as the connector account, with
//! statement logging off (a password is set with `ALTER USER … IDENTIFIED
//! BY`). MariaDB and MySQL 8 differ in where they keep role edges and lock
//! states and in how a default role is set; everything else is shared.

use crate::domain::databases::{quote, Fix, HeldPrivilege, Mapping, Names, Observed, ReadBack, Scope};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode},
    ConnectOptions, Connection, Executor, Row,
};
use std::{collections::BTreeSet, time::Duration};

/// How long connecting, or any one statement, may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where a target is and how the connector signs in.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// The certificate authority (PEM) that signed the server's
    /// certificate, when it is a private one (Amazon RDS, a company CA);
    /// otherwise the server's certificate must chain to a public root.
    pub tls_ca: Option<String>,
    pub username: String,
    /// Never logged, never shown.
    pub password: SecretString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    MariaDb,
    MySql,
}

/// A failure talking to a target: the server's words, never a statement.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the target did not answer within {0} seconds")]
    Timeout(u64),
    #[error("{0}")]
    Sql(String),
    /// The connection broke (I/O, TLS, protocol): nothing more goes over it.
    #[error("the connection to the target was lost: {0}")]
    Lost(String),
}

impl TargetError {
    /// Whether the connection is of no further use.
    pub fn ends_session(&self) -> bool {
        matches!(self, TargetError::Timeout(_) | TargetError::Lost(_))
    }
}

impl From<sqlx::Error> for TargetError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx's message holds the server's error or the I/O failure; the
        // statement is not part of it.
        match e {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
                TargetError::Lost(e.to_string())
            }
            e => TargetError::Sql(e.to_string()),
        }
    }
}

/// Awaits a statement for at most `TIMEOUT`. A macro rather than a
/// generic function: a generic async wrapper around sqlx's MySQL futures
/// defeats the compiler's proof that the server function's future is Send.
macro_rules! timed {
    ($f:expr $(,)?) => {
        match tokio::time::timeout(TIMEOUT, $f).await {
            Ok(r) => r.map_err(TargetError::from),
            Err(_) => Err(TargetError::Timeout(TIMEOUT.as_secs())),
        }
    };
}

/// A failure of a statement that holds a password, reduced to the server's
/// error code: some server messages quote the statement near an error.
fn code_only(e: TargetError, what: &str) -> TargetError {
    match e {
        TargetError::Sql(m) => {
            let code: String = m
                .split(": ")
                .find(|part| part.starts_with(|c: char| c.is_ascii_digit()))
                .map(|part| part.chars().take_while(|c| *c != ':').collect())
                .unwrap_or_else(|| "no error code".into());
            TargetError::Sql(format!("{what} failed: {}", code.trim()))
        }
        timeout => timeout,
    }
}

/// `'name'@'%'`: an account; names are Gatehouse's own (see `Names`),
/// quoted as string literals all the same.
pub fn account(name: &str) -> String {
    grantee(name, "%")
}

pub struct Session {
    conn: MySqlConnection,
    pub flavour: Flavour,
    pub version: String,
}

impl Session {
    pub async fn open(e: &Endpoint) -> Result<Self, TargetError> {
        let mut opts = MySqlConnectOptions::new()
            .host(&e.host)
            .port(e.port)
            .username(&e.username)
            .password(e.password.expose_secret())
            .ssl_mode(if e.tls {
                MySqlSslMode::VerifyIdentity
            } else {
                MySqlSslMode::Disabled
            })
            .disable_statement_logging();
        if let (true, Some(ca)) = (e.tls, &e.tls_ca) {
            opts = opts.ssl_ca_from_pem(ca.clone().into_bytes());
        }
        let mut conn = timed!(opts.connect())?;
        let version: String = timed!(sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut conn))?;
        let flavour = if version.to_ascii_lowercase().contains("mariadb") {
            Flavour::MariaDb
        } else {
            Flavour::MySql
        };
        Ok(Self { conn, flavour, version })
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }

    /// Runs a statement over the text protocol (a plain `&str` carries no
    /// arguments, so sqlx does not prepare it: account statements are not
    /// all preparable).
    async fn exec(&mut self, sql: &str) -> Result<(), TargetError> {
        timed!((&mut self.conn).execute(sql))?;
        Ok(())
    }

    /// The lines of `SHOW GRANTS` for the connector itself.
    pub async fn own_grants(&mut self) -> Result<Vec<String>, TargetError> {
        let rows = timed!((&mut self.conn).fetch_all("SHOW GRANTS FOR CURRENT_USER()"))?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    /// Whether the catalogue holds what a mapping names.
    pub async fn exists(&mut self, m: &Mapping) -> Result<bool, TargetError> {
        let s = &m.scope;
        let (sql, binds): (&str, Vec<&str>) = match (&s.table, &s.column) {
            (None, _) => ("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", vec![&s.schema]),
            (Some(t), None) => (
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                vec![&s.schema, t],
            ),
            (Some(t), Some(c)) => (
                "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?",
                vec![&s.schema, t, c],
            ),
        };
        let mut q = sqlx::query_scalar::<_, i64>(sql);
        for b in binds {
            q = q.bind(b);
        }
        Ok(timed!(q.fetch_one(&mut self.conn))? > 0)
    }

    /// Creates the role if missing and grants it every mapped privilege
    /// (GRANT is idempotent).
    pub async fn ensure_role(&mut self, role: &str, mappings: &[Mapping]) -> Result<(), TargetError> {
        self.exec(&format!("CREATE ROLE IF NOT EXISTS {}", quote(role))).await?;
        for m in mappings {
            self.exec(&format!("GRANT {} TO {}", m.grant_clause(), quote(role)))
                .await?;
        }
        Ok(())
    }

    pub async fn revoke_privilege(&mut self, role: &str, m: &Mapping) -> Result<(), TargetError> {
        self.exec(&format!("REVOKE {} FROM {}", m.grant_clause(), quote(role)))
            .await
    }

    /// A new account, locked, with a random password nobody knows, holding
    /// its personal role as its default role.
    pub async fn create_account(&mut self, name: &str, personal: &str) -> Result<(), TargetError> {
        let password = crate::server::platform::crypto::random_token(24);
        self.exec(&format!(
            "CREATE USER IF NOT EXISTS {} IDENTIFIED BY '{password}' ACCOUNT LOCK",
            account(name)
        ))
        .await
        .map_err(|e| code_only(e, "creating the account"))?;
        self.ensure_personal(name, personal).await
    }

    /// The account's personal role exists, is the account's, and is its
    /// default role (again, if someone dropped it by hand).
    pub async fn ensure_personal(&mut self, name: &str, personal: &str) -> Result<(), TargetError> {
        self.exec(&format!("CREATE ROLE IF NOT EXISTS {}", quote(personal)))
            .await?;
        self.exec(&format!("GRANT {} TO {}", quote(personal), account(name)))
            .await?;
        let set_default = match self.flavour {
            Flavour::MariaDb => format!("SET DEFAULT ROLE {} FOR {}", quote(personal), account(name)),
            Flavour::MySql => format!("SET DEFAULT ROLE {} TO {}", quote(personal), account(name)),
        };
        self.exec(&set_default).await
    }

    pub async fn grant_role(&mut self, role: &str, personal: &str) -> Result<(), TargetError> {
        self.exec(&format!("GRANT {} TO {}", quote(role), quote(personal)))
            .await
    }

    pub async fn revoke_role(&mut self, role: &str, personal: &str) -> Result<(), TargetError> {
        self.exec(&format!("REVOKE {} FROM {}", quote(role), quote(personal)))
            .await
    }

    pub async fn set_locked(&mut self, name: &str, locked: bool) -> Result<(), TargetError> {
        let how = if locked { "LOCK" } else { "UNLOCK" };
        self.exec(&format!("ALTER USER {} ACCOUNT {how}", account(name))).await
    }

    /// Sets a password: random, from Gatehouse's own alphabet (URL-safe
    /// base64), so it needs no escaping.
    pub async fn set_password(&mut self, name: &str, password: &SecretString) -> Result<(), TargetError> {
        let pw = password.expose_secret();
        debug_assert!(pw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        self.exec(&format!("ALTER USER {} IDENTIFIED BY '{pw}'", account(name)))
            .await
    }

    /// Ids of the account's live connections.
    pub async fn connections(&mut self, name: &str) -> Result<Vec<u64>, TargetError> {
        let rows = timed!(
            sqlx::query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? ORDER BY ID")
                .bind(name)
                .fetch_all(&mut self.conn),
        )?;
        rows.iter()
            .map(|r| {
                Ok(r.try_get::<u64, _>(0)
                    .or_else(|_| r.try_get::<i64, _>(0).map(|v| v as u64))?)
            })
            .collect()
    }

    /// Ends a connection; one already gone is not an error.
    pub async fn kill(&mut self, id: u64) -> Result<(), TargetError> {
        match self.exec(&format!("KILL CONNECTION {id}")).await {
            // 1094: unknown thread id (it ended meanwhile).
            Err(TargetError::Sql(m)) if m.contains("1094") => Ok(()),
            r => r,
        }
    }

    /// The account's state as the server holds it; `None` when it does not exist.
    pub async fn read_back(&mut self, name: &str, personal: &str) -> Result<Option<ReadBack>, TargetError> {
        let lock_sql = match self.flavour {
            Flavour::MariaDb => {
                "SELECT CAST(COALESCE(JSON_VALUE(Priv, '$.account_locked'), 0) AS SIGNED) \
                 FROM mysql.global_priv WHERE User = ? AND Host = '%'"
            }
            Flavour::MySql => "SELECT IF(account_locked = 'Y', 1, 0) FROM mysql.user WHERE User = ? AND Host = '%'",
        };
        let locked: Option<i64> = timed!(sqlx::query_scalar(lock_sql).bind(name).fetch_optional(&mut self.conn))?;
        let Some(locked) = locked else { return Ok(None) };
        Ok(Some(ReadBack {
            roles: self.roles_of(personal).await?,
            locked: locked != 0,
            connections: self.connections(name).await?,
        }))
    }

    /// The roles granted to a role.
    pub async fn roles_of(&mut self, grantee: &str) -> Result<BTreeSet<String>, TargetError> {
        let sql = match self.flavour {
            Flavour::MariaDb => "SELECT Role FROM mysql.roles_mapping WHERE User = ? AND Host = ''",
            Flavour::MySql => "SELECT FROM_USER FROM mysql.role_edges WHERE TO_USER = ? AND TO_HOST = '%'",
        };
        let rows = timed!(sqlx::query(sql).bind(grantee).fetch_all(&mut self.conn))?;
        rows.iter().map(|r| Ok(col(r, 0)?)).collect()
    }
}

/// `mysql.db` privilege columns and the privilege each stands for.
const DB_COLUMNS: [(&str, &str); 20] = [
    ("Select_priv", "SELECT"),
    ("Insert_priv", "INSERT"),
    ("Update_priv", "UPDATE"),
    ("Delete_priv", "DELETE"),
    ("Create_priv", "CREATE"),
    ("Drop_priv", "DROP"),
    ("Grant_priv", "GRANT OPTION"),
    ("References_priv", "REFERENCES"),
    ("Index_priv", "INDEX"),
    ("Alter_priv", "ALTER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"),
    ("Lock_tables_priv", "LOCK TABLES"),
    ("Create_view_priv", "CREATE VIEW"),
    ("Show_view_priv", "SHOW VIEW"),
    ("Create_routine_priv", "CREATE ROUTINE"),
    ("Alter_routine_priv", "ALTER ROUTINE"),
    ("Execute_priv", "EXECUTE"),
    ("Event_priv", "EVENT"),
    ("Trigger_priv", "TRIGGER"),
    ("Delete_history_priv", "DELETE HISTORY"),
];

/// `'user'@'host'`, or a MariaDB role (host '') by its name.
fn grantee(user: &str, host: &str) -> String {
    if host.is_empty() {
        quote(user)
    } else {
        let lit = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"));
        format!("{}@{}", lit(user), lit(host))
    }
}

impl Session {
    /// Reads what a drift scan compares: every schema, table and column
    /// privilege; Gatehouse's names holding global privileges; Gatehouse's
    /// accounts and their lock; every grant of one of Gatehouse's roles.
    pub async fn observe(&mut self, names: &Names) -> Result<Observed, TargetError> {
        let mut o = Observed::default();
        let rows = timed!((&mut self.conn).fetch_all("SELECT * FROM mysql.db"))?;
        for r in &rows {
            let (user, host, schema) = (col(r, "User")?, col(r, "Host")?, col(r, "Db")?);
            for (column, privilege) in DB_COLUMNS {
                if r.try_column(column).is_ok() && col(r, column)? == "Y" {
                    o.privileges.push(HeldPrivilege {
                        grantee: user.clone(),
                        host: host.clone(),
                        privilege: privilege.into(),
                        scope: Scope {
                            schema: schema.clone(),
                            table: None,
                            column: None,
                        },
                    });
                }
            }
        }
        let rows =
            timed!((&mut self.conn).fetch_all("SELECT User, Host, Db, Table_name, Table_priv FROM mysql.tables_priv"))?;
        for r in &rows {
            for p in col(r, "Table_priv")?.split(',').filter(|p| !p.is_empty()) {
                o.privileges.push(HeldPrivilege {
                    grantee: col(r, "User")?,
                    host: col(r, "Host")?,
                    privilege: p.to_ascii_uppercase(),
                    scope: Scope {
                        schema: col(r, "Db")?,
                        table: Some(col(r, "Table_name")?),
                        column: None,
                    },
                });
            }
        }
        let rows = timed!((&mut self.conn)
            .fetch_all("SELECT User, Host, Db, Table_name, Column_name, Column_priv FROM mysql.columns_priv"))?;
        for r in &rows {
            for p in col(r, "Column_priv")?.split(',').filter(|p| !p.is_empty()) {
                o.privileges.push(HeldPrivilege {
                    grantee: col(r, "User")?,
                    host: col(r, "Host")?,
                    privilege: p.to_ascii_uppercase(),
                    scope: Scope {
                        schema: col(r, "Db")?,
                        table: Some(col(r, "Table_name")?),
                        column: Some(col(r, "Column_name")?),
                    },
                });
            }
        }
        o.privileges.sort();
        o.privileges.dedup();
        let prefix = names.prefix();
        let len = prefix.len() as i64;
        let (global_sql, accounts_sql, edges_sql) = match self.flavour {
            Flavour::MariaDb => (
                "SELECT User FROM mysql.global_priv WHERE LEFT(User, ?) = ? \
                 AND CAST(COALESCE(JSON_VALUE(Priv, '$.access'), 0) AS UNSIGNED) <> 0",
                "SELECT User, CAST(COALESCE(JSON_VALUE(Priv, '$.account_locked'), 0) AS SIGNED) FROM mysql.global_priv \
                 WHERE LEFT(User, ?) = ? AND Host = '%'",
                "SELECT User, Host, Role FROM mysql.roles_mapping WHERE LEFT(Role, ?) = ?",
            ),
            Flavour::MySql => (
                "SELECT User FROM mysql.user WHERE LEFT(User, ?) = ? AND (Select_priv = 'Y' OR Insert_priv = 'Y' \
                 OR Update_priv = 'Y' OR Delete_priv = 'Y' OR Create_priv = 'Y' OR Drop_priv = 'Y' OR Grant_priv = 'Y' \
                 OR Super_priv = 'Y' OR Alter_priv = 'Y')",
                "SELECT User, IF(account_locked = 'Y', 1, 0) FROM mysql.user WHERE LEFT(User, ?) = ? AND Host = '%'",
                "SELECT TO_USER, TO_HOST, FROM_USER FROM mysql.role_edges WHERE LEFT(FROM_USER, ?) = ?",
            ),
        };
        let rows = timed!(sqlx::query(global_sql).bind(len).bind(prefix).fetch_all(&mut self.conn))?;
        for r in &rows {
            o.global.insert(col(r, 0)?);
        }
        let rows = timed!(sqlx::query(accounts_sql)
            .bind(len)
            .bind(prefix)
            .fetch_all(&mut self.conn))?;
        for r in &rows {
            let name = col(r, 0)?;
            if names.account_user(&name).is_some() {
                o.accounts.push((name, r.try_get::<i64, _>(1)? != 0));
            }
        }
        let rows = timed!(sqlx::query(edges_sql).bind(len).bind(prefix).fetch_all(&mut self.conn))?;
        for r in &rows {
            o.role_edges.push((col(r, 0)?, col(r, 1)?, col(r, 2)?));
        }
        Ok(o)
    }

    /// Undoes one finding.
    pub async fn apply(&mut self, fix: &Fix, names: &Names) -> Result<(), TargetError> {
        match fix {
            Fix::Revoke(p) => {
                let object = match &p.scope.table {
                    Some(t) => format!("{}.{}", quote(&p.scope.schema), quote(t)),
                    None => format!("{}.*", quote(&p.scope.schema)),
                };
                let what = match &p.scope.column {
                    Some(c) => format!("{} ({})", p.privilege, quote(c)),
                    None => p.privilege.clone(),
                };
                // Only names from the grant tables' own list reach here.
                if !p.privilege.chars().all(|c| c.is_ascii_uppercase() || c == ' ') {
                    return Err(TargetError::Sql(format!("unexpected privilege {:?}", p.privilege)));
                }
                self.exec(&format!(
                    "REVOKE {what} ON {object} FROM {}",
                    grantee(&p.grantee, &p.host)
                ))
                .await
            }
            Fix::Grant(m) => match names.role(&m.role) {
                Some(role) => self.ensure_role(&role, std::slice::from_ref(m)).await,
                None => Ok(()),
            },
            Fix::Lock(a) => self.set_locked(a, true).await,
            Fix::RevokeRole { grantee: g, host, role } => {
                self.exec(&format!("REVOKE {} FROM {}", quote(role), grantee(g, host)))
                    .await
            }
        }
    }
}

/// A text column that MySQL may hand over as binary (`mysql.*` tables use
/// binary collations), by name or position.
fn col<I: sqlx::ColumnIndex<sqlx::mysql::MySqlRow> + Copy>(
    r: &sqlx::mysql::MySqlRow,
    i: I,
) -> Result<String, sqlx::Error> {
    r.try_get::<String, _>(i).or_else(|_| {
        r.try_get::<Vec<u8>, _>(i)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_of_statements_with_passwords_keep_only_the_error_code() {
        let e = TargetError::Sql(
            "error returned from database: 1064 (42000): You have an error in your SQL syntax near 'Xs3cret'' at line 1"
                .into(),
        );
        let kept = code_only(e, "setting the password").to_string();
        assert_eq!(kept, "setting the password failed: 1064 (42000)");
        assert!(!kept.contains("Xs3cret"));
        let io = TargetError::Sql("pool timed out while waiting for an open connection".into());
        assert_eq!(code_only(io, "x").to_string(), "x failed: no error code");
    }

    #[test]
    fn a_broken_connection_ends_the_session_and_a_refused_statement_does_not() {
        let lost = TargetError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(matches!(lost, TargetError::Lost(_)), "{lost:?}");
        assert!(lost.ends_session());
        assert!(TargetError::Timeout(5).ends_session());
        let protocol = TargetError::from(sqlx::Error::Protocol("x".into()));
        assert!(
            protocol.ends_session(),
            "a protocol error leaves the connection unusable"
        );
        assert!(!TargetError::Sql("1142 (42000): UPDATE command denied".into()).ends_session());
        assert!(!TargetError::from(sqlx::Error::RowNotFound).ends_session());
    }

    #[test]
    fn accounts_and_grantees_are_quoted_as_literals() {
        assert_eq!(account("gh_12"), "'gh_12'@'%'");
        assert_eq!(account("a'b\\c"), "'a''b\\\\c'@'%'");
        assert_eq!(grantee("gh_support", ""), "`gh_support`");
        assert_eq!(grantee("bob", "10.0.%"), "'bob'@'10.0.%'");
    }
}
