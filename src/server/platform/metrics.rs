//! Counters and histograms this process keeps for Prometheus (`GET /metrics`
//! on its own listener, GATEHOUSE_METRICS_LISTEN): requests by route,
//! audit events committed by action and outcome (sign-ins, lockouts and
//! code failures among them), and each background job's last run. Labels
//! come from fixed sets (route templates, action names), never from people:
//! no ids, emails or addresses. Figures that live in the database (audit
//! head, sessions, alerts, checkpoints) are read when scraped
//! (`http::metrics`).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{Mutex, OnceLock},
};

/// Upper bounds of the request-duration buckets, in seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default, Clone, Copy)]
pub struct JobRun {
    pub last_run_ms: i64,
    pub last_success_ms: i64,
    pub failures: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    durations: BTreeMap<String, Histogram>,
    events: BTreeMap<(&'static str, &'static str), u64>,
    jobs: BTreeMap<&'static str, JobRun>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// The one registry of this process.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::default)
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One answered request: `route` is its route template (or "other").
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.with(|m| {
            *m.requests
                .entry((route.to_owned(), method.to_owned(), status))
                .or_default() += 1;
            let h = m.durations.entry(route.to_owned()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        });
    }

    /// Audit events committed, by action name and outcome (both from fixed sets).
    pub fn events_committed(&self, events: &[(&'static str, &'static str)]) {
        if events.is_empty() {
            return;
        }
        self.with(|m| {
            for e in events {
                *m.events.entry(*e).or_default() += 1;
            }
        });
    }

    /// A background job's pass ended at `now` (milliseconds).
    pub fn job_ran(&self, job: &'static str, now: i64, ok: bool) {
        self.with(|m| {
            let j = m.jobs.entry(job).or_default();
            j.last_run_ms = now;
            if ok {
                j.last_success_ms = now;
            } else {
                j.failures += 1;
            }
        });
    }

    pub fn job(&self, job: &str) -> Option<JobRun> {
        self.with(|m| m.jobs.get(job).copied())
    }

    /// The counters and histograms in Prometheus text format (version 0.0.4).
    pub fn render(&self, out: &mut String, now_ms: i64) {
        self.with(|m| {
            header(
                out,
                "gatehouse_http_requests_total",
                "counter",
                "HTTP requests answered, by route template, method and status.",
            );
            for ((route, method, status), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "gatehouse_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
            header(
                out,
                "gatehouse_http_request_duration_seconds",
                "histogram",
                "Time to answer HTTP requests, by route template.",
            );
            for (route, h) in &m.durations {
                let route = escape(route);
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "gatehouse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "gatehouse_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "gatehouse_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "gatehouse_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
            header(
                out,
                "gatehouse_audit_events_committed_total",
                "counter",
                "Audit events this process committed, by action and outcome \
                 (auth.signin, auth.lockout, auth.mfa: sign-in outcomes, lockouts, code failures).",
            );
            for ((action, outcome), n) in &m.events {
                let series = format!("action=\"{action}\",outcome=\"{outcome}\"");
                let _ = writeln!(out, "gatehouse_audit_events_committed_total{{{series}}} {n}");
            }
            let last = "gatehouse_job_last_success_timestamp_seconds";
            header(
                out,
                last,
                "gauge",
                "When each background job last completed a pass without error.",
            );
            for (job, j) in &m.jobs {
                let _ = writeln!(out, "{last}{{job=\"{job}\"}} {}", j.last_success_ms as f64 / 1000.0);
            }
            header(
                out,
                "gatehouse_job_lag_seconds",
                "gauge",
                "Seconds since each background job last completed a pass without error.",
            );
            for (job, j) in &m.jobs {
                let lag = (now_ms - j.last_success_ms).max(0) as f64 / 1000.0;
                let _ = writeln!(out, "gatehouse_job_lag_seconds{{job=\"{job}\"}} {lag}");
            }
            header(
                out,
                "gatehouse_job_failures_total",
                "counter",
                "Passes of each background job that ended in an error.",
            );
            for (job, j) in &m.jobs {
                let _ = writeln!(out, "gatehouse_job_failures_total{{job=\"{job}\"}} {}", j.failures);
            }
        });
    }
}

/// The `# HELP` and `# TYPE` lines of one metric.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as Prometheus reads it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_job_lag() {
        let m = Metrics::default();
        m.request("/api/v1/access-checks", "POST", 200, 0.004);
        m.request("/api/v1/access-checks", "POST", 200, 0.3);
        m.request("/weird\"route", "GET", 404, 20.0);
        m.events_committed(&[
            ("auth.signin", "failure"),
            ("auth.signin", "failure"),
            ("auth.lockout", "denied"),
        ]);
        m.job_ran("grant_expiry", 10_000, true);
        m.job_ran("grant_expiry", 12_000, false);
        let mut out = String::new();
        m.render(&mut out, 15_000);
        for line in [
            "# TYPE gatehouse_http_requests_total counter",
            "gatehouse_http_requests_total{route=\"/api/v1/access-checks\",method=\"POST\",status=\"200\"} 2",
            "gatehouse_http_request_duration_seconds_bucket{route=\"/api/v1/access-checks\",le=\"0.005\"} 1",
            "gatehouse_http_request_duration_seconds_bucket{route=\"/api/v1/access-checks\",le=\"0.5\"} 2",
            "gatehouse_http_request_duration_seconds_bucket{route=\"/api/v1/access-checks\",le=\"+Inf\"} 2",
            "gatehouse_http_request_duration_seconds_count{route=\"/api/v1/access-checks\"} 2",
            "gatehouse_http_request_duration_seconds_bucket{route=\"/weird\\\"route\",le=\"10\"} 0",
            "gatehouse_audit_events_committed_total{action=\"auth.signin\",outcome=\"failure\"} 2",
            "gatehouse_audit_events_committed_total{action=\"auth.lockout\",outcome=\"denied\"} 1",
            "gatehouse_job_lag_seconds{job=\"grant_expiry\"} 5",
            "gatehouse_job_failures_total{job=\"grant_expiry\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line}\n{out}");
        }
    }
}
