//! The jobs a registrar keeps while their clients sign: each waits at most its time to live,
//! they are capped per client and in total (count and bytes), and each has a secret without
//! which it can be neither continued nor cancelled.
//!
//! Every operation costs O(1), amortized: jobs expire in creation order (they all live the same
//! time), so expiry pops from the front of a queue instead of scanning every job on each insert;
//! an id whose job finished early stays queued until it reaches the front, or until the queue,
//! grown to twice the live jobs, is compacted.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use thiserror::Error;

/// How long a job waits for its signature by default.
pub const DEFAULT_JOB_TTL: Duration = Duration::from_secs(600);
/// The most jobs waiting at once, by default.
pub const DEFAULT_MAX_PENDING_JOBS: usize = 4096;
/// The most jobs one client may have waiting at once, by default.
pub const DEFAULT_MAX_PENDING_JOBS_PER_CLIENT: usize = 64;
/// The most bytes of transaction bodies waiting at once, by default: a body may be 64 KiB, so
/// the count alone would allow 256 MiB.
pub const DEFAULT_MAX_PENDING_JOB_BYTES: usize = 64 * 1024 * 1024;

/// Who opened a job, as far as the caps are concerned: the peer's IP address. An IPv6 peer
/// counts by its /64 prefix, since one host commonly holds a whole /64 and could otherwise
/// open jobs from as many addresses as it likes; an IPv4-mapped IPv6 address counts as IPv4.
///
/// The address is chosen over the submitting key because a job is opened before anything is
/// signed: the key a request names is not yet proven, and a new key costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    /// The client at `ip`.
    pub fn from_ip(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(_) => Client(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    Client(IpAddr::from(segments))
                }
            },
        }
    }

    /// The client of a caller that cannot name one (a library caller, a door without peer
    /// addresses): all such callers share one allowance.
    pub fn unknown() -> Client {
        Client(IpAddr::from([0, 0, 0, 0]))
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

/// The bounds of a [`JobBook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// The most jobs waiting at once.
    pub max_pending: usize,
    /// The most jobs one [`Client`] may have waiting at once.
    pub max_pending_per_client: usize,
    /// The most bytes (transaction bodies' canonical JSON) waiting at once.
    pub max_pending_bytes: usize,
    /// How long a job waits for its signature.
    pub ttl: Duration,
}

impl Default for JobLimits {
    fn default() -> JobLimits {
        JobLimits {
            max_pending: DEFAULT_MAX_PENDING_JOBS,
            max_pending_per_client: DEFAULT_MAX_PENDING_JOBS_PER_CLIENT,
            max_pending_bytes: DEFAULT_MAX_PENDING_JOB_BYTES,
            ttl: DEFAULT_JOB_TTL,
        }
    }
}

/// Why a job was not opened: a cap is reached. Each says when a slot is sure to be free (the
/// oldest job concerned expires then; one may finish sooner).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Full {
    /// The client has its most jobs waiting.
    #[error(
        "too many jobs waiting for signatures per client: {client} has {pending}, the most \
         allowed (registrar.max_pending_jobs_per_client); finish or cancel one, or retry later"
    )]
    Client {
        /// The client.
        client: Client,
        /// Its waiting jobs.
        pending: usize,
        /// When its oldest job expires.
        retry_after: Duration,
    },
    /// The registrar holds its most jobs.
    #[error(
        "too many jobs waiting for signatures in total: {pending}, the most this registrar \
         keeps (registrar.max_pending_jobs); retry later"
    )]
    Total {
        /// The waiting jobs.
        pending: usize,
        /// When the oldest job expires.
        retry_after: Duration,
    },
    /// The waiting jobs hold their most bytes.
    #[error(
        "too many bytes waiting for signatures in total: {bytes} of transactions, this one \
         would pass the most this registrar keeps (registrar.max_pending_job_bytes); retry later"
    )]
    Bytes {
        /// The waiting bytes.
        bytes: usize,
        /// When the oldest job expires.
        retry_after: Duration,
    },
}

impl Full {
    /// When to try again: at least a second.
    pub fn retry_after(&self) -> Duration {
        let (Full::Client { retry_after, .. }
        | Full::Total { retry_after, .. }
        | Full::Bytes { retry_after, .. }) = self;
        (*retry_after).max(Duration::from_secs(1))
    }
}

/// Why a job cannot be continued or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Refused {
    /// No such job: unknown, finished, cancelled or expired.
    #[error("it is unknown, finished, cancelled or expired")]
    Unknown,
    /// The secret is missing or is not the job's.
    #[error(
        "secret.jobSecret is missing or is not this job's (the jobSecret of its action answer, \
         in didRegistrationMetadata)"
    )]
    WrongSecret,
}

/// A job just opened: its id and its secret, both for its client only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The job id.
    pub id: String,
    /// The secret that continues or cancels it.
    pub secret: String,
}

struct Pending<T> {
    job: T,
    client: Client,
    secret: String,
    created: Instant,
    bytes: usize,
}

#[derive(Default)]
struct ClientJobs {
    pending: usize,
    /// The client's job ids in creation order (finished ones too, until dropped).
    order: VecDeque<(Instant, String)>,
}

/// The jobs waiting for their clients, bounded by [`JobLimits`].
pub struct JobBook<T> {
    limits: JobLimits,
    jobs: HashMap<String, Pending<T>>,
    /// Job ids in creation order, which is expiry order.
    order: VecDeque<(Instant, String)>,
    clients: HashMap<Client, ClientJobs>,
    bytes: usize,
}

impl<T> JobBook<T> {
    /// An empty book.
    pub fn new(limits: JobLimits) -> JobBook<T> {
        JobBook {
            limits,
            jobs: HashMap::new(),
            order: VecDeque::new(),
            clients: HashMap::new(),
            bytes: 0,
        }
    }

    /// Its limits.
    pub fn limits(&self) -> &JobLimits {
        &self.limits
    }

    /// The jobs waiting.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job waits.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Whether the job `id` waits (and has not expired).
    pub fn contains(&self, id: &str, now: Instant) -> bool {
        self.jobs
            .get(id)
            .is_some_and(|p| now.saturating_duration_since(p.created) < self.limits.ttl)
    }

    /// Opens a job of `bytes` for `client`, unless a cap is reached.
    pub fn open(
        &mut self,
        client: Client,
        job: T,
        bytes: usize,
        now: Instant,
    ) -> Result<Opened, Full> {
        self.expire(now);
        let own = self.clients.get(&client).map_or(0, |c| c.pending);
        if own >= self.limits.max_pending_per_client {
            return Err(Full::Client {
                client,
                pending: own,
                retry_after: self.client_retry_after(client, now),
            });
        }
        if self.jobs.len() >= self.limits.max_pending {
            return Err(Full::Total {
                pending: self.jobs.len(),
                retry_after: self.retry_after(now),
            });
        }
        if self.bytes.saturating_add(bytes) > self.limits.max_pending_bytes {
            return Err(Full::Bytes {
                bytes: self.bytes,
                retry_after: self.retry_after(now),
            });
        }
        let id = hex::encode(rand::random::<[u8; 16]>());
        let secret =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        self.order.push_back((now, id.clone()));
        let own = self.clients.entry(client).or_default();
        own.pending += 1;
        own.order.push_back((now, id.clone()));
        self.bytes += bytes;
        self.jobs.insert(
            id.clone(),
            Pending {
                job,
                client,
                secret: secret.clone(),
                created: now,
                bytes,
            },
        );
        Ok(Opened { id, secret })
    }

    /// The job `id`, if `secret` is its secret. The secret is compared in constant time.
    pub fn job(&mut self, id: &str, secret: Option<&str>, now: Instant) -> Result<&T, Refused> {
        self.expire(now);
        let pending = self.jobs.get(id).ok_or(Refused::Unknown)?;
        match secret {
            Some(given) if same_secret(given, &pending.secret) => Ok(&pending.job),
            _ => Err(Refused::WrongSecret),
        }
    }

    /// Removes the job `id` (finished or cancelled) and returns it.
    pub fn take(&mut self, id: &str) -> Option<T> {
        let pending = self.jobs.remove(id)?;
        self.bytes -= pending.bytes;
        if let Some(own) = self.clients.get_mut(&pending.client) {
            own.pending -= 1;
            if own.pending == 0 {
                self.clients.remove(&pending.client);
            } else if own.order.len() > 2 * own.pending + 8 {
                own.order.retain(|(_, id)| self.jobs.contains_key(id));
            }
        }
        if self.order.len() > 2 * self.jobs.len() + 64 {
            self.order.retain(|(_, id)| self.jobs.contains_key(id));
        }
        Some(pending.job)
    }

    /// Drops the expired jobs, and the ids of finished ones, from the front of the queue.
    fn expire(&mut self, now: Instant) {
        while let Some((created, id)) = self.order.front() {
            let live = self.jobs.contains_key(id);
            if live && now.saturating_duration_since(*created) < self.limits.ttl {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                if live {
                    self.take(&id);
                }
            }
        }
    }

    /// When the oldest waiting job expires.
    fn retry_after(&self, now: Instant) -> Duration {
        // `expire` has just left a live job at the front.
        self.order.front().map_or(Duration::ZERO, |(created, _)| {
            self.limits
                .ttl
                .saturating_sub(now.saturating_duration_since(*created))
        })
    }

    /// When the oldest job of `client` expires.
    fn client_retry_after(&mut self, client: Client, now: Instant) -> Duration {
        let Some(own) = self.clients.get_mut(&client) else {
            return Duration::ZERO;
        };
        while own
            .order
            .front()
            .is_some_and(|(_, id)| !self.jobs.contains_key(id))
        {
            own.order.pop_front();
        }
        own.order.front().map_or(Duration::ZERO, |(created, _)| {
            self.limits
                .ttl
                .saturating_sub(now.saturating_duration_since(*created))
        })
    }
}

/// Whether `given` is `secret`, in time that does not depend on where they differ (only on the
/// secret's length, which is public).
fn same_secret(given: &str, secret: &str) -> bool {
    let (given, secret) = (given.as_bytes(), secret.as_bytes());
    if given.len() != secret.len() {
        return false;
    }
    let difference = given
        .iter()
        .zip(secret)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_client: usize) -> JobLimits {
        JobLimits {
            max_pending: total,
            max_pending_per_client: per_client,
            max_pending_bytes: 1000,
            ttl: Duration::from_secs(600),
        }
    }

    fn at(ip: &str) -> Client {
        Client::from_ip(ip.parse().unwrap())
    }

    #[test]
    fn clients_are_addresses_and_ipv6_counts_by_its_64_prefix() {
        assert_eq!(at("2001:db8::1"), at("2001:db8::ffff:2"));
        assert_ne!(at("2001:db8:0:1::1"), at("2001:db8:0:2::1"));
        assert_eq!(at("::ffff:10.0.0.1"), at("10.0.0.1"));
        assert_eq!(at("2001:db8::1").to_string(), "2001:db8::/64");
    }

    #[test]
    fn a_job_needs_its_secret_and_ends_when_taken() {
        let mut book = JobBook::new(limits(10, 10));
        let now = Instant::now();
        let opened = book.open(at("10.0.0.1"), "job", 10, now).unwrap();
        // 32 random bytes: 256 bits.
        assert_eq!(opened.secret.len(), 43);
        assert_eq!(book.job(&opened.id, None, now), Err(Refused::WrongSecret));
        let mut wrong = opened.secret.clone();
        wrong.replace_range(42.., if wrong.ends_with('A') { "B" } else { "A" });
        assert_eq!(
            book.job(&opened.id, Some(&wrong), now),
            Err(Refused::WrongSecret)
        );
        assert_eq!(
            book.job(&opened.id, Some(&opened.secret[1..]), now),
            Err(Refused::WrongSecret)
        );
        assert_eq!(book.job(&opened.id, Some(&opened.secret), now), Ok(&"job"));
        assert_eq!(book.take(&opened.id), Some("job"));
        assert_eq!(
            book.job(&opened.id, Some(&opened.secret), now),
            Err(Refused::Unknown)
        );
    }

    #[test]
    fn caps_per_client_in_total_and_in_bytes_say_when_to_retry() {
        let mut book = JobBook::new(limits(3, 2));
        let start = Instant::now();
        let a = at("10.0.0.1");
        let first = book.open(a, (), 10, start).unwrap();
        book.open(a, (), 10, start + Duration::from_secs(100))
            .unwrap();
        let full = book
            .open(a, (), 10, start + Duration::from_secs(200))
            .unwrap_err();
        // The client's oldest job expires 600 s after it was opened.
        assert!(matches!(full, Full::Client { pending: 2, .. }), "{full:?}");
        assert_eq!(full.retry_after(), Duration::from_secs(400));
        book.open(at("10.0.0.2"), (), 10, start).unwrap();
        let full = book.open(at("10.0.0.3"), (), 10, start).unwrap_err();
        assert!(matches!(full, Full::Total { pending: 3, .. }), "{full:?}");
        // Taking a job frees its slot at once.
        book.take(&first.id);
        book.open(a, (), 10, start).unwrap();
        // Bytes: 1000 in all.
        let mut book = JobBook::new(limits(10, 10));
        book.open(a, (), 900, start).unwrap();
        let full = book.open(at("10.0.0.2"), (), 200, start).unwrap_err();
        assert!(matches!(full, Full::Bytes { bytes: 900, .. }), "{full:?}");
        assert_eq!(full.retry_after(), Duration::from_secs(600));
    }

    #[test]
    fn expired_jobs_are_gone_and_free_their_slots() {
        let mut book = JobBook::new(limits(2, 2));
        let start = Instant::now();
        let a = at("10.0.0.1");
        let old = book.open(a, (), 10, start).unwrap();
        book.open(a, (), 10, start + Duration::from_secs(1))
            .unwrap();
        let later = start + Duration::from_secs(600);
        assert!(!book.contains(&old.id, later));
        // The first expired: its slot is free again, the second still waits.
        book.open(a, (), 10, later).unwrap();
        assert_eq!(book.len(), 2);
        assert_eq!(
            book.job(&old.id, Some(&old.secret), later),
            Err(Refused::Unknown)
        );
    }

    #[test]
    fn finished_jobs_leave_no_unbounded_queue_behind() {
        let mut book = JobBook::new(limits(10, 10));
        let now = Instant::now();
        let a = at("10.0.0.1");
        let _kept = book.open(a, (), 1, now).unwrap();
        for _ in 0..10_000 {
            let opened = book.open(a, (), 1, now).unwrap();
            book.take(&opened.id);
        }
        assert_eq!(book.len(), 1);
        assert!(
            book.order.len() <= 2 * book.len() + 65,
            "{}",
            book.order.len()
        );
        let own = &book.clients[&a];
        assert!(
            own.order.len() <= 2 * own.pending + 9,
            "{}",
            own.order.len()
        );
        assert_eq!(book.bytes, 1);
    }
}
