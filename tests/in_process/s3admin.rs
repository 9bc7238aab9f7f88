//! The S3 admin client against a real S3 server (the server binary of the real node's image, run
//! on 127.0.0.1 with drives in a temporary directory): health, storage info, users (whose secret
//! travels in the encrypted body the server must decrypt), buckets, and a pool's decommission.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hanzo_s3_operator::s3admin::{AdminClient, AdminError, Credentials, Endpoint};
use hanzo_testkit::support;

const ROOT_USER: &str = "test-admin";
const ROOT_PASSWORD: &str = "test-admin-secret-0123456789";

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server with `pools` pools of 4 drives each, on one port.
fn start(pools: usize) -> Server {
    let binary = hanzo_local_cluster::node::s3_server_binary().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut args = Vec::new();
    for p in 0..pools {
        for d in 1..=4 {
            std::fs::create_dir_all(dir.path().join(format!("pool{p}/drive{d}"))).unwrap();
        }
        args.push(format!("{}/pool{p}/drive{{1...4}}", dir.path().display()));
    }
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = Command::new(binary)
        .arg("server")
        .args(["--address", &addr.to_string()])
        .args(["--console-address", &format!("127.0.0.1:{}", free_port())])
        .args(&args)
        .env("MINIO_ROOT_USER", ROOT_USER)
        .env("MINIO_ROOT_PASSWORD", ROOT_PASSWORD)
        .env("MINIO_BROWSER", "off")
        // Drives on the root filesystem, and a host the server takes for a container's: both are
        // refused outside CI mode.
        .env("MINIO_CI_CD", "on")
        .env("MINIO_UPDATE", "off")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    Server {
        child,
        addr,
        _dir: dir,
    }
}

fn client(server: &Server, access_key: &str, secret_key: &str) -> AdminClient {
    AdminClient::new(
        Endpoint {
            addr: server.addr,
            host: server.addr.to_string(),
            tls: None,
        },
        Credentials {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
        },
    )
}

async fn wait_healthy(admin: &AdminClient) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match admin.cluster_health().await {
            Ok(h) if h.healthy => return,
            other if Instant::now() > deadline => panic!("the server never got healthy: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

#[tokio::test]
async fn health_storage_users_and_buckets_on_a_real_server() {
    let server = start(1);
    let admin = client(&server, ROOT_USER, ROOT_PASSWORD);
    wait_healthy(&admin).await;

    admin.takes_requests().await.unwrap();
    let health = admin.cluster_health().await.unwrap();
    assert_eq!(health.write_quorum, Some(3), "{health:?}");
    assert_eq!(health.healing_drives.unwrap_or(0), 0, "{health:?}");

    let info = admin.storage_info().await.unwrap();
    assert_eq!(info.drives.len(), 4, "{info:?}");
    assert!(info.drives.iter().all(|d| d.online() && d.pool_index == 0));
    assert!(info.drives.iter().all(|d| d.available_space > 0));
    assert_eq!(info.backend.standard_sc_data.len(), 1);

    // A user created with the encrypted body: the server could only set the secret by decrypting
    // it, and the user proves it by signing with it.
    admin
        .add_user("app-user", "app-user-secret-1")
        .await
        .unwrap();
    admin
        .set_user_policy("consoleAdmin", "app-user")
        .await
        .unwrap();
    let user = client(&server, "app-user", "app-user-secret-1");
    assert!(user.make_bucket("made-by-user", None, false).await.unwrap());
    // Rotating the secret is the same call; the old one stops working.
    admin
        .add_user("app-user", "app-user-secret-2")
        .await
        .unwrap();
    let stale = user.make_bucket("stale", None, false).await.unwrap_err();
    assert!(
        matches!(&stale, AdminError::Server { status: 403, .. }),
        "{stale}"
    );
    assert!(
        client(&server, "app-user", "app-user-secret-2")
            .bucket_exists("made-by-user")
            .await
            .unwrap()
    );

    // A wrong admin secret: refused, and the error never shows a secret.
    let wrong = client(&server, ROOT_USER, "not-the-admin-secret");
    let err = wrong.add_user("x", "x-secret-value").await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, AdminError::Server { status: 403, .. }),
        "{text}"
    );
    assert!(
        !text.contains("not-the-admin-secret") && !text.contains("x-secret-value"),
        "{text}"
    );

    // Buckets: created once, then reported as existing; object lock and a region are accepted.
    assert!(admin.make_bucket("locked", None, true).await.unwrap());
    assert!(!admin.make_bucket("locked", None, true).await.unwrap());
    assert!(
        admin
            .make_bucket("regional", Some("us-east-1"), false)
            .await
            .unwrap()
    );
    assert!(admin.bucket_exists("locked").await.unwrap());
    assert!(!admin.bucket_exists("missing").await.unwrap());
}

#[tokio::test]
async fn a_pool_is_decommissioned_when_asked() {
    let server = start(2);
    let admin = client(&server, ROOT_USER, ROOT_PASSWORD);
    wait_healthy(&admin).await;
    assert!(admin.make_bucket("data", None, false).await.unwrap());
    let pools = admin.pools().await.unwrap();
    assert_eq!(pools.len(), 2, "{pools:?}");
    let started = |p: &hanzo_s3_operator::s3admin::PoolStatus| {
        p.decommission.as_ref().is_some_and(|d| d.started())
    };
    assert!(!pools.iter().any(started), "{pools:?}");
    admin.start_decommission(&pools[0].cmd_line).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = admin.pools().await.unwrap();
        let first = now[0].decommission.clone();
        if first.as_ref().is_some_and(|d| d.complete) {
            assert!(!started(&now[1]), "{now:?}");
            break;
        }
        assert!(first.as_ref().is_none_or(|d| !d.failed), "{now:?}");
        assert!(
            Instant::now() < deadline,
            "decommission never completed: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // What the pool held now lives on the other one. (Whether the server refuses a second request
    // for a drained pool depends on timing, so the reconciler never sends one: nothing asserted.)
    assert!(admin.bucket_exists("data").await.unwrap());
}

#[tokio::test]
async fn calls_share_one_connection_and_a_closed_one_is_replaced() {
    let server = start(1);
    let proxy = support::Proxy::start(vec![server.addr]).await;
    let admin = AdminClient::new(
        Endpoint {
            addr: SocketAddr::from(([127, 0, 0, 1], proxy.port)),
            host: server.addr.to_string(),
            tls: None,
        },
        Credentials {
            access_key: ROOT_USER.to_owned(),
            secret_key: ROOT_PASSWORD.to_owned(),
        },
    );
    wait_healthy(&admin).await;
    let before = proxy.connections();
    for _ in 0..5 {
        admin.storage_info().await.unwrap();
        admin.cluster_health().await.unwrap();
    }
    assert_eq!(
        proxy.connections(),
        before,
        "ten calls went over the connection the health check opened"
    );
    // The connection dropped under the client (a server restart, a kube-proxy change): the next
    // call opens a new one and succeeds.
    proxy.cut();
    proxy.restore();
    admin.storage_info().await.unwrap();
    admin.takes_requests().await.unwrap();
    assert_eq!(proxy.connections(), before + 1);
}
