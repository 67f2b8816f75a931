//! Offline input: packets from pcap and pcapng files, for `furui replay`
//! and the capture tests. A replay parses each packet where the read
//! buffer holds it (read.rs), copies what the snap keeps into one reusable buffer
//! (standing in for a UMEM frame) and hands that to the same pipeline code
//! the live path runs, which erases it.

mod read;

pub use read::{for_each_raw, for_each_raw_from, Packet};

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::parse::{LinkType, ParseError};
use crate::pipeline::{BatchCounters, Pipeline};
use crate::select::Snapper;

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("cannot open capture file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is neither pcap nor pcapng")]
    Format { path: PathBuf },
    #[error(
        "{path}: unsupported link type {linktype} (supported: Ethernet, raw IP, Linux SLL/SLL2, BSD loopback, PPP)"
    )]
    LinkType { path: PathBuf, linktype: u32 },
    #[error("reading {path} failed after {packets} packets")]
    Read {
        path: PathBuf,
        packets: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the capture is corrupt after {packets} packets")]
    Corrupt { path: PathBuf, packets: u64 },
}

/// What a read produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    pub packets: u64,
    /// Packets whose timestamp was invalid and was clamped.
    pub clamped_timestamps: u64,
}

/// Calls `f(link, timestamp_ns, frame)` for every packet of `path`, each
/// copied whole into one reusable buffer; `f` must erase it (the pipeline
/// does), and the buffer is erased again at the end.
pub fn for_each_packet(path: &Path, mut f: impl FnMut(LinkType, u64, &mut [u8])) -> Result<ReadSummary, OfflineError> {
    let mut buf: Vec<u8> = Vec::with_capacity(65_536);
    let summary = for_each_raw(path, |p| {
        buf.clear();
        buf.extend_from_slice(p.data);
        f(p.link, p.ts_ns, buf.as_mut_slice());
    });
    // The reusable buffer held packet bytes: erase its whole capacity.
    buf.resize(buf.capacity(), 0);
    crate::erase::erase(&mut buf);
    summary
}

/// What a replay did: the same counters the daemon exports.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub read: ReadSummary,
    /// The snap applied (the config's, as the live path's XDP program
    /// applies it), and split ClientHellos followed (started, completed).
    pub snap: crate::select::Snap,
    pub hello_follows: (u64, u64),
    pub counters: BatchCounters,
    pub records: u64,
    /// Fragment events, indexed like `FragEvent::ALL`.
    pub fragments: [u64; crate::flow::FragEvent::ALL.len()],
    /// The most flows tracked at once, and flows ended early because the
    /// table was full.
    pub flows_peak: usize,
    pub flows_evicted: u64,
    /// Reassembly: the budget, the most bytes held at once, refusals.
    pub reassembly_budget: usize,
    pub reassembly_peak: usize,
    pub reassembly_refused: u64,
    pub reassembly_timed_out: u64,
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counters;
        writeln!(f, "packets read:       {}", self.read.packets)?;
        writeln!(f, "frames processed:   {}", c.frames)?;
        writeln!(f, "frames erased:      {}", c.frames_erased)?;
        writeln!(f, "snap:               {}", self.snap)?;
        writeln!(f, "bytes seen:         {}", c.bytes_seen)?;
        writeln!(f, "bytes copied:       {} (and erased)", c.bytes_erased)?;
        writeln!(f, "frames cut:         {}", c.frames_truncated)?;
        writeln!(f, "packets selected:   {}", c.selected_packets)?;
        writeln!(f, "records:            {}", self.records)?;
        for e in ParseError::ALL {
            let n = c.parse_errors[e.index()];
            if n > 0 {
                writeln!(f, "parse error {:<28} {n}", e.kind())?;
            }
        }
        for (e, n) in crate::flow::FragEvent::ALL.iter().zip(self.fragments) {
            if n > 0 {
                writeln!(f, "fragments {:<30} {n}", e.kind())?;
            }
        }
        writeln!(f, "flows peak:         {}", self.flows_peak)?;
        if self.flows_evicted > 0 {
            writeln!(f, "flows evicted:      {} (table full)", self.flows_evicted)?;
        }
        writeln!(
            f,
            "reassembly peak:    {} bytes of a {}-byte budget",
            self.reassembly_peak, self.reassembly_budget
        )?;
        if self.reassembly_refused > 0 {
            writeln!(f, "reassembly refused: {} (budget spent)", self.reassembly_refused)?;
        }
        if self.reassembly_timed_out > 0 {
            writeln!(
                f,
                "reassembly timed out: {} (incomplete after 2 s)",
                self.reassembly_timed_out
            )?;
        }
        if self.read.clamped_timestamps > 0 {
            writeln!(f, "clamped timestamps: {}", self.read.clamped_timestamps)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Read(#[from] OfflineError),
    #[error("writing records failed")]
    Write(#[from] std::io::Error),
}

/// Writes the records of the flows that ended to `out` as JSON lines.
fn write_records(out: &mut dyn std::io::Write, p: &mut Pipeline) -> std::io::Result<u64> {
    let mut n = 0;
    for r in p.take_records() {
        serde_json::to_writer(&mut *out, &r).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    Ok(n)
}

/// Replays `pcap` through the pipeline; flows time out on the capture's
/// own clock. Records are written to `out` as JSON lines as flows end.
pub fn replay(cfg: &Config, pcap: &Path, out: &mut dyn std::io::Write) -> Result<ReplayReport, ReplayError> {
    let mut p = Pipeline::offline(cfg);
    let mut report = ReplayReport::default();
    let mut snap = Snapper::new(cfg.snap());
    let mut buf: Vec<u8> = Vec::with_capacity(65_536);
    let mut last_expire = 0u64;
    let mut written: std::io::Result<u64> = Ok(0);
    let read = for_each_raw(pcap, |pk| {
        let ts = pk.ts_ns;
        p.process_read(pk.link, pk.data, pk.orig_len, &mut snap, &mut buf, ts);
        if ts.saturating_sub(last_expire) >= 1_000_000_000 {
            last_expire = ts;
            p.expire(ts);
        }
        if !p.has_records() {
            return;
        }
        match &mut written {
            Ok(n) => match write_records(out, &mut p) {
                Ok(k) => *n += k,
                Err(e) => written = Err(e),
            },
            // After a write error, records are dropped (the error is
            // returned once the capture is read).
            Err(_) => p.take_records().for_each(drop),
        }
    });
    // The reusable buffer held packet bytes: erase its whole capacity,
    // whatever the read's outcome.
    buf.resize(buf.capacity(), 0);
    crate::erase::erase(&mut buf);
    report.read = read?;
    report.snap = snap.snap();
    report.hello_follows = (snap.followed, snap.follow_done);
    report.flows_evicted = p.take_evicted();
    report.flows_peak = p.flows_tracked().1;
    let mut records = written?;
    // Flows end in steps, each step's records written before the next.
    loop {
        let more = p.drain_some(crate::flow::table::RECORDS_PER_SWEEP);
        records += write_records(out, &mut p)?;
        if !more {
            break;
        }
    }
    let budget = p.budget();
    report.reassembly_budget = budget.limit();
    report.reassembly_peak = budget.peak();
    report.reassembly_refused = budget.refused();
    report.reassembly_timed_out = budget.timed_out();
    report.records = records;
    report.counters = p.counters().clone();
    report.fragments = p.take_fragment_counts();
    Ok(report)
}
