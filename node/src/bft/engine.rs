//! The engine thread: Malachite's consensus state machine (`State` and `process!`), fed with
//! the validators' messages, timeouts and this validator's work, one input at a time. Every
//! effect it asks for is handled here: signing and verifying with the validators' keys,
//! building a block from the pool, sending messages over HTTP, timers, the write-ahead log,
//! committing a decided block and keeping double-signing evidence.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use malachitebft_core_consensus::{
    process, Effect, Error as EngineError, Input, LivenessMsg, LocallyProposedValue,
    MisbehaviorEvidence, Params, ProposedValue, Resumable, Resume, SignedConsensusMsg, State,
    ValuePayload,
};
use malachitebft_core_types::{
    CertificateError, CommitCertificate as EngineCommit, NilOrVal, SignedProposal, SignedVote,
    ThresholdParams, Timeout, TimeoutKind, Validity, ValueOrigin, VoteExtensionPolicy, VoteType,
};
use serde::{Deserialize, Serialize};
use sparkid_ledger::block::Vote as LedgerVote;
use sparkid_ledger::{Block, CommitCertificate, Hash, TxOutcome, TxRejection};
use sparkid_registrar::SubmitError;
use tracing::{debug, info, warn};

use super::context::{
    proposal_signing_bytes, round_number, vote_signing_bytes, BlockProposal, BlockValue, Height,
    Sig, SparkContext, Vote,
};
use super::signing;
use super::validator::{lock, Consensus, Event, Evidence, StartError, EVIDENCE_FILE, WAL_FILE};
use super::wire::{
    polka_to_wire, round_to_wire, timeout_from_wal, timeout_to_wal, value_from_wal, value_to_wal,
    EngineCertificate, Message, WalEntry, WireProposal, WireVote,
};

/// Messages kept for the height after the engine's, until it starts.
const MAX_FUTURE: usize = 4096;

/// The first line of the write-ahead log: the height its entries are for.
#[derive(Serialize, Deserialize)]
struct WalHeader {
    height: u64,
}

/// The engine and what its effects need.
pub(super) struct Engine {
    state: State<SparkContext>,
    fx: Effects,
    inbox: Receiver<Event>,
    /// Whether the state's height was started (and not finalized).
    running: bool,
    /// The height to start next when idle.
    next: u64,
    /// Messages for heights after the running one.
    future: VecDeque<(Message, Option<(u64, bool)>)>,
}

/// Everything an effect handler touches (apart from the engine state).
struct Effects {
    c: Arc<Consensus>,
    timers: HashMap<Timeout, u64>,
    timer_seq: u64,
    height: u64,
    /// The values seen at the running height, by id.
    values: HashMap<Hash, BlockValue>,
    wal: File,
    wal_height: u64,
    /// Entries written since the last sync.
    wal_dirty: bool,
    /// Inputs to feed once the current one is processed.
    after: VecDeque<Input<SparkContext>>,
    finalized: bool,
    /// When the running height started: what was pooled before it and is still pooled after
    /// its block was passed over, and is screened against the new head.
    started: std::time::Instant,
}

fn params(c: &Consensus) -> Params<SparkContext> {
    Params {
        address: super::context::Address(c.address.clone()),
        threshold_params: ThresholdParams::default(),
        value_payload: ValuePayload::ProposalAndParts,
        enabled: true,
    }
}

fn new_state(c: &Consensus, height: u64) -> State<SparkContext> {
    State::new(
        c.ctx.clone(),
        Height(height),
        c.vset_at(height),
        params(c),
        MAX_FUTURE,
        MAX_FUTURE,
    )
}

pub(crate) fn log_error(path: &Path, e: impl std::fmt::Display) -> StartError {
    StartError::Log {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl Engine {
    /// The engine at the ledger's next height, after replaying its write-ahead log.
    pub(super) fn open(c: Arc<Consensus>, inbox: Receiver<Event>) -> Result<Engine, StartError> {
        let path = c.ledger.dir().join(WAL_FILE);
        let next = c.ledger.height() + 1;
        let mut entries = Vec::new();
        if let Ok(file) = File::open(&path) {
            let mut lines = BufReader::new(file).lines();
            let header: Option<WalHeader> = lines
                .next()
                .and_then(Result::ok)
                .and_then(|l| serde_json::from_str(&l).ok());
            if header.is_some_and(|h| h.height == next) {
                for line in lines {
                    let line = line.map_err(|e| log_error(&path, e))?;
                    // A torn last line: the crash came before its fsync returned, so nothing
                    // was sent on its strength.
                    if let Ok(entry) = serde_json::from_str::<WalEntry>(&line) {
                        entries.push(entry);
                    }
                }
            }
        }
        let wal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| log_error(&path, e))?;
        let mut engine = Engine {
            state: new_state(&c, next),
            fx: Effects {
                c,
                timers: HashMap::new(),
                timer_seq: 0,
                height: next,
                values: HashMap::new(),
                wal,
                wal_dirty: false,
                wal_height: if entries.is_empty() { 0 } else { next },
                after: VecDeque::new(),
                finalized: false,
                started: std::time::Instant::now(),
            },
            inbox,
            running: false,
            next,
            future: VecDeque::new(),
        };
        if !entries.is_empty() {
            info!(
                height = next,
                entries = entries.len(),
                "consensus: replaying the write-ahead log"
            );
            engine.replay(entries);
        }
        Ok(engine)
    }

    fn replay(&mut self, entries: Vec<WalEntry>) {
        let inputs: Vec<Input<SparkContext>> = entries
            .into_iter()
            .filter_map(|e| match e {
                WalEntry::Vote(v) => v.to_signed().ok().map(Input::Vote),
                WalEntry::Proposal(p) => p.to_signed().ok().map(|p| {
                    self.fx
                        .values
                        .insert(p.message.value.id, p.message.value.clone());
                    Input::Proposal(p)
                }),
                WalEntry::Value {
                    round,
                    valid_round,
                    proposer,
                    header,
                    transactions,
                    valid,
                } => value_from_wal(round, valid_round, &proposer, &header, &transactions, valid)
                    .ok()
                    .map(|v| {
                        self.fx.values.insert(v.value.id, v.value.clone());
                        Input::ProposedValue(v, ValueOrigin::Consensus)
                    }),
                WalEntry::Timeout { kind, round } => timeout_from_wal(&kind, round)
                    .ok()
                    .map(Input::TimeoutElapsed),
                WalEntry::Polka(cert) => match cert.to_engine() {
                    Ok(EngineCertificate::Polka(p)) => Some(Input::PolkaCertificate(p)),
                    _ => None,
                },
            })
            .collect();
        let height = self.next;
        self.feed(Input::StartHeight(
            Height(height),
            self.fx.c.vset_at(height),
            true,
            None,
            VoteExtensionPolicy::Disabled,
        ));
        self.running = true;
        self.state.index_wal_entries(inputs.iter());
        for input in inputs {
            self.feed(input);
        }
        self.state.reset_entries_index();
        self.settle();
    }

    /// Runs until the daemon exits.
    pub(super) fn run(mut self) {
        while let Ok(event) = self.inbox.recv() {
            self.on_event(event);
            self.settle();
        }
    }

    /// Feeds one input and handles its effects.
    fn feed(&mut self, input: Input<SparkContext>) {
        let Engine { state, fx, .. } = self;
        let result: Result<(), EngineError<SparkContext>> = process!(
            input: input,
            state: state,
            metrics: &(),
            with: effect => fx.handle(effect)
        );
        if let Err(e) = result {
            debug!(error = ?e, "consensus: the engine refused an input");
        }
    }

    /// Feeds what effects queued, starts the next height when it is due, updates the metrics.
    fn settle(&mut self) {
        loop {
            while let Some(input) = self.fx.after.pop_front() {
                self.feed(input);
            }
            if self.fx.finalized {
                self.fx.finalized = false;
                self.running = false;
                self.next = self.state.height().0 + 1;
                self.fx.c.wake_writers();
            }
            if !self.running && self.has_work() {
                self.start();
                continue;
            }
            break;
        }
        let (h, r) = (self.state.height().0, round_number(self.state.round()));
        *lock(&self.fx.c.position) = (if self.running { h } else { self.next }, r);
        self.fx.c.metrics.height.set(h as i64);
        self.fx.c.metrics.round.set(r as i64);
    }

    fn has_work(&self) -> bool {
        !lock(&self.fx.c.pool).is_empty()
            || self.future.iter().any(|(m, _)| m.height() == self.next)
    }

    /// Starts the next height and feeds the messages that came early for it.
    fn start(&mut self) {
        let height = self.next;
        if self.state.height().0 != height && self.state.height().0 + 1 != height {
            self.state = new_state(&self.fx.c, height);
        }
        self.fx.height = height;
        self.fx.started = std::time::Instant::now();
        self.fx.values.clear();
        self.fx.timers.clear();
        self.fx.start_wal(height);
        debug!(height, "consensus: starting a height");
        self.running = true;
        self.feed(Input::StartHeight(
            Height(height),
            self.fx.c.vset_at(height),
            false,
            None,
            VoteExtensionPolicy::Disabled,
        ));
        let early: Vec<_> = self.future.drain(..).collect();
        for (m, checked) in early {
            if m.height() >= height {
                self.on_message(m, checked);
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Work => {}
            Event::Synced => {
                let head = self.fx.c.ledger.height();
                let current = if self.running {
                    self.state.height().0
                } else {
                    self.next
                };
                if head >= current {
                    info!(
                        head,
                        "consensus: caught up past the engine's height; restarting there"
                    );
                    self.next = head + 1;
                    self.running = false;
                    self.state = new_state(&self.fx.c, self.next);
                    self.fx.values.clear();
                    self.fx.timers.clear();
                    self.future.retain(|(m, _)| m.height() > head);
                    self.fx.c.prune_after_commit(&[], None);
                }
            }
            Event::Timeout(height, timeout, seq) => {
                if self.running
                    && height == self.state.height().0
                    && self.fx.timers.get(&timeout) == Some(&seq)
                {
                    self.fx.timers.remove(&timeout);
                    let kind = match timeout.kind {
                        TimeoutKind::Propose => "propose",
                        TimeoutKind::Prevote => "prevote",
                        TimeoutKind::Precommit => "precommit",
                        TimeoutKind::Rebroadcast => "rebroadcast",
                        TimeoutKind::FinalizeHeight(_) => "finalize",
                    };
                    if let Ok(c) = self
                        .fx
                        .c
                        .metrics
                        .timeouts
                        .get_metric_with_label_values(&[kind])
                    {
                        c.inc();
                    }
                    self.feed(Input::TimeoutElapsed(timeout));
                }
            }
            Event::Message(m, checked) => self.on_message(m, checked),
        }
    }

    fn on_message(&mut self, message: Message, checked: Option<(u64, bool)>) {
        let h = message.height();
        let current = if self.running {
            self.state.height().0
        } else {
            self.next
        };
        if h < current {
            return;
        }
        if h > current || (!self.running && h != self.next) {
            if self.future.len() < MAX_FUTURE {
                self.future.push_back((message, checked));
            }
            return;
        }
        if !self.running {
            // A peer works on the next height: join it (the message is fed after the start).
            self.future.push_back((message, checked));
            self.start();
            return;
        }
        match message {
            Message::Vote(v) => {
                if let Ok(v) = v.to_signed() {
                    self.feed(Input::Vote(v));
                }
            }
            Message::Certificate(cert) => match cert.to_engine() {
                Ok(EngineCertificate::Polka(p)) => self.feed(Input::PolkaCertificate(p)),
                Ok(EngineCertificate::Round(r)) => self.feed(Input::RoundCertificate(r)),
                Err(e) => debug!(error = %e, "consensus: a certificate dropped"),
            },
            Message::Proposal(p) => {
                let Ok(signed) = p.to_signed() else { return };
                let head = self.fx.c.ledger.height();
                if head + 1 != h {
                    self.fx.c.sync_now.notify_one();
                    return;
                }
                let valid = match checked {
                    Some((at, valid)) if at == head => valid,
                    _ => {
                        let check = self.fx.c.check_proposal(&p.header, &p.transactions);
                        if let Err(e) = &check {
                            info!(reason = %e, "consensus: a proposal does not check");
                        }
                        check.is_ok()
                    }
                };
                let label = if valid { "valid" } else { "invalid" };
                if let Ok(c) = self
                    .fx
                    .c
                    .metrics
                    .proposals
                    .get_metric_with_label_values(&["received", label])
                {
                    c.inc();
                }
                let value = signed.message.value.clone();
                self.fx.values.insert(value.id, value.clone());
                self.feed(Input::ProposedValue(
                    ProposedValue {
                        height: signed.message.height,
                        round: signed.message.round,
                        valid_round: signed.message.pol_round,
                        proposer: signed.message.validator.clone(),
                        value,
                        validity: Validity::from_bool(valid),
                    },
                    ValueOrigin::Consensus,
                ));
                self.feed(Input::Proposal(signed));
            }
        }
    }
}

impl Effects {
    fn start_wal(&mut self, height: u64) {
        if self.wal_height == height {
            return;
        }
        self.wal_height = height;
        let header = serde_json::to_string(&WalHeader { height }).unwrap_or_default();
        let result = self
            .wal
            .set_len(0)
            .and_then(|()| writeln!(self.wal, "{header}"))
            .and_then(|()| self.wal.sync_data());
        if let Err(e) = result {
            warn!(error = %e, "consensus: the write-ahead log could not be reset");
        }
    }

    /// Appends an entry; it is synced before anything this validator signs leaves it
    /// ([`Effects::sync_wal`]), so a restart never signs against what it already sent.
    fn append(&mut self, entry: &WalEntry) -> Result<(), String> {
        let line = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        writeln!(self.wal, "{line}").map_err(|e| e.to_string())?;
        self.wal_dirty = true;
        Ok(())
    }

    fn sync_wal(&mut self) {
        if self.wal_dirty {
            if let Err(e) = self.wal.sync_data() {
                warn!(error = %e, "consensus: the write-ahead log could not be synced");
            }
            self.wal_dirty = false;
        }
    }

    fn sign_vote(&self, vote: Vote) -> SignedVote<SparkContext> {
        let sig: Sig = self
            .c
            .key
            .sign(&vote_signing_bytes(&self.c.ctx.chain_id, &vote))
            .into();
        SignedVote::new(vote, sig)
    }

    fn sign_proposal(&self, proposal: BlockProposal) -> SignedProposal<SparkContext> {
        let sig: Sig = self
            .c
            .key
            .sign(&proposal_signing_bytes(&self.c.ctx.chain_id, &proposal))
            .into();
        SignedProposal::new(proposal, sig)
    }

    fn publish(&mut self, msg: &SignedConsensusMsg<SparkContext>) {
        self.sync_wal();
        self.c.publish(&Message::from_engine(msg));
        if !self.c.byzantine {
            return;
        }
        // Dev-only equivocation: a second, conflicting message of the same height and round.
        match msg {
            SignedConsensusMsg::Vote(v) => {
                let mut other = v.message.clone();
                other.value = match other.value {
                    NilOrVal::Val(_) => NilOrVal::Nil,
                    NilOrVal::Nil => NilOrVal::Val(Hash([0xbd; 32])),
                };
                let signed = self.sign_vote(other);
                warn!(kind = ?v.message.kind, "consensus: byzantine test mode: a double vote");
                self.c
                    .publish(&Message::Vote(WireVote::from_signed(&signed)));
            }
            SignedConsensusMsg::Proposal(p) => {
                let mut header = (*p.message.value.header).clone();
                header.time += 1;
                let mut other = p.message.clone();
                other.value = BlockValue::new(header, (*p.message.value.transactions).clone());
                let signed = self.sign_proposal(other);
                warn!("consensus: byzantine test mode: a second proposal");
                self.c
                    .publish(&Message::Proposal(WireProposal::from_signed(&signed)));
            }
        }
    }

    fn schedule(&mut self, timeout: Timeout) {
        self.timer_seq += 1;
        let seq = self.timer_seq;
        self.timers.insert(timeout, seq);
        let duration = match timeout.kind {
            TimeoutKind::FinalizeHeight(d) => d,
            _ if timeout.round.is_defined() => super::context::timeouts().duration_for(timeout),
            _ => super::context::timeouts().propose,
        };
        let events = self.c.events.clone();
        let height = self.height;
        self.c.runtime.spawn(async move {
            tokio::time::sleep(duration).await;
            let _ = events.send(Event::Timeout(height, timeout, seq));
        });
    }

    /// The proposer's block: the pool executed on the head.
    fn build(&mut self, height: u64) -> Option<BlockValue> {
        let c = self.c.clone();
        if c.ledger.height() + 1 != height {
            c.sync_now.notify_one();
            return None;
        }
        let batch = lock(&c.pool).batch();
        let built = c.ledger.build_block_kept(
            c.machine.as_ref(),
            batch,
            sparkid_registrar::service::now(),
            &c.address,
        );
        match built {
            Ok((block, outcomes)) => {
                c.settle_outcomes(outcomes);
                let value = BlockValue::new(
                    block.header().clone(),
                    block
                        .transactions()
                        .iter()
                        .map(|t| t.tx().clone())
                        .collect(),
                );
                self.values.insert(value.id, value.clone());
                c.keep_checked(block);
                if let Ok(m) = c
                    .metrics
                    .proposals
                    .get_metric_with_label_values(&["made", "valid"])
                {
                    m.inc();
                }
                Some(value)
            }
            Err(e) => {
                warn!(error = %e, "consensus: the block could not be built");
                None
            }
        }
    }

    fn commit(&mut self, cert: &EngineCommit<SparkContext>) {
        let c = self.c.clone();
        let height = cert.height.0;
        if c.ledger.height() >= height {
            return;
        }
        let Some(value) = self.values.get(&cert.value_id).cloned() else {
            warn!(
                height,
                "consensus: decided a block this validator does not hold; catching up"
            );
            c.sync_now.notify_one();
            return;
        };
        let round = round_number(cert.round);
        let votes = cert
            .commit_signatures
            .iter()
            .map(|s| LedgerVote {
                validator: s.address.0.clone(),
                signature: s.signature.into(),
                round,
            })
            .collect();
        let hashes: Vec<Hash> = value.transactions.iter().map(|t| t.hash()).collect();
        let certificate = CommitCertificate {
            block_hash: value.id,
            votes,
        };
        // Built or checked here on the same head: its writes are committed as its execution
        // computed them, with no signature checked or transaction executed again on the
        // engine's thread.
        let checked = lock(&c.checked).remove(&value.id).map(|(_, b)| b);
        let applied = match checked {
            Some(block) => c.ledger.apply_checked(block, certificate),
            None => c.ledger.apply_block(
                c.machine.as_ref(),
                Block {
                    header: (*value.header).clone(),
                    transactions: (*value.transactions).clone(),
                    certificate,
                },
            ),
        };
        lock(&c.checked).retain(|_, (h, _)| *h > height);
        match applied {
            Ok(()) => {
                c.metrics.decided.inc();
                debug!(
                    height,
                    round,
                    txs = hashes.len(),
                    "consensus: committed block"
                );
            }
            Err(e) if c.ledger.height() >= height => {
                debug!(height, error = %e, "consensus: the block was applied meanwhile")
            }
            Err(e) => warn!(height, error = %e, "consensus: a decided block did not apply"),
        }
        c.prune_after_commit(&hashes, Some(self.started));
    }

    fn record_evidence(&mut self, evidence: &MisbehaviorEvidence<SparkContext>) {
        let mut found = Vec::new();
        for (address, pairs) in evidence.votes.iter() {
            for (a, b) in pairs {
                found.push(Evidence {
                    kind: "double-vote".into(),
                    validator: address.0.clone(),
                    height: a.message.height.0,
                    round: round_number(a.message.round),
                    messages: vec![
                        Message::Vote(WireVote::from_signed(a)),
                        Message::Vote(WireVote::from_signed(b)),
                    ],
                    recorded_at: crate::validator_auth::now_ms(),
                });
            }
        }
        for (address, pairs) in evidence.proposals.iter() {
            for (a, b) in pairs {
                found.push(Evidence {
                    kind: "double-proposal".into(),
                    validator: address.0.clone(),
                    height: a.message.height.0,
                    round: round_number(a.message.round),
                    messages: vec![
                        Message::Proposal(WireProposal::from_signed(a)),
                        Message::Proposal(WireProposal::from_signed(b)),
                    ],
                    recorded_at: crate::validator_auth::now_ms(),
                });
            }
        }
        if found.is_empty() {
            return;
        }
        let path = self.c.ledger.dir().join(EVIDENCE_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path);
        for e in &found {
            warn!(kind = %e.kind, validator = %e.validator, height = e.height, round = e.round,
                "consensus: double signing recorded");
            if let Ok(m) = self
                .c
                .metrics
                .evidence
                .get_metric_with_label_values(&[&e.kind])
            {
                m.inc();
            }
            if let Ok(mut f) = file.as_ref() {
                let _ = writeln!(f, "{}", serde_json::to_string(e).unwrap_or_default());
            }
        }
        if let Ok(f) = file {
            let _ = f.sync_data();
        }
        lock(&self.c.evidence).extend(found);
    }

    fn handle(&mut self, effect: Effect<SparkContext>) -> Result<Resume<SparkContext>, String> {
        Ok(match effect {
            Effect::CancelAllTimeouts(r) => {
                self.timers.clear();
                r.resume_with(())
            }
            Effect::CancelTimeout(t, r) => {
                self.timers.remove(&t);
                r.resume_with(())
            }
            Effect::ScheduleTimeout(t, r) => {
                self.schedule(t);
                r.resume_with(())
            }
            Effect::StartRound(height, round, proposer, _role, r) => {
                // The round's timeouts grow with it: logged and exposed, so a stalled chain
                // shows how long each round waits.
                let propose = super::context::timeouts().duration_for(Timeout::propose(round));
                debug!(height = height.0, round = %round, proposer = %proposer,
                    propose_timeout_ms = propose.as_millis() as u64, "consensus: round");
                *lock(&self.c.position) = (height.0, round_number(round));
                self.c.metrics.propose_timeout.set(propose.as_secs_f64());
                r.resume_with(())
            }
            Effect::PublishConsensusMsg(msg, r) => {
                self.publish(&msg);
                r.resume_with(())
            }
            Effect::PublishLivenessMsg(msg, r) => {
                let m = match &msg {
                    LivenessMsg::Vote(v) => Message::Vote(WireVote::from_signed(v)),
                    LivenessMsg::PolkaCertificate(p) => {
                        Message::Certificate(polka_to_wire(p, &self.c.ctx))
                    }
                    LivenessMsg::SkipRoundCertificate(rc) => {
                        Message::Certificate(round_to_wire(rc, &self.c.ctx))
                    }
                };
                self.c.publish(&m);
                r.resume_with(())
            }
            Effect::RepublishVote(v, r) => {
                self.c.publish(&Message::Vote(WireVote::from_signed(&v)));
                r.resume_with(())
            }
            Effect::RepublishRoundCertificate(rc, r) => {
                self.c
                    .publish(&Message::Certificate(round_to_wire(&rc, &self.c.ctx)));
                r.resume_with(())
            }
            Effect::GetValue(height, round, _timeout, r) => {
                if let Some(value) = self.build(height.0) {
                    self.after
                        .push_back(Input::Propose(LocallyProposedValue::new(
                            height, round, value,
                        )));
                }
                r.resume_with(())
            }
            Effect::RestreamProposal(height, round, valid_round, address, value_id, r) => {
                if let Some(value) = self.values.get(&value_id).cloned() {
                    if address.0 == self.c.address {
                        let signed = self.sign_proposal(BlockProposal {
                            height,
                            round,
                            value,
                            pol_round: valid_round,
                            validator: address,
                        });
                        self.c
                            .publish(&Message::Proposal(WireProposal::from_signed(&signed)));
                    }
                }
                r.resume_with(())
            }
            Effect::CertVerifiedSyncValue(_, _, r) => r.resume_with(()),
            Effect::CertRejectedSyncValue(_, _, _, r) => r.resume_with(()),
            Effect::Decide(cert, _, r) => {
                self.commit(&cert);
                r.resume_with(())
            }
            Effect::SignVote(vote, r) => r.resume_with(self.sign_vote(vote)),
            Effect::SignProposal(proposal, r) => r.resume_with(self.sign_proposal(proposal)),
            Effect::VerifySignature(msg, _key, r) => {
                if self
                    .c
                    .verified
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&msg.signature.0)
                {
                    return Ok(r.resume_with(true));
                }
                let vset = self.c.vset_at(self.height);
                let ok = match msg.message {
                    malachitebft_core_consensus::ConsensusMsg::Vote(v) => signing::check_vote(
                        &self.c.ctx.chain_id,
                        &vset,
                        &SignedVote::new(v, msg.signature),
                    )
                    .is_ok(),
                    malachitebft_core_consensus::ConsensusMsg::Proposal(p) => {
                        signing::check_proposal(
                            &self.c.ctx.chain_id,
                            &vset,
                            &SignedProposal::new(p, msg.signature),
                        )
                        .is_ok()
                    }
                };
                r.resume_with(ok)
            }
            Effect::VerifyCommitCertificate(cert, vs, thresholds, r) => {
                let votes = cert.commit_signatures.iter().map(|s| {
                    SignedVote::new(
                        Vote {
                            height: cert.height,
                            round: cert.round,
                            value: NilOrVal::Val(cert.value_id),
                            kind: VoteType::Precommit,
                            validator: s.address.clone(),
                        },
                        s.signature,
                    )
                });
                r.resume_with(signing::check_certificate(
                    &self.c.ctx.chain_id,
                    &vs,
                    votes,
                    thresholds.quorum,
                ))
            }
            Effect::VerifyExtendedCommitCertificate(_, _, _, _, r) => {
                // Synced values come through the ledger's own catch-up, never the engine's.
                r.resume_with(Err(CertificateError::VerificationError(None)))
            }
            Effect::VerifyPolkaCertificate(cert, vs, thresholds, r) => {
                let votes: Vec<_> = cert.votes(&self.c.ctx).collect();
                r.resume_with(signing::check_certificate(
                    &self.c.ctx.chain_id,
                    &vs,
                    votes.into_iter(),
                    thresholds.quorum,
                ))
            }
            Effect::VerifyRoundCertificate(cert, vs, thresholds, r) => {
                let threshold = match cert.cert_type {
                    malachitebft_core_types::RoundCertificateType::Precommit => thresholds.quorum,
                    malachitebft_core_types::RoundCertificateType::Skip => thresholds.honest,
                };
                let votes: Vec<_> = cert.votes(&self.c.ctx).collect();
                r.resume_with(signing::check_certificate(
                    &self.c.ctx.chain_id,
                    &vs,
                    votes.into_iter(),
                    threshold,
                ))
            }
            Effect::WalAppend(height, input, r) => {
                if height.0 == self.wal_height {
                    let entry = match &input {
                        Input::Vote(v) => Some(WalEntry::Vote(WireVote::from_signed(v))),
                        Input::Proposal(p) => {
                            Some(WalEntry::Proposal(WireProposal::from_signed(p)))
                        }
                        Input::ProposedValue(v, _) => Some(value_to_wal(v)),
                        Input::TimeoutElapsed(t) => timeout_to_wal(t),
                        Input::PolkaCertificate(p) => {
                            Some(WalEntry::Polka(polka_to_wire(p, &self.c.ctx)))
                        }
                        _ => None,
                    };
                    if let Some(entry) = entry {
                        self.append(&entry)?;
                    }
                }
                r.resume_with(())
            }
            Effect::ExtendVote(_, _, _, _, r) => r.resume_with(None),
            Effect::VerifyVoteExtension(_, _, _, _, _, _, r) => r.resume_with(Ok(())),
            Effect::Finalize(_cert, _, evidence, r) => {
                self.record_evidence(&evidence);
                self.finalized = true;
                r.resume_with(())
            }
        })
    }
}

impl Consensus {
    /// Answers the writers of pooled transactions an execution left out for good, and drops
    /// the ones a block already holds.
    fn settle_outcomes(&self, outcomes: Vec<TxOutcome<sparkid_registrar::OperationError>>) {
        let mut refused = Vec::new();
        let mut done = Vec::new();
        for outcome in outcomes {
            if let TxOutcome::Rejected { hash, reason } = outcome {
                match reason {
                    TxRejection::BlockFull => {}
                    TxRejection::Duplicate(_) => done.push(hash),
                    other => refused.push((hash, SubmitError::Rejected(other))),
                }
            }
        }
        if !done.is_empty() {
            let mut pool = lock(&self.pool);
            for h in &done {
                pool.remove(h);
            }
        }
        self.refuse(refused);
    }

    /// After a block: drops its transactions from the pool, and answers the writers of
    /// pooled ones the new state refuses. Only those pooled before `before` (the start of the
    /// block's height; all with none) are screened: a block passed them over, so they may
    /// never fit. Those pooled since were not seen by its proposer; the next proposer screens
    /// them as it builds, and the next commit here, should they be passed over again. Under
    /// load this keeps the pool (the next block's worth) from being executed once more after
    /// each commit, on the engine's thread.
    pub(super) fn prune_after_commit(&self, included: &[Hash], before: Option<std::time::Instant>) {
        let batch = {
            let mut pool = lock(&self.pool);
            for h in included {
                pool.remove(h);
            }
            if pool.is_empty() {
                return;
            }
            pool.batch_before(before)
        };
        if batch.is_empty() {
            return;
        }
        if let Ok(outcomes) = self.ledger.outcomes_on_head(
            self.machine.as_ref(),
            batch,
            sparkid_registrar::service::now(),
        ) {
            self.settle_outcomes(outcomes);
        }
    }
}
