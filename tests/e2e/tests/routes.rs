//! Routes as deploy-time configuration: a stack started with the template parameters Routes,
//! RouteBuckets and RouteKnowledgeBaseIds (not a ROUTES override) syncs two buckets into three
//! knowledge bases, and a route outside the lists stops the functions at cold start.

use std::time::Duration;

use kb_autosync_e2e::*;
use kb_autosync_local::{invariants, observe, LocalStack, StackOptions};
use serde_json::{json, Value};

const BUCKET_A: &str = "kb-autosync-routes-a";
const BUCKET_B: &str = "kb-autosync-routes-b";

/// (bucket, prefix, knowledge base, data source): the second knowledge base has two data
/// sources, one in each bucket.
const ROUTES: [(&str, &str, &str, &str); 4] = [
    (BUCKET_A, "docs/", "KBROUTE001", "DSROUTE001"),
    (BUCKET_A, "manuals/", "KBROUTE002", "DSROUTE002"),
    (BUCKET_B, "guides/", "KBROUTE002", "DSROUTE003"),
    (BUCKET_B, "faq/", "KBROUTE003", "DSROUTE004"),
];

fn routes_json(routes: &[(&str, &str, &str, &str)]) -> String {
    let routes: Vec<Value> = routes
        .iter()
        .map(|(bucket, prefix, kb, ds)| {
            json!({"bucket": bucket, "prefix": prefix, "knowledge_base_id": kb, "data_source_id": ds})
        })
        .collect();
    Value::Array(routes).to_string()
}

fn emulator_config() -> Value {
    let data_source = |(bucket, prefix, _, ds): &(&str, &str, &str, &str)| json!({"id": ds, "name": ds.to_lowercase(), "bucket_arn": format!("arn:aws:s3:::{bucket}"), "inclusion_prefixes": [prefix]});
    let knowledge_bases: Vec<Value> = ["KBROUTE001", "KBROUTE002", "KBROUTE003"]
        .iter()
        .map(|kb| {
            let sources: Vec<Value> = ROUTES
                .iter()
                .filter(|route| route.2 == *kb)
                .map(data_source)
                .collect();
            json!({"id": kb, "name": kb.to_lowercase(), "data_sources": sources})
        })
        .collect();
    json!({
        "knowledge_bases": knowledge_bases,
        "jobs": {"starting_seconds": 5, "base_duration_seconds": 20, "per_document_seconds": 0.05, "stopping_seconds": 5}
    })
}

/// The e2e options with the single-route parameters replaced by the routes parameters.
fn routes_options(test: &str, routes: &str, buckets: &str) -> StackOptions {
    let mut options = options(test);
    options.params.retain(|(name, _)| {
        !matches!(
            name.as_str(),
            "KnowledgeBaseId" | "DataSourceId" | "S3BucketName" | "S3KeyPrefix"
        )
    });
    options.params.extend([
        ("Routes".into(), routes.into()),
        ("RouteBuckets".into(), buckets.into()),
        (
            "RouteKnowledgeBaseIds".into(),
            "KBROUTE001,KBROUTE002,KBROUTE003".into(),
        ),
    ]);
    options.emulator_config = Some(emulator_config());
    options
}

async fn put_in(stack: &LocalStack, bucket: &str, key: &str, body: &str) {
    observe::put_object_in(stack, bucket, key, body.as_bytes())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_parameters_sync_two_buckets_into_three_knowledge_bases() {
    let options = routes_options(
        "routes_parameters",
        &routes_json(&ROUTES),
        &format!("{BUCKET_A},{BUCKET_B}"),
    );
    let stack = start(options).await;
    for (bucket, prefix, _, _) in ROUTES {
        for i in 0..2 {
            put_in(
                &stack,
                bucket,
                &format!("{prefix}file-{i}.txt"),
                &format!("{bucket} {prefix} {i}"),
            )
            .await;
        }
    }
    // Not under any route: the event rule lets it through (it matches buckets, not prefixes),
    // the event processor logs and drops it.
    put_in(&stack, BUCKET_B, "elsewhere/stray.txt", "no route").await;

    let changes = settle_count(&stack, 8, Duration::from_secs(120)).await;
    assert_all_synced(&stack, &changes).await;
    for (bucket, prefix, kb, ds) in ROUTES {
        let routed: Vec<_> = changes
            .iter()
            .filter(|c| c.bucket == bucket && c.key.starts_with(prefix))
            .collect();
        assert_eq!(routed.len(), 2, "changes under s3://{bucket}/{prefix}");
        assert!(
            routed
                .iter()
                .all(|c| c.knowledge_base_id == kb && c.data_source_id == ds),
            "s3://{bucket}/{prefix} routed to {kb}/{ds}: {routed:?}"
        );
        assert_eq!(
            invariants::index_matches_s3_in(&stack, bucket, kb, ds, prefix)
                .await
                .unwrap(),
            2,
            "index of {kb}/{ds}"
        );
    }
    let log = stack.function_log("event-processor");
    assert!(
        log.contains("no route matches the object")
            && log.contains(&format!("s3://{BUCKET_B}/elsewhere/stray.txt")),
        "the unroutable key is logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_whose_bucket_is_not_in_route_buckets_fails_the_cold_start() {
    let options = routes_options("routes_bucket_not_listed", &routes_json(&ROUTES), BUCKET_A);
    let stack = start(options).await;
    // An event starts the function if the stack has not already.
    put_in(&stack, BUCKET_A, "docs/a.txt", "alpha").await;
    let expected = format!(
        "route 2 (s3://{BUCKET_B}/guides/) watches bucket {BUCKET_B}, which is not in RouteBuckets ({BUCKET_A})"
    );
    eventually(
        Duration::from_secs(60),
        "the event processor's cold-start error",
        || async { stack.function_log("event-processor").contains(&expected) },
    )
    .await;
    assert!(
        observe::changes(&stack).await.unwrap().is_empty(),
        "nothing is recorded by a function that did not start"
    );
}
