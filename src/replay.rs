//! `muckwatch replay FILE`: NDJSON fixes through the same detection as live
//! ingest, against the configured database, printing what was raised.

use std::io::{BufRead, Write};
use std::sync::Arc;

use crate::alerts::AlertHub;
use crate::configuration::Settings;
use crate::fix::Fix;
use crate::geofence::{load_at_start, FenceHandle};
use crate::ingest::decode::{decode_fix_standalone, refuse_future, Rejection};
use crate::metrics::Metrics;
use crate::pipeline::{Detection, Outputs};
use crate::registry::Registry;
use crate::rules::Rules;
use crate::store::{Store, ViolationFilter};
use crate::violation::violation_json;

#[derive(Debug, Default, PartialEq)]
pub struct ReplaySummary {
    pub fixes: u64,
    pub refused: u64,
    pub violations: usize,
}

/// Replays `input`; writes one JSON line per violation raised to `out`, and
/// one line per refused input line to `errors`.
pub async fn run(
    settings: &Settings,
    input: impl BufRead,
    mut out: impl Write,
    mut errors: impl Write,
) -> anyhow::Result<ReplaySummary> {
    let tz = settings.city_timezone()?;
    // What it raises is stored as live violations are, with their events
    // (delivered by the next `serve`).
    let webhooks = settings.outbox.webhooks()?;
    let store = Store::connect(&settings.database.url)
        .await?
        .with_outbox(crate::outbox::Routes::new(tz, &webhooks));
    let registry = Arc::new(Registry::new(
        store.vehicles().await?,
        store.all_permits().await?,
    ));
    let fences = FenceHandle::new(load_at_start(&settings.geofences.dir)?);
    let rules = Arc::new(Rules::new(settings.rules.clone(), tz));
    let outputs = Outputs {
        store: store.clone(),
        metrics: Arc::new(Metrics::default()),
        routing: settings.cases.routing().map_err(anyhow::Error::msg)?,
        merge_window_ms: settings.cases.merge_window_ms(),
        gap_silence_ms: settings.rules.gap_silence_s.saturating_mul(1000) as i64,
        deadlines: settings.cases.deadlines().map_err(anyhow::Error::msg)?,
        fences,
        tz,
        hub: AlertHub::default(),
        mqtt: None,
        // a replay ends when its file does
        shutdown: tokio::sync::watch::channel(false).1,
        grace_ends: Default::default(),
    };
    // One shard: a file is one ordered stream, replayed deterministically.
    let (detection_input, detection) = Detection::spawn(rules, registry, outputs, 1);

    let max_future_ms = settings.ingest.max_future_s as i64 * 1000;
    let mut summary = ReplaySummary::default();
    let mut batch = Vec::with_capacity(1000);
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match decode_fix_standalone(&line).and_then(|f| not_future(f, max_future_ms)) {
            Ok(fix) => {
                summary.fixes += 1;
                batch.push(fix);
                detection_input.send(fix).await;
            }
            Err(r) => {
                summary.refused += 1;
                writeln!(
                    errors,
                    "line {}: {} ({})",
                    n + 1,
                    r.detail,
                    r.reason.label()
                )?;
            }
        }
        if batch.len() == 1000 {
            store
                .insert_fixes(&batch, chrono::Utc::now().timestamp_millis())
                .await?;
            batch.clear();
        }
    }
    store
        .insert_fixes(&batch, chrono::Utc::now().timestamp_millis())
        .await?;
    drop(detection_input);
    let ids = detection.finish().await;
    summary.violations = ids.len();
    let filter = ViolationFilter {
        ids: Some(ids),
        ..Default::default()
    };
    let (violations, _) = store.violations(&filter, 1_000_000, 0).await?;
    for v in &violations {
        writeln!(out, "{}", violation_json(v, tz))?;
    }
    Ok(summary)
}

fn not_future(fix: Fix, max_future_ms: i64) -> Result<Fix, Rejection> {
    let mut one = vec![fix];
    let mut rejects = Vec::new();
    refuse_future(
        &mut one,
        chrono::Utc::now().timestamp_millis(),
        max_future_ms,
        &mut rejects,
    );
    match rejects.pop() {
        Some(r) => Err(r),
        None => Ok(fix),
    }
}
