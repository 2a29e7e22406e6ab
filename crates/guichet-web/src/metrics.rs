//! Request counters and latency histograms by route, rendered in the Prometheus text format
//! together with the job counts. Hand-written rather than a metrics crate: a few dozen lines,
//! no extra dependency tree, and the label set stays bounded (the route *template*, never the
//! raw path, so `/{tenant}/` is one series whatever the number of tenants).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use guichet_store::JobCounts;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One series: a method on a route.
#[derive(Default)]
struct Series {
    /// Answers by status, few per route.
    statuses: Vec<(u16, u64)>,
    latency: Histogram,
}

/// HTTP metrics of this process.
#[derive(Default)]
pub struct HttpMetrics {
    /// By route template, then method. Nested so that a request finds its series by borrowed
    /// keys (no allocation once the series exists) under one lock taken once.
    series: Mutex<BTreeMap<String, BTreeMap<String, Series>>>,
    in_flight: AtomicI64,
}

impl HttpMetrics {
    pub(crate) fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        if !series.contains_key(route) {
            series.insert(route.to_owned(), BTreeMap::new());
        }
        let Some(methods) = series.get_mut(route) else { return };
        if !methods.contains_key(method) {
            methods.insert(method.to_owned(), Series::default());
        }
        let Some(one) = methods.get_mut(method) else { return };
        match one.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => {
                one.statuses.push((status, 1));
                one.statuses.sort_unstable();
            }
        }
        let h = &mut one.latency;
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i] += 1;
            }
        }
    }

    /// Renders everything in the Prometheus text exposition format (version 0.0.4).
    pub fn render(
        &self,
        jobs: Option<JobCounts>,
        processed: &[(String, &'static str, u64)],
    ) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(out, "# HELP guichet_build_info Version of the running binary.");
        let _ = writeln!(out, "# TYPE guichet_build_info gauge");
        let _ = writeln!(out, "guichet_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));

        let _ = writeln!(
            out,
            "# HELP guichet_http_requests_total HTTP requests answered, by method, route and status."
        );
        let _ = writeln!(out, "# TYPE guichet_http_requests_total counter");
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for (route, methods) in series.iter() {
            for (method, one) in methods {
                for (status, n) in &one.statuses {
                    let _ = writeln!(
                        out,
                        "guichet_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                        escape(method),
                        escape(route)
                    );
                }
            }
        }

        let _ = writeln!(
            out,
            "# HELP guichet_http_request_duration_seconds Time to answer HTTP requests, by method and route."
        );
        let _ = writeln!(out, "# TYPE guichet_http_request_duration_seconds histogram");
        for (method, route, h) in series
            .iter()
            .flat_map(|(route, m)| m.iter().map(move |(method, one)| (method, route, &one.latency)))
        {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "guichet_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "guichet_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ =
                writeln!(out, "guichet_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(
                out,
                "guichet_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        drop(series);

        let _ =
            writeln!(out, "# HELP guichet_http_requests_in_flight HTTP requests being answered.");
        let _ = writeln!(out, "# TYPE guichet_http_requests_in_flight gauge");
        let _ = writeln!(
            out,
            "guichet_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );

        if let Some(jobs) = jobs {
            let _ = writeln!(out, "# HELP guichet_jobs Background jobs in the queue, by state.");
            let _ = writeln!(out, "# TYPE guichet_jobs gauge");
            for (state, n) in [
                ("pending", jobs.pending),
                ("running", jobs.running),
                ("done", jobs.done),
                ("failed", jobs.failed),
            ] {
                let _ = writeln!(out, "guichet_jobs{{state=\"{state}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP guichet_jobs_processed_total Jobs run by this process, by kind and outcome."
        );
        let _ = writeln!(out, "# TYPE guichet_jobs_processed_total counter");
        for (kind, outcome, n) in processed {
            let _ = writeln!(
                out,
                "guichet_jobs_processed_total{{kind=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(kind)
            );
        }
        out
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A request being timed: what [`HttpMetrics::finish`] counts it under.
pub(crate) struct Timing {
    route: Option<MatchedPath>,
    method: Method,
    started: Instant,
}

impl HttpMetrics {
    /// Starts timing a routed request (its route template is known once routed). Copies no
    /// string for the usual requests: the route template is shared, and a standard method is
    /// held without allocating (only an extension method would be).
    pub(crate) fn start(&self, request: &Request) -> Timing {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Timing {
            route: request.extensions().get::<MatchedPath>().cloned(),
            method: request.method().clone(),
            started: Instant::now(),
        }
    }

    /// Counts a timed request under its route template and method.
    pub(crate) fn finish(&self, timing: Timing, status: StatusCode) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.observe(
            timing.method.as_str(),
            timing.route.as_ref().map_or("unmatched", MatchedPath::as_str),
            status.as_u16(),
            timing.started.elapsed().as_secs_f64(),
        );
    }
}
