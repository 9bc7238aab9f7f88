//! Two operator replicas: exactly one leads (reconciles); when it stops, the other takes over.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hanzo_s3_operator::reconcile::leader::{LeaseConfig, run_elected};
use tokio::sync::watch;

fn config(ns: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        duration: Duration::from_secs(3),
        renew: Duration::from_millis(500),
        ..LeaseConfig::new(ns, identity)
    }
}

/// Starts a candidate whose "reconciler" counts itself in `leading` while it runs.
fn candidate(
    client: kube::Client,
    cfg: LeaseConfig,
    leading: Arc<AtomicUsize>,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        run_elected(
            client,
            cfg,
            move |mut lost| {
                let leading = leading.clone();
                async move {
                    leading.fetch_add(1, Ordering::SeqCst);
                    let _ = lost.wait_for(|l| *l).await;
                    leading.fetch_sub(1, Ordering::SeqCst);
                }
            },
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        )
        .await;
    });
    (stop, task)
}

#[tokio::test]
async fn one_replica_leads_and_the_other_takes_over_when_it_stops() {
    // The tier's shared control plane: the Lease is in a namespace of this test's own.
    let cp = hanzo_testkit::control_plane::shared();
    let ns = cp.create_namespace("lease").await.unwrap();
    let client = cp.client().await.unwrap();
    let (a_count, b_count) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (stop_a, task_a) = candidate(client.clone(), config(&ns, "replica-a"), a_count.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (stop_b, task_b) = candidate(client.clone(), config(&ns, "replica-b"), b_count.clone());

    // For a few renew periods: always exactly one leader, and it is the first.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            a_count.load(Ordering::SeqCst) + b_count.load(Ordering::SeqCst),
            1,
            "exactly one leader"
        );
    }
    assert_eq!(a_count.load(Ordering::SeqCst), 1);

    // The leader stops (hands the Lease over); the other takes over within a lease duration.
    stop_a.send(true).unwrap();
    task_a.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while b_count.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "replica-b never took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        a_count.load(Ordering::SeqCst),
        0,
        "the stopped replica no longer reconciles"
    );
    stop_b.send(true).unwrap();
    task_b.await.unwrap();
}
