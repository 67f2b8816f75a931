//! Stages 3-6, strung together: the per-frame data path after the ring.
//! parse (3) → flow lookup (4; a flow's first packet is classified and its
//! indicator set looked up, and the flow keeps both) → ClientHello
//! reassembly and rules (5) → flow update (4) → erase (6). One plain
//! function that the live capture worker and the offline paths (tests,
//! benches, replay) all call, so there is one copy.
//!
//! Invariant kept: `process_frame` erases the frame on every path — parse
//! error, non-IP, unselected, selected — as its last step.

use std::sync::Arc;

use crate::classify::meta::XdpMeta;
use crate::config::Config;
use crate::erase::erase;
use crate::flow::{FlowTable, FragTable, FragVerdict, Lookup, MechanicalRecord};
use crate::parse::{parse_frame_into, parse_link_into, parse_with_meta_into, Headers, LinkType, ParseError};
use crate::select::{judge_addresses, Handshakes, Matcher, SelectionState, SharedSelection, Snapper};

/// Counts of one batch, flushed to the metrics by the caller.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchCounters {
    pub frames: u64,
    pub frames_erased: u64,
    pub bytes_erased: u64,
    pub parse_errors: [u64; ParseError::ALL.len()],
    pub selected_packets: u64,
    /// Captured frames that came without XDP metadata (walked again here).
    pub frames_without_meta: u64,
    /// Captured frames the XDP snap cut, and the bytes of every captured
    /// frame as it arrived (the copied bytes are `bytes_erased`).
    pub frames_truncated: u64,
    pub bytes_seen: u64,
    /// Packets matched per rule id (few rules match a batch; linear).
    pub rule_matches: Vec<(Arc<str>, u64)>,
}

impl BatchCounters {
    pub fn clear(&mut self) {
        // Keep the rule-match vector's allocation across batches.
        let mut matches = std::mem::take(&mut self.rule_matches);
        matches.clear();
        *self = BatchCounters {
            rule_matches: matches,
            ..BatchCounters::default()
        };
    }
}

pub struct Pipeline {
    shared: SharedSelection,
    /// The selection state this batch uses (refreshed between batches).
    cur: Arc<SelectionState>,
    /// Bumped whenever `cur` changes: flows re-judge their class and
    /// indicator set under a new state.
    gen: u64,
    /// The selection stage's per-worker state.
    matcher: Matcher,
    flows: FlowTable<Handshakes>,
    /// Fragments waiting for (or attributed through) their first one.
    frags: FragTable,
    counters: BatchCounters,
    /// Records of flows that ended; the caller takes them.
    records: Vec<MechanicalRecord>,
}

/// Where a batch's frames are: a worker's UMEM, or a test's buffers.
pub trait Batch {
    fn frames(&self) -> usize;
    /// Frame `i` is next (a chance to prefetch what follows it).
    fn before(&self, _i: usize) {}
    /// Runs `f` on frame `i` and the XDP metadata found before it (taken,
    /// so zeroed).
    fn with_frame<F: FnOnce(&mut [u8], Option<XdpMeta>)>(&mut self, i: usize, f: F);
    /// Zeroes frame `i` and its metadata without processing it; returns
    /// the bytes zeroed.
    fn zero(&mut self, i: usize) -> u64;
}

/// What `process_batch` did beyond the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub received: u64,
    /// The per-frame path panicked: this many frames (the one in hand and
    /// the rest of the batch) were zeroed and counted as erased without
    /// being processed. The caller stops capture.
    pub panicked: Option<u64>,
}

impl Pipeline {
    /// A pipeline with its own selection state (offline use, tests).
    pub fn new(cfg: &Config, queue: u32) -> Pipeline {
        Self::with_shared(cfg, queue, crate::select::shared(cfg.selection_state()))
    }

    /// A pipeline for offline input (`furui replay`): its own selection
    /// state, and a flow table that grows as flows come (live pipelines
    /// size theirs up front, so that no growth pauses a worker).
    pub fn offline(cfg: &Config) -> Pipeline {
        let mut p = Self::new(cfg, 0);
        p.flows.grow_on_demand();
        p
    }

    /// A pipeline reading the shared, reloadable selection state.
    pub fn with_shared(cfg: &Config, queue: u32, shared: SharedSelection) -> Pipeline {
        let cur = shared.load_full();
        let matcher = Matcher::new(&cur.rules, crate::budget::Budget::new(cfg.flows.reassembly_budget));
        Pipeline {
            shared,
            matcher,
            cur,
            gen: 0,
            flows: FlowTable::new(
                queue,
                cfg.flows.idle_timeout,
                cfg.flows.active_timeout,
                cfg.flows.max_flows,
            ),
            frags: FragTable::new(cfg.flows.max_fragments, cfg.flows.fragment_timeout),
            counters: BatchCounters::default(),
            records: Vec::new(),
        }
    }

    /// Picks up a reloaded selection state; called between batches.
    /// The generation of the selection state this pipeline runs.
    pub fn generation(&self) -> u64 {
        self.cur.generation
    }

    #[inline]
    pub fn refresh(&mut self) {
        if !Arc::ptr_eq(&self.cur, &self.shared.load()) {
            self.cur = self.shared.load_full();
            self.gen += 1;
            self.matcher.reset(&self.cur.rules);
        }
    }

    /// Processes and erases every frame of a batch. If the per-frame path
    /// panics, the frame in hand and the rest of the batch are zeroed and
    /// counted as erased all the same (erase on unwind), and the outcome
    /// says so. Counters are the caller's to publish (`counters`), once.
    pub fn process_batch<B: Batch>(&mut self, batch: &mut B, now_ns: u64) -> BatchOutcome {
        let n = batch.frames();
        // Frames of this batch fully processed (and so erased).
        let mut done = 0usize;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for i in 0..n {
                batch.before(i);
                batch.with_frame(i, |frame, meta| self.process_captured(frame, meta, now_ns));
                done = i + 1;
            }
        }));
        let panicked = run.is_err().then(|| {
            let zeroed = (n - done) as u64;
            self.counters.bytes_erased += (done..n).map(|i| batch.zero(i)).sum::<u64>();
            self.counters.frames_erased += zeroed;
            zeroed
        });
        BatchOutcome {
            received: n as u64,
            panicked,
        }
    }

    /// The counts since `clear_counters`.
    pub fn counters(&self) -> &BatchCounters {
        &self.counters
    }

    pub fn clear_counters(&mut self) {
        self.counters.clear();
    }

    /// True when flows ended and their records wait to be taken.
    #[inline]
    pub fn has_records(&self) -> bool {
        !self.records.is_empty()
    }

    /// Records of the flows that ended.
    pub fn take_records(&mut self) -> std::vec::Drain<'_, MechanicalRecord> {
        self.records.drain(..)
    }

    /// Flows ended early because the table was full, since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.flows.evicted)
    }

    /// Fragment events since the last call, indexed like `FragEvent::ALL`.
    pub fn take_fragment_counts(&mut self) -> [u64; crate::flow::FragEvent::ALL.len()] {
        self.frags.take_counts()
    }

    /// Flows tracked now, and the most tracked at once.
    pub fn flows_tracked(&self) -> (usize, usize) {
        (self.flows.len(), self.flows.peak)
    }

    /// Processes one received frame and erases it. `now_ns` is the batch's
    /// receive time (ns since the Unix epoch).
    #[inline]
    pub fn process_frame(&mut self, frame: &mut [u8], now_ns: u64) {
        let mut h = Headers::empty();
        let parsed = parse_frame_into(frame, &self.cur.decap, &mut h);
        self.select_and_erase(parsed, &mut h, frame, now_ns);
    }

    /// Processes one captured frame with the XDP metadata found before it
    /// (None: there was none; the frame is walked here) and erases it.
    #[inline]
    pub fn process_captured(&mut self, frame: &mut [u8], meta: Option<XdpMeta>, now_ns: u64) {
        let mut h = Headers::empty();
        let parsed = match meta {
            Some(m) => {
                let seen = u64::from(m.orig_len).max(frame.len() as u64);
                self.counters.bytes_seen += seen;
                self.counters.frames_truncated += u64::from(seen > frame.len() as u64);
                parse_with_meta_into(frame, &m, &self.cur.decap, &mut h)
            }
            None => {
                self.counters.frames_without_meta += 1;
                self.counters.bytes_seen += frame.len() as u64;
                parse_frame_into(frame, &self.cur.decap, &mut h)
            }
        };
        self.select_and_erase(parsed, &mut h, frame, now_ns);
    }

    /// The same for a frame of another link type (offline input). Not
    /// inlined: the file reader's loop around it stays tight.
    #[inline(never)]
    pub fn process_packet(&mut self, link: LinkType, frame: &mut [u8], now_ns: u64) {
        let mut h = Headers::empty();
        let parsed = parse_link_into(link, frame, &self.cur.decap, &mut h);
        self.select_and_erase(parsed, &mut h, frame, now_ns);
    }

    /// Offline input read in place: parses `data` where the capture file
    /// holds it (the file is not ours to erase), copies into `buf` only
    /// the bytes `snap` keeps, as the XDP program would have, and processes
    /// and erases that copy. `orig_len` is the packet's length on the wire
    /// (more than `data` when the capture itself cut it).
    #[inline(never)]
    pub fn process_read(
        &mut self,
        link: LinkType,
        data: &[u8],
        orig_len: u32,
        snap: &mut Snapper,
        buf: &mut Vec<u8>,
        now_ns: u64,
    ) {
        let mut h = Headers::empty();
        h.snapped = orig_len as usize > data.len();
        let parsed = parse_link_into(link, data, &self.cur.decap, &mut h);
        let keep = snap.keep(parsed.is_ok(), &h, data);
        buf.clear();
        buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            h.snapped = true;
            let room = keep.saturating_sub(usize::from(h.payload_offset));
            h.payload_len = h.payload_len.min(u16::try_from(room).unwrap_or(u16::MAX));
        }
        let seen = u64::from(orig_len).max(data.len() as u64);
        self.counters.bytes_seen += seen;
        self.counters.frames_truncated += u64::from(seen > keep as u64);
        self.select_and_erase(parsed, &mut h, buf, now_ns);
    }

    /// `h` holds what the parse filled in (complete when `parsed` is Ok).
    #[inline]
    fn select_and_erase(&mut self, parsed: Result<(), ParseError>, h: &mut Headers, frame: &mut [u8], now_ns: u64) {
        self.counters.frames += 1;
        match parsed {
            Ok(()) => {
                // A fragment: a later one takes its first's ports, or waits
                // for them (counted in the fragment table, in no flow).
                let mut held = (0, 0);
                if h.frag.is_some() {
                    let tunnel = crate::flow::key::tunnel_key(h.tunnel);
                    match self.frags.on_fragment(h, tunnel, now_ns) {
                        FragVerdict::Track { held: n } => held = n,
                        FragVerdict::Hold => h.src = None,
                    }
                }
                // Stage 4, flow lookup: a flow's first packet (or its first
                // under a reloaded state) is judged by stage 5 (class,
                // indicator set) before the flow is created; the flow keeps
                // the judgement. Only cross-border packets are tracked
                // (offline input can hold anything; live input cannot).
                let st = &self.cur;
                let tracked = match self.flows.lookup(h, self.gen, now_ns) {
                    Lookup::Known(flow, j) => Some((flow, j)),
                    Lookup::Unjudged(p) => p.judged(h, judge_addresses(st, h), &mut self.records),
                    Lookup::NotAFlow => None,
                };
                if let Some((mut flow, j)) = tracked {
                    if held.0 > 0 {
                        flow.count_held(held.0, held.1);
                    }
                    // Stage 5, selection (payload read in place), then the
                    // flow update: a selected flow ends as a record.
                    let from_initiator = flow.from_initiator;
                    let selected = self.matcher.judge(
                        st,
                        j,
                        h,
                        h.payload(frame),
                        flow.extra(),
                        from_initiator,
                        now_ns,
                        &mut self.counters.rule_matches,
                    );
                    if let Some(sel) = selected {
                        self.counters.selected_packets += 1;
                        flow.select(sel);
                    }
                }
            }
            Err(e) => self.counters.parse_errors[e.index()] += 1,
        }
        #[cfg(feature = "fault-injection")]
        if fault::panic_here() {
            panic!("fault injection: a panic in the per-frame path, before this frame was erased");
        }
        #[cfg(feature = "fault-injection")]
        if fault::skip_this_erase() {
            return;
        }
        self.counters.bytes_erased += erase(frame) as u64;
        self.counters.frames_erased += 1;
    }

    /// Ends flows past their timeouts (records go to `self.records`).
    pub fn expire(&mut self, now_ns: u64) {
        let abandoned = self.flows.expire(now_ns, &mut self.records);
        self.matcher.budget().count_timed_out(abandoned);
        self.frags.expire(now_ns);
    }

    /// The budget of this pipeline's reassembly buffers.
    pub fn budget(&self) -> &crate::budget::Budget {
        self.matcher.budget()
    }

    /// Ends at most `limit` flows into `records` (shutdown, in steps);
    /// true while some are left.
    pub fn drain_some(&mut self, limit: usize) -> bool {
        let more = self.flows.drain_some(&mut self.records, limit);
        if !more {
            self.frags.drain();
        }
        more
    }

    /// Ends all flows.
    pub fn drain(&mut self) {
        self.drain_some(usize::MAX);
    }
}

/// Test-only fault switch, compiled in only with the `fault-injection`
/// feature (never in `make build` or the package): with
/// `FURUI_FAULT_SKIP_ERASE=N` in the environment, the first N frames are
/// left un-erased, so tests and alerts can prove they notice.
#[cfg(feature = "fault-injection")]
mod fault {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::OnceLock;

    static LEFT: OnceLock<AtomicI64> = OnceLock::new();

    pub fn skip_this_erase() -> bool {
        let left = LEFT.get_or_init(|| {
            let n = std::env::var("FURUI_FAULT_SKIP_ERASE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            AtomicI64::new(n)
        });
        left.load(Ordering::Relaxed) > 0 && left.fetch_sub(1, Ordering::Relaxed) > 0
    }

    static SEEN: OnceLock<(i64, AtomicI64)> = OnceLock::new();

    /// FURUI_FAULT_PANIC_AT=N: true for the Nth frame processed (once).
    pub fn panic_here() -> bool {
        let (at, seen) = SEEN.get_or_init(|| {
            let n = std::env::var("FURUI_FAULT_PANIC_AT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            (n, AtomicI64::new(0))
        });
        *at > 0 && seen.fetch_add(1, Ordering::Relaxed) + 1 == *at
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;
    use crate::craft::{self, FrameSpec};
    use std::path::Path;

    fn cfg() -> Config {
        Config::parse(
            Path::new("t.toml"),
            r#"
[capture]
interface = "x"
[domestic]
prefixes = ["192.0.2.0/24"]
[[indicators]]
name = "bad"
prefixes = ["203.0.113.0/24"]
[records]
path = "r.jsonl"
"#,
        )
        .unwrap()
    }

    /// A config whose `[selection]` points at a rules dir holding `rules`;
    /// the tempdir must outlive the config's use.
    fn cfg_with_rules(rules: &str, extra: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/r.toml"), rules).unwrap();
        let text = format!(
            "[capture]\ninterface = \"x\"\n{extra}\n[selection]\nrules_dir = \"rules\"\n[records]\npath = \"r\"\n"
        );
        let cfg = Config::parse(&dir.path().join("furui.toml"), &text).unwrap();
        (dir, cfg)
    }

    #[test]
    fn a_sealed_signature_selects_a_flow_and_the_record_names_the_rule() {
        let (_dir, cfg) = cfg_with_rules(
            "version = \"v7\"\n[[rule]]\nid = \"cmd\"\nmeasures = [\"inbound\"]\npayload = [{ text = \"EVIL-CMD\" }]\n",
            "[domestic]\nprefixes = [\"192.0.2.0/24\"]",
        );
        let mut p = Pipeline::new(&cfg, 0);
        let mut hit = FrameSpec::new("198.51.100.4", "192.0.2.9")
            .payload(b"..EVIL-CMD..")
            .build();
        let mut miss = FrameSpec::new("198.51.100.5", "192.0.2.9").payload(b"hello").build();
        p.process_frame(&mut hit, 1);
        p.process_frame(&mut miss, 2);
        assert!(hit.iter().chain(miss.iter()).all(|b| *b == 0));
        assert_eq!(p.counters.selected_packets, 1);
        p.drain();
        assert_eq!(p.records.len(), 1);
        let r = &p.records[0];
        assert_eq!(r.rules, vec!["cmd".to_string()]);
        assert_eq!(p.counters.rule_matches.len(), 1);
        assert_eq!(
            (&*p.counters.rule_matches[0].0, p.counters.rule_matches[0].1),
            ("cmd", 1)
        );
        assert_eq!(r.ruleset_version, "v7");
        assert_eq!(r.indicator_set, "");
        let json = serde_json::to_string(r).unwrap();
        assert!(
            !json.contains("EVIL"),
            "the record names the rule, never the bytes: {json}"
        );
    }

    #[test]
    fn a_flow_selected_by_a_later_packet_counts_all_its_packets() {
        let (_dir, cfg) = cfg_with_rules(
            "version = \"v\"\n[[rule]]\nid = \"late\"\nmeasures = [\"transit\"]\npayload = [{ text = \"GO\" }]\n",
            "",
        );
        let mut p = Pipeline::new(&cfg, 0);
        for payload in [&b"wait"[..], b"wait", b"GO!", b"more"] {
            let mut f = FrameSpec::new("8.8.8.8", "9.9.9.9").payload(payload).build();
            p.process_frame(&mut f, 1);
        }
        let mut other = FrameSpec::new("8.8.4.4", "9.9.9.9").payload(b"never").build();
        p.process_frame(&mut other, 2);
        assert_eq!(p.flows.len(), 2);
        p.drain();
        assert_eq!(p.records.len(), 1, "the unselected flow leaves no record");
        assert_eq!(p.records[0].packets_forward, 4);
        assert_eq!(p.records[0].rules, vec!["late".to_string()]);
    }

    /// A batch of frames in test buffers; `panic_at` makes the per-frame
    /// path panic on that frame, before it is processed.
    struct TestBatch {
        frames: Vec<Vec<u8>>,
        panic_at: Option<usize>,
    }

    impl Batch for TestBatch {
        fn frames(&self) -> usize {
            self.frames.len()
        }
        fn with_frame<F: FnOnce(&mut [u8], Option<XdpMeta>)>(&mut self, i: usize, f: F) {
            if self.panic_at == Some(i) {
                panic!("test: a panic in the per-frame path");
            }
            f(&mut self.frames[i], None);
        }
        fn zero(&mut self, i: usize) -> u64 {
            erase(&mut self.frames[i]) as u64
        }
    }

    /// One frame of every path: selected, cross-border unselected,
    /// domestic, non-IP, malformed, a fragment.
    fn every_path() -> Vec<Vec<u8>> {
        let mut frames = vec![
            udp("203.0.113.7", 5000, "192.0.2.9", 53, b"selected"),
            udp("198.51.100.4", 5000, "192.0.2.9", 53, b"not selected"),
            udp("192.0.2.1", 5000, "192.0.2.9", 53, b"domestic"),
            craft::arp_frame(),
            craft::malformed_ipv4_frame(),
        ];
        frames.extend(craft::ipv4_tcp_fragments(7, &[24]));
        frames
    }

    #[test]
    fn a_batch_erases_and_counts_every_frame_on_every_path() {
        let mut p = Pipeline::new(&cfg(), 0);
        let mut batch = TestBatch {
            frames: every_path(),
            panic_at: None,
        };
        let n = batch.frames.len() as u64;
        let out = p.process_batch(&mut batch, 1);
        assert_eq!(
            out,
            BatchOutcome {
                received: n,
                panicked: None
            }
        );
        let c = p.counters();
        assert_eq!((c.frames, c.frames_erased), (n, n));
        assert_eq!(c.bytes_erased, batch.frames.iter().map(|f| f.len() as u64).sum::<u64>());
        assert_eq!(c.selected_packets, 1);
        assert!(
            c.parse_errors.iter().sum::<u64>() >= 1,
            "the malformed frame is counted"
        );
        assert!(batch.frames.iter().flatten().all(|b| *b == 0), "a byte survived");
    }

    #[test]
    fn a_panic_mid_batch_still_erases_and_counts_the_rest_of_it() {
        let mut p = Pipeline::new(&cfg(), 0);
        let mut batch = TestBatch {
            frames: every_path(),
            panic_at: Some(2),
        };
        let n = batch.frames.len() as u64;
        let out = p.process_batch(&mut batch, 1);
        assert_eq!(
            out,
            BatchOutcome {
                received: n,
                panicked: Some(n - 2)
            }
        );
        let c = p.counters();
        assert_eq!(c.frames_erased, n, "received = erased after the guard");
        assert_eq!(c.frames, 2, "only the frames before the panic were processed");
        assert_eq!(c.bytes_erased, batch.frames.iter().map(|f| f.len() as u64).sum::<u64>());
        assert!(batch.frames.iter().flatten().all(|b| *b == 0), "a byte survived");
    }

    fn udp(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
        FrameSpec::new(src, dst)
            .transport(craft::Transport::Udp {
                src_port: sport,
                dst_port: dport,
            })
            .payload(payload)
            .build()
    }

    #[test]
    fn a_reply_has_the_reversed_class_of_its_flow() {
        // The flow keeps its class; a reply (domestic → foreign) must still
        // be judged outbound, or a rule for outbound would never see it.
        let (_dir, cfg) = cfg_with_rules(
            "version = \"v\"\n[[rule]]\nid = \"out\"\nmeasures = [\"outbound\"]\npayload = [{ text = \"GO\" }]\n",
            "[domestic]\nprefixes = [\"192.0.2.0/24\"]",
        );
        let mut p = Pipeline::new(&cfg, 0);
        p.process_frame(&mut udp("198.51.100.4", 5000, "192.0.2.9", 53, b"GO"), 1);
        assert_eq!(p.counters.selected_packets, 0, "inbound is not the rule's measure");
        p.process_frame(&mut udp("192.0.2.9", 53, "198.51.100.4", 5000, b"GO"), 2);
        assert_eq!(p.counters.selected_packets, 1, "the reply is outbound");
        p.process_frame(&mut udp("198.51.100.4", 5000, "192.0.2.9", 53, b"GO"), 3);
        assert_eq!(p.counters.selected_packets, 1);
        p.drain();
        assert_eq!(p.records.len(), 1);
        let r = &p.records[0];
        assert_eq!(r.class, Class::Inbound, "a record has its initiator's class");
        assert_eq!((r.packets_forward, r.packets_reverse), (2, 1));
    }

    #[test]
    fn a_reload_rejudges_flows_already_in_the_table() {
        let mut cfg = cfg();
        let shared = crate::select::shared(cfg.selection_state());
        let mut p = Pipeline::with_shared(&cfg, 0, shared.clone());
        let send = |p: &mut Pipeline, t| {
            p.refresh();
            p.process_frame(&mut udp("198.51.100.4", 5000, "192.0.2.9", 53, b"x"), t);
            p.process_frame(&mut udp("203.0.113.7", 6000, "192.0.2.9", 53, b"x"), t);
        };
        send(&mut p, 1);
        assert_eq!(p.counters.selected_packets, 1, "only 203.0.113.7 is an indicator");
        assert_eq!(p.flows.len(), 2);
        // Reload: 198.51.100.0/24 becomes an indicator too.
        cfg.indicators[0].prefixes.insert("198.51.100.0/24".parse().unwrap());
        shared.store(Arc::new(cfg.selection_state()));
        p.counters.clear();
        send(&mut p, 2);
        assert_eq!(p.counters.selected_packets, 2, "the cached set was dropped on reload");
        // Reload: 203.0.113.0/24 becomes domestic: its flow is no longer
        // cross-border, and its packets are no longer counted or selected.
        cfg.domestic.insert("203.0.113.0/24".parse().unwrap());
        shared.store(Arc::new(cfg.selection_state()));
        p.counters.clear();
        send(&mut p, 3);
        assert_eq!(p.counters.selected_packets, 1);
        assert_eq!(p.counters.frames_erased, 2, "erased all the same");
        p.drain();
        let mut got: Vec<_> = p
            .records
            .iter()
            .map(|r| (r.initiator.to_string(), r.packets_forward))
            .collect();
        got.sort();
        assert_eq!(got, [("198.51.100.4".to_string(), 3), ("203.0.113.7".to_string(), 2)]);
    }

    #[test]
    fn fragments_in_any_order_count_into_their_datagrams_flow() {
        let mut p = Pipeline::new(&cfg(), 0);
        let raw = |p: &mut Pipeline, f: &[u8]| p.process_packet(LinkType::RawIp, &mut f.to_vec(), 1);
        // Datagram 1 in order, datagram 2 backwards (its later fragments
        // wait for the first), datagram 3 has a fragment twice (overlap),
        // datagram 4 never gets its first fragment.
        for f in craft::ipv4_tcp_fragments(1, &[24, 32]) {
            raw(&mut p, &f);
        }
        for f in craft::ipv4_tcp_fragments(2, &[24, 32]).iter().rev() {
            raw(&mut p, f);
        }
        let d3 = craft::ipv4_tcp_fragments(3, &[24]);
        for f in [&d3[0], &d3[1], &d3[1]] {
            raw(&mut p, f);
        }
        raw(&mut p, &craft::ipv4_tcp_fragments(4, &[24])[1]);
        assert_eq!(p.counters.frames_erased, 10);
        p.drain();
        assert_eq!(p.records.len(), 1, "one flow: 203.0.113.5:4444 -> 192.0.2.10:80");
        let r = &p.records[0];
        assert_eq!((r.initiator_port, r.responder_port), (4444, 80));
        // Datagram 4's lone fragment is in no flow: it is orphaned.
        assert_eq!((r.packets_forward, r.fragments), (9, 9));
        // Every fragment's IP length: 2 x (44 + 28 + 28) + 44 + 36 + 36.
        assert_eq!(r.bytes_forward, 2 * 100 + 116);
        let c = |e: crate::flow::FragEvent| p.frags.counts[e as usize];
        use crate::flow::FragEvent::*;
        assert_eq!(
            [c(First), c(Attributed), c(OutOfOrder), c(Overlap), c(Orphaned), c(Tiny)],
            [3, 4, 2, 1, 1, 0]
        );
    }

    #[test]
    fn every_frame_is_erased_on_every_path() {
        let mut p = Pipeline::new(&cfg(), 0);
        let mut frames = [
            FrameSpec::new("203.0.113.4", "192.0.2.9").payload(b"MARKER").build(), // selected
            FrameSpec::new("198.51.100.4", "192.0.2.9").payload(b"MARKER").build(), // unselected
            craft::arp_frame(),                                                    // non-IP
            craft::malformed_ipv4_frame(),                                         // parse error
            vec![0xffu8; 5],                                                       // runt
        ];
        for f in frames.iter_mut() {
            p.process_frame(f, 1);
        }
        assert!(frames.iter().all(|f| f.iter().all(|b| *b == 0)));
        assert_eq!(p.counters.frames, 5);
        assert_eq!(p.counters.frames_erased, 5);
        assert_eq!(p.counters.selected_packets, 1);
        assert_eq!(p.counters.parse_errors[ParseError::BadIpv4HeaderLength.index()], 1);
        assert_eq!(p.counters.parse_errors[ParseError::TruncatedEthernet.index()], 1);
        let total: usize = frames.iter().map(|f| f.len()).sum();
        assert_eq!(p.counters.bytes_erased, total as u64);
        p.drain();
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.records[0].indicator_set, "bad");
        assert_eq!(p.records[0].class, Class::Inbound);
    }
}
