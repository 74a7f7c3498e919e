//! What the benches share: the sample component, percentiles, the table they print, paced
//! load, and the
//! integration tests' process guards and node-failure census (included from `tests/`).
#![allow(dead_code)] // Each bench is its own crate and uses a part of this.

use std::time::Duration;

#[path = "../../tests/integration/census.rs"]
pub mod census;
pub mod http_load;
pub mod load;
#[path = "../../tests/integration/native_backend.rs"]
pub mod native_backend;
pub mod nginx;
#[path = "../../tests/integration/processes.rs"]
pub mod processes;

/// The exerciser component built by build.rs.
pub fn exerciser() -> String {
    format!("{}/exerciser.wasm", env!("WASMKUBE_SAMPLES_DIR"))
}

/// The `p` quantile (0..=1) of durations sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The head of a bench's table.
pub fn header() {
    println!("| {:<44} | {:>14} | {:<10} |", "measure", "value", "budget");
    println!("|{:-<46}|{:->16}|{:-<12}|", "", "", "");
}

/// Two rows: the p50 of `sorted` (reported) and its p99 against `budget`.
pub fn p50_p99(name: &str, sorted: &[Duration], budget: &str) {
    row(
        &format!("{name} p50"),
        millis(percentile(sorted, 0.5)),
        "reported",
    );
    row(
        &format!("{name} p99"),
        millis(percentile(sorted, 0.99)),
        budget,
    );
}

/// One row of a bench's table: what, the figure, its budget.
pub fn row(name: &str, value: String, budget: &str) {
    println!("| {name:<44} | {value:>14} | {budget:<10} |");
}

pub fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}
