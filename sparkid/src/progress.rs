//! Progress of long work on the command line (`sparkid ledger verify`, `sparkid conformance`,
//! `sparkid-bench load`): on a terminal an `indicatif` bar with the count, the rate and the
//! time left; elsewhere (a pipe, a log file, CI) a plain line every few seconds with the same
//! figures, and one at the end, so that logs stay readable and free of control characters.
//!
//! Both go to standard error, leaving standard output to the command's result.
//! [`PLAIN_INTERVAL_ENV`] sets how often plain lines come (milliseconds; 0: on every step).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The environment variable that sets the plain lines' interval, in milliseconds.
pub const PLAIN_INTERVAL_ENV: &str = "SPARKID_PROGRESS_INTERVAL_MS";
/// How often plain lines come by default.
pub const DEFAULT_PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// The progress of one piece of work: `done` of `total` units.
pub struct Progress {
    what: String,
    unit: &'static str,
    total: u64,
    shown: Shown,
}

enum Shown {
    Bar(ProgressBar),
    Plain(Mutex<Plain>),
}

struct Plain {
    started: Instant,
    every: Duration,
    last: Option<Instant>,
    done: u64,
    message: String,
}

impl Progress {
    /// Progress of `what` over `total` `unit`s: a bar when standard error is a terminal, plain
    /// lines otherwise.
    pub fn new(what: &str, unit: &'static str, total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {human_pos}/{human_len} {msg} ({per_sec}, ETA {eta})",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(what.to_string());
            bar.set_message(unit);
            return Progress {
                what: what.into(),
                unit,
                total,
                shown: Shown::Bar(bar),
            };
        }
        Progress::plain(what, unit, total, plain_interval())
    }

    /// Progress shown as plain lines at most every `every`.
    pub fn plain(what: &str, unit: &'static str, total: u64, every: Duration) -> Progress {
        Progress {
            what: what.into(),
            unit,
            total,
            shown: Shown::Plain(Mutex::new(Plain {
                started: Instant::now(),
                every,
                last: None,
                done: 0,
                message: String::new(),
            })),
        }
    }

    /// `done` units are done.
    pub fn set(&self, done: u64) {
        match &self.shown {
            Shown::Bar(bar) => bar.set_position(done),
            Shown::Plain(plain) => {
                let mut p = plain.lock().unwrap_or_else(|e| e.into_inner());
                p.done = done;
                let now = Instant::now();
                if p.last.is_none_or(|at| now.duration_since(at) >= p.every) {
                    p.last = Some(now);
                    eprintln!("{}", self.line(&p));
                }
            }
        }
    }

    /// `n` more units are done.
    pub fn inc(&self, n: u64) {
        let done = match &self.shown {
            Shown::Bar(bar) => bar.position() + n,
            Shown::Plain(plain) => plain.lock().unwrap_or_else(|e| e.into_inner()).done + n,
        };
        self.set(done);
    }

    /// A note shown beside the figures (e.g. the last block's commit time).
    pub fn message(&self, message: String) {
        match &self.shown {
            Shown::Bar(bar) => bar.set_message(format!("{} {message}", self.unit)),
            Shown::Plain(plain) => {
                plain.lock().unwrap_or_else(|e| e.into_inner()).message = message;
            }
        }
    }

    /// The work is over: the bar is cleared, or a last plain line says where it ended.
    pub fn finish(&self) {
        match &self.shown {
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Plain(plain) => {
                let p = plain.lock().unwrap_or_else(|e| e.into_inner());
                eprintln!("{}", self.line(&p));
            }
        }
    }

    /// `what: done/total unit (pct%), rate/s, ETA s [message]`.
    fn line(&self, p: &Plain) -> String {
        let secs = p.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            p.done as f64 / secs
        } else {
            0.0
        };
        let left = self.total.saturating_sub(p.done);
        let eta = if left == 0 {
            "0 s".to_string()
        } else if rate > 0.0 {
            format!("{:.0} s", left as f64 / rate)
        } else {
            "unknown".to_string()
        };
        let percent = if self.total == 0 {
            100.0
        } else {
            p.done as f64 * 100.0 / self.total as f64
        };
        let mut line = format!(
            "{}: {}/{} {} ({percent:.0}%), {rate:.1}/s, ETA {eta}",
            self.what, p.done, self.total, self.unit
        );
        if !p.message.is_empty() {
            line.push_str("; ");
            line.push_str(&p.message);
        }
        line
    }
}

/// The plain lines' interval: [`PLAIN_INTERVAL_ENV`], else [`DEFAULT_PLAIN_INTERVAL`].
fn plain_interval() -> Duration {
    std::env::var(PLAIN_INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_PLAIN_INTERVAL, Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_has_the_count_the_rate_and_the_time_left() {
        let progress = Progress::plain("verify", "blocks", 200, Duration::ZERO);
        let Shown::Plain(plain) = &progress.shown else {
            unreachable!()
        };
        {
            let mut p = plain.lock().unwrap();
            p.started = Instant::now() - Duration::from_secs(10);
            p.done = 50;
        }
        let line = progress.line(&plain.lock().unwrap());
        assert!(
            line.starts_with("verify: 50/200 blocks (25%), 5.0/s, ETA 30 s"),
            "{line}"
        );
        plain.lock().unwrap().done = 200;
        let line = progress.line(&plain.lock().unwrap());
        assert!(line.ends_with("ETA 0 s"), "{line}");
    }
}
