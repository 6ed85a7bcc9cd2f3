//! The PostgreSQL backend's foundation against a real PostgreSQL 15 that the tests start
//! (common/postgres.rs): the migrations, the schema they make compared with SQLite's, the
//! roster date trigger, TLS verified against a CA, unix sockets, and multi-host URLs.

use std::collections::{BTreeMap, BTreeSet};

use safehire::certs::CertAuthority;
use safehire::store::Store;
use safehire::store::postgres::{Pg, PgError, PgOptions, schema};

use crate::common::postgres::{PgCluster, postgres_ready};

async fn fresh() -> (Pg, String) {
    let db = PgCluster::shared().database().await;
    let pg = Pg::new(&PgOptions::new(db.url())).expect("pool");
    (pg, db.url())
}

/// Whether the connection a pool hands out is encrypted, as the server sees it.
async fn server_sees_tls(pg: &Pg) -> Result<bool, PgError> {
    let client = pg.client().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn migrations_apply_on_a_fresh_database_and_again_do_nothing() {
    if !postgres_ready() {
        return;
    }
    let (pg, _) = fresh().await;
    assert_eq!(pg.migrate().await.expect("first"), schema::VERSION);
    assert_eq!(pg.migrate().await.expect("second"), 0);
    let client = pg.client().await.expect("client");
    assert_eq!(
        schema::applied_version(&client).await.expect("version"),
        i64::try_from(schema::VERSION).expect("small")
    );
    let head = client
        .query_one(
            "SELECT seq, hash, at, tree_size, frontier FROM audit_head",
            &[],
        )
        .await
        .expect("the head row");
    assert_eq!(head.get::<_, i64>(0), 0);
    assert_eq!(head.get::<_, Vec<u8>>(1), vec![0u8; 32]);
    assert_eq!(head.get::<_, i64>(3), 0);
    assert!(head.get::<_, Vec<u8>>(4).is_empty());
    let registry: i64 = client
        .query_one("SELECT version FROM registry_state WHERE id = 1", &[])
        .await
        .expect("registry_state")
        .get(0);
    assert_eq!(registry, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_migrating_together_apply_each_migration_once() {
    if !postgres_ready() {
        return;
    }
    let (pg, url) = fresh().await;
    let other = Pg::new(&PgOptions::new(url)).expect("second pool");
    let (a, b) = tokio::join!(pg.migrate(), other.migrate());
    let ran = a.expect("first node") + b.expect("second node");
    assert_eq!(ran, schema::VERSION);
}

#[tokio::test]
async fn a_newer_schema_version_is_refused() {
    if !postgres_ready() {
        return;
    }
    let (pg, _) = fresh().await;
    pg.migrate().await.expect("migrate");
    let newer = i64::try_from(schema::VERSION + 1).expect("small");
    pg.client()
        .await
        .expect("client")
        .execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&newer],
        )
        .await
        .expect("pretend a newer safehire wrote it");
    match pg.migrate().await {
        Err(PgError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (newer, schema::VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

/// (table, column) → (type class, NOT NULL, default).
type Columns = BTreeMap<(String, String), (String, bool, String)>;

/// SQLite's final schema, as [`Columns`].
fn sqlite_columns(path: &std::path::Path) -> Columns {
    let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
    let mut statement = conn
        .prepare(
            "SELECT m.name, c.name, c.type, c.\"notnull\" OR c.pk > 0, \
             COALESCE(c.dflt_value, '') \
             FROM sqlite_master m, pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .expect("prepare");
    statement
        .query_map([], |r| {
            let class = match r.get::<_, String>(2)?.as_str() {
                "INTEGER" => "integer",
                "TEXT" => "text",
                "BLOB" => "blob",
                other => panic!("unexpected SQLite type {other}"),
            };
            Ok((
                (r.get(0)?, r.get(1)?),
                (class.to_owned(), r.get(3)?, r.get(4)?),
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test]
async fn the_schema_is_sqlite_s_final_schema() {
    if !postgres_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("safehire.db");
    let store = Store::open(&path, "schema-comparison").expect("open SQLite");
    store.close().await;
    let sqlite = sqlite_columns(&path);
    let sqlite_indexes: BTreeSet<String> = rusqlite::Connection::open(&path)
        .expect("open")
        .prepare(
            "SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger') \
             AND name NOT LIKE 'sqlite_%'",
        )
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");

    let (pg, _) = fresh().await;
    pg.migrate().await.expect("migrate");
    let client = pg.client().await.expect("client");
    let rows = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO', \
             COALESCE(column_default, ''), COALESCE(collation_name::text, ''), \
             is_identity = 'YES' \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name NOT IN ('audit_head', 'schema_version')",
            &[],
        )
        .await
        .expect("columns");
    let mut postgres = Columns::new();
    for row in rows {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        let class = match row.get::<_, &str>(2) {
            "smallint" | "integer" | "bigint" => "integer",
            "text" => {
                assert_eq!(
                    row.get::<_, &str>(5),
                    "C",
                    "{table}.{column} orders bytewise"
                );
                "text"
            }
            "bytea" => "blob",
            other => panic!("{table}.{column}: unexpected type {other}"),
        };
        // SQLite's defaults are literals; identity columns are rowids there (no default).
        let default = match row.get::<_, &str>(4) {
            _ if row.get::<_, bool>(6) => String::new(),
            "''::text" => "''".to_owned(),
            literal => literal.to_owned(),
        };
        postgres.insert((table, column), (class.to_owned(), row.get(3), default));
    }
    assert!(sqlite.len() > 100, "SQLite's schema was read");
    let differ = |a: &Columns, b: &Columns| -> Vec<String> {
        a.iter()
            .filter(|(key, value)| b.get(*key) != Some(*value))
            .map(|(key, value)| format!("{key:?}: {value:?}"))
            .collect()
    };
    let (only_pg, only_sqlite) = (differ(&postgres, &sqlite), differ(&sqlite, &postgres));
    assert!(
        only_pg.is_empty() && only_sqlite.is_empty(),
        "PostgreSQL has {only_pg:#?}\nwhere SQLite has {only_sqlite:#?}"
    );

    let pg_indexes: BTreeSet<String> = client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
             AND tablename NOT IN ('audit_head', 'schema_version') \
             AND indexname !~ '_(pkey|key)$' \
             UNION SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal",
            &[],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(pg_indexes, sqlite_indexes, "indexes and triggers");
}

#[tokio::test]
async fn a_change_of_a_member_s_dates_is_kept_as_a_version() {
    if !postgres_ready() {
        return;
    }
    let (pg, _) = fresh().await;
    pg.migrate().await.expect("migrate");
    let client = pg.client().await.expect("client");
    client
        .batch_execute(
            "INSERT INTO roster_members (employer, subject, name_tag, staff_ref, hire_date, \
             declared_at, updated_at, dates_from) \
             VALUES ('E1', '\\x01', '\\x02', 'S1', '2024-01-01', 100, 100, 100);
             UPDATE roster_members SET staff_ref = 'S1b', updated_at = 150;
             UPDATE roster_members SET departure_date = '2025-06-30', updated_at = 200;",
        )
        .await
        .expect("writes");
    let versions = client
        .query(
            "SELECT hire_date, departure_date, valid_from, valid_to FROM roster_member_versions",
            &[],
        )
        .await
        .expect("versions");
    assert_eq!(versions.len(), 1, "a change of other columns is no version");
    let v = &versions[0];
    assert_eq!(v.get::<_, &str>(0), "2024-01-01");
    assert_eq!(v.get::<_, Option<&str>>(1), None);
    assert_eq!((v.get::<_, i64>(2), v.get::<_, i64>(3)), (100, 200));
    let dates_from: i64 = client
        .query_one("SELECT dates_from FROM roster_members", &[])
        .await
        .expect("member")
        .get(0);
    assert_eq!(dates_from, 200);
}

#[tokio::test]
async fn tls_is_verified_against_the_ca_from_the_url_or_the_settings() {
    if !postgres_ready() {
        return;
    }
    let cluster = PgCluster::shared();
    let db = cluster.database().await;
    for host in ["127.0.0.1", "localhost"] {
        let pg = Pg::new(&PgOptions::new(db.tls_url(host))).expect("pool");
        assert!(pg.tls());
        assert!(
            server_sees_tls(&pg).await.expect("TLS connection"),
            "{host}"
        );
    }
    let settings = PgOptions {
        root_ca: Some(cluster.ca_path()),
        ..PgOptions::new(format!("{}?sslmode=require", db.url()))
    };
    let pg = Pg::new(&settings).expect("pool");
    assert!(
        server_sees_tls(&pg)
            .await
            .expect("TLS with the CA from the settings")
    );
    // A CA in the settings alone is enough to require TLS.
    let implied = PgOptions {
        root_ca: Some(cluster.ca_path()),
        ..PgOptions::new(db.url())
    };
    let pg = Pg::new(&implied).expect("pool");
    assert!(server_sees_tls(&pg).await.expect("TLS implied by the CA"));
}

#[tokio::test]
async fn tls_with_the_wrong_ca_fails() {
    if !postgres_ready() {
        return;
    }
    let cluster = PgCluster::shared();
    let db = cluster.database().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let rogue =
        CertAuthority::generate("rogue CA", 30, time::OffsetDateTime::now_utc()).expect("CA");
    let rogue_pem = dir.path().join("rogue.pem");
    std::fs::write(&rogue_pem, rogue.cert_pem()).expect("write");
    let url = format!(
        "{}?sslmode=require&sslrootcert={}",
        db.url(),
        rogue_pem.display()
    );
    let pg = Pg::new(&PgOptions::new(url)).expect("pool");
    let error = server_sees_tls(&pg).await.expect_err("an unknown issuer");
    let text = format!("{error}: {:?}", error);
    assert!(matches!(error, PgError::Pool(_)), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn plain_tcp_and_the_unix_socket_connect_without_tls() {
    if !postgres_ready() {
        return;
    }
    let db = PgCluster::shared().database().await;
    for url in [
        db.url(),
        db.socket_url(),
        format!("{}?sslmode=disable", db.url()),
    ] {
        let pg = Pg::new(&PgOptions::new(url.clone())).expect("pool");
        assert!(!pg.tls());
        assert!(!server_sees_tls(&pg).await.expect("connects"), "{url}");
        // Commits are durable when acknowledged, as the bench's comparison assumes.
        let row = pg
            .client()
            .await
            .expect("client")
            .query_one("SHOW synchronous_commit", &[])
            .await
            .expect("setting");
        assert_eq!(row.get::<_, &str>(0), "on");
        pg.close();
        assert!(matches!(pg.client().await, Err(PgError::Pool(_))), "closed");
    }
}

/// The port of the server a pool's connection reached.
async fn server_port(pg: &Pg) -> u16 {
    let row = pg
        .client()
        .await
        .expect("connects")
        .query_one("SELECT current_setting('port')", &[])
        .await
        .expect("port");
    row.get::<_, &str>(0).parse().expect("a port")
}

#[tokio::test]
async fn a_multi_host_url_reaches_the_writable_server() {
    if !postgres_ready() {
        return;
    }
    let primary = PgCluster::shared();
    // A server that refuses writes stands in for a standby.
    let standby = PgCluster::start(&["default_transaction_read_only = on"]);
    let hosts = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres",
        standby.port(),
        primary.port()
    );
    let any = Pg::new(&PgOptions::new(hosts.clone())).expect("pool");
    assert_eq!(server_port(&any).await, standby.port(), "the first host");
    let read_write = Pg::new(&PgOptions::new(format!(
        "{hosts}?target_session_attrs=read-write"
    )))
    .expect("pool");
    assert_eq!(server_port(&read_write).await, primary.port());
    drop(standby);
    // With the first host down, a new connection goes on to the next one.
    let after = Pg::new(&PgOptions::new(hosts)).expect("pool");
    assert_eq!(server_port(&after).await, primary.port());
}
