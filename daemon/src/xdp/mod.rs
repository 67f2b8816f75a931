//! Stage 1 (kernel side): loads `ebpf/furui.bpf.c`, fills its maps, attaches
//! it to the interface and reads its counters.
//!
//! Invariant kept: the class-authorization map only ever marks capture
//! classes (inbound/outbound/transit), and the program is attached through
//! a BPF link owned by this process, so a crashed daemon leaves nothing
//! attached.

mod attach;
pub mod layout;
mod skel {
    #![allow(
        clippy::all,
        clippy::undocumented_unsafe_blocks,
        unsafe_code,
        missing_docs,
        non_camel_case_types,
        dead_code
    )]
    include!(concat!(env!("OUT_DIR"), "/furui.skel.rs"));
}

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use ipnet::IpNet;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

pub use attach::{AttachError, XdpLink};

use crate::classify::walk::{DecapConfig, Encap, Outcome, NUM_ENCAPS, NUM_OUTCOMES};
use crate::classify::{abi, Action, Authorized, Class, NUM_ACTIONS, NUM_CLASSES};
use crate::config::XdpMode;
use crate::select::Snap;

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("loading the XDP classifier into the kernel failed; furui needs root or CAP_BPF+CAP_NET_ADMIN and a kernel with BPF and BTF")]
    Load(#[source] libbpf_rs::Error),
    #[error("updating BPF map {map} failed")]
    Map {
        map: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("BPF test run failed")]
    TestRun(#[source] libbpf_rs::Error),
}

/// Packets and bytes per (class, action), summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassStats {
    pub packets: [[u64; NUM_ACTIONS]; NUM_CLASSES],
    pub bytes: [[u64; NUM_ACTIONS]; NUM_CLASSES],
}

impl ClassStats {
    pub fn packets(&self, c: Class, a: Action) -> u64 {
        self.packets[c as usize][a as usize]
    }

    pub fn class_packets(&self, c: Class) -> u64 {
        self.packets[c as usize].iter().sum()
    }

    pub fn class_bytes(&self, c: Class) -> u64 {
        self.bytes[c as usize].iter().sum()
    }
}

/// Packets per (encapsulation, outcome), summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncapStats {
    pub packets: [[u64; NUM_OUTCOMES]; NUM_ENCAPS],
}

impl EncapStats {
    pub fn packets(&self, e: Encap, o: Outcome) -> u64 {
        self.packets[e as usize][o as usize]
    }
}

/// The loaded XDP classifier and its maps.
pub struct Classifier {
    skel: skel::FuruiSkel<'static>,
}

impl Classifier {
    /// Opens and loads the program. `inline` selects what happens to
    /// packets that are not captured: passed (inline) or dropped (mirror).
    pub fn load(inline: bool) -> Result<Classifier, XdpError> {
        // The skeleton borrows its object storage for its whole life; the
        // classifier lives as long as the daemon, so the storage is leaked
        // once per load (a few hundred bytes).
        let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
        let builder = skel::FuruiSkelBuilder::default();
        let mut open = builder.open(storage).map_err(XdpError::Load)?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.cfg.inline_mode = u32::from(inline);
        }
        let skel = open.load().map_err(XdpError::Load)?;
        let c = Classifier { skel };
        // Until the daemon writes its configured settings, the defaults
        // (every encapsulation opened) hold; an unwritten map would leave
        // every tunnelled frame undecided.
        c.set_decap(&DecapConfig::default())?;
        // Whole frames until the daemon writes its configuration's snap.
        c.set_snap(&Snap::WHOLE)?;
        Ok(c)
    }

    /// The trie and the key (`struct lpm_v4_key` / `lpm_v6_key`) of a prefix.
    fn lpm_key(&self, n: &IpNet) -> (&libbpf_rs::MapMut<'static>, &'static str, Vec<u8>) {
        let (map, name) = match n {
            IpNet::V4(_) => (&self.skel.maps.domestic_v4, "domestic_v4"),
            IpNet::V6(_) => (&self.skel.maps.domestic_v6, "domestic_v6"),
        };
        (map, name, layout::lpm_key(n))
    }

    /// Loads domestic prefixes into the LPM tries.
    pub fn set_domestic(&self, nets: &[IpNet]) -> Result<(), XdpError> {
        for n in nets {
            let (map, name, key) = self.lpm_key(n);
            map.update(&key, &[1], MapFlags::ANY)
                .map_err(|source| XdpError::Map { map: name, source })?;
        }
        Ok(())
    }

    /// Removes domestic prefixes from the LPM tries (absent ones are fine).
    pub fn remove_domestic(&self, nets: &[IpNet]) {
        for n in nets {
            let (map, _, key) = self.lpm_key(n);
            let _ = map.delete(&key);
        }
    }

    /// Writes the class-authorization map. Non-capture classes are always
    /// written as 0, whatever `auth` says.
    pub fn set_authorized(&self, auth: &Authorized) -> Result<(), XdpError> {
        // Test builds: FURUI_FAULT_CLASS_MAP_FAIL_AFTER=N lets N writes
        // succeed and fails every later one.
        #[cfg(feature = "fault-injection")]
        {
            use std::sync::atomic::{AtomicI64, Ordering};
            static LEFT: std::sync::OnceLock<AtomicI64> = std::sync::OnceLock::new();
            let left = LEFT.get_or_init(|| {
                AtomicI64::new(
                    std::env::var("FURUI_FAULT_CLASS_MAP_FAIL_AFTER")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(i64::MAX),
                )
            });
            if left.fetch_sub(1, Ordering::Relaxed) <= 0 {
                return Err(XdpError::Map {
                    map: "class_authorized",
                    source: std::io::Error::other("fault injection: class map write refused").into(),
                });
            }
        }
        for c in Class::ALL {
            let v = u32::from(c.measure().is_some() && auth[c as usize]);
            self.skel
                .maps
                .class_authorized
                .update(&(c as u32).to_ne_bytes(), &v.to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| XdpError::Map {
                    map: "class_authorized",
                    source,
                })?;
        }
        Ok(())
    }

    /// Writes the decapsulation settings (`struct furui_decap`).
    pub fn set_decap(&self, d: &DecapConfig) -> Result<(), XdpError> {
        self.skel
            .maps
            .decap_cfg
            .update(&0u32.to_ne_bytes(), &layout::decap(d), MapFlags::ANY)
            .map_err(|source| XdpError::Map {
                map: "decap_cfg",
                source,
            })
    }

    /// Writes the snap (`struct furui_snap`): how much of a captured frame
    /// the program keeps.
    pub fn set_snap(&self, s: &Snap) -> Result<(), XdpError> {
        self.skel
            .maps
            .snap_cfg
            .update(&0u32.to_ne_bytes(), &layout::snap(s), MapFlags::ANY)
            .map_err(|source| XdpError::Map {
                map: "snap_cfg",
                source,
            })
    }

    /// ClientHello flows the program followed (kept their later segments
    /// whole), and those followed to their end, summed over CPUs.
    pub fn hello_follows(&self) -> Result<(u64, u64), XdpError> {
        let mut out = [0u64; 2];
        for (i, slot) in [abi::SNAP_STAT_FOLLOWED, abi::SNAP_STAT_FOLLOW_DONE]
            .into_iter()
            .enumerate()
        {
            for_each_cpu(&self.skel.maps.snap_stats, "snap_stats", slot, |v| {
                out[i] += layout::packet_count(v).unwrap_or(0);
            })?;
        }
        Ok((out[0], out[1]))
    }

    /// Reads the per-CPU encapsulation counters and sums them.
    pub fn encap_stats(&self) -> Result<EncapStats, XdpError> {
        let mut s = EncapStats::default();
        for e in Encap::ALL {
            for o in Outcome::ALL {
                let idx = (e as u32) * NUM_OUTCOMES as u32 + o as u32;
                for_each_cpu(&self.skel.maps.encap_stats, "encap_stats", idx, |v| {
                    s.packets[e as usize][o as usize] += layout::packet_count(v).unwrap_or(0);
                })?;
            }
        }
        Ok(s)
    }

    /// Puts the AF_XDP socket of `queue` into the XSKMAP.
    pub fn set_socket(&self, queue: u32, fd: RawFd) -> Result<(), XdpError> {
        self.skel
            .maps
            .xsks
            .update(&queue.to_ne_bytes(), &(fd as u32).to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| XdpError::Map { map: "xsks", source })
    }

    pub fn clear_socket(&self, queue: u32) {
        let _ = self.skel.maps.xsks.delete(&queue.to_ne_bytes());
    }

    /// Reads the per-CPU counters and sums them.
    pub fn stats(&self) -> Result<ClassStats, XdpError> {
        let mut s = ClassStats::default();
        for c in Class::ALL {
            for a in Action::ALL {
                let idx = (c as u32) * NUM_ACTIONS as u32 + a as u32;
                for_each_cpu(&self.skel.maps.class_stats, "class_stats", idx, |v| {
                    if let Some(n) = layout::class_counter(v) {
                        s.packets[c as usize][a as usize] += n.packets;
                        s.bytes[c as usize][a as usize] += n.bytes;
                    }
                })?;
            }
        }
        Ok(s)
    }

    /// Each map's name, key size, value size and maximum entries as the
    /// kernel loaded them (the test that Rust and C agree reads these).
    #[doc(hidden)]
    pub fn map_shapes(&self) -> Vec<(&'static str, u32, u32, u32)> {
        let m = &self.skel.maps;
        [
            ("class_authorized", &m.class_authorized),
            ("xsks", &m.xsks),
            ("domestic_v4", &m.domestic_v4),
            ("domestic_v6", &m.domestic_v6),
            ("class_stats", &m.class_stats),
            ("decap_cfg", &m.decap_cfg),
            ("encap_stats", &m.encap_stats),
            ("snap_cfg", &m.snap_cfg),
            ("hello_flows", &m.hello_flows),
            ("snap_stats", &m.snap_stats),
        ]
        .into_iter()
        .map(|(name, map)| (name, map.key_size(), map.value_size(), map.max_entries()))
        .collect()
    }

    /// Runs the program once on `frame` through BPF_PROG_TEST_RUN and
    /// returns the XDP verdict. No NIC is involved.
    // ProgramInput is non-exhaustive: it cannot be built with a literal.
    #[allow(clippy::field_reassign_with_default)]
    pub fn test_run(&self, frame: &[u8]) -> Result<u32, XdpError> {
        let mut input = libbpf_rs::ProgramInput::default();
        input.data_in = Some(frame);
        let out = self.skel.progs.furui_xdp.test_run(input).map_err(XdpError::TestRun)?;
        Ok(out.return_value)
    }

    /// Runs the program on `frame` and returns its verdict and the XDP
    /// metadata it wrote before the frame (None if it wrote none).
    pub fn test_run_meta(&self, frame: &[u8]) -> Result<(u32, Option<crate::classify::meta::XdpMeta>), XdpError> {
        self.test_run_out(frame).map(|(ret, meta, _)| (ret, meta))
    }

    /// Runs the program on `frame`: its verdict, the metadata it wrote
    /// (None if none) and the frame as it left the program (cut by the
    /// snap, or whole).
    pub fn test_run_out(
        &self,
        frame: &[u8],
    ) -> Result<(u32, Option<crate::classify::meta::XdpMeta>, Vec<u8>), XdpError> {
        use crate::classify::meta::{XdpMeta, META_LEN};
        let mut out = vec![0u8; frame.len() + 64];
        let input = libbpf_rs::ProgramInput {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..libbpf_rs::ProgramInput::default()
        };
        let res = self.skel.progs.furui_xdp.test_run(input).map_err(XdpError::TestRun)?;
        let data = res.data.unwrap_or_default();
        // The output starts at the metadata when there is some.
        let meta = data.get(..META_LEN).and_then(|b| XdpMeta::decode(b.try_into().ok()?));
        let frame_out = match meta {
            Some(_) => data[META_LEN..].to_vec(),
            None => data.to_vec(),
        };
        Ok((res.return_value, meta, frame_out))
    }

    /// Attaches the program the old way (netlink, no link): it then stays
    /// attached after this process exits. Only for tests that recreate
    /// what older tools leave behind.
    #[doc(hidden)]
    pub fn attach_legacy_for_tests(&self, ifindex: u32) -> Result<(), libbpf_rs::Error> {
        let xdp = libbpf_rs::Xdp::new(self.skel.progs.furui_xdp.as_fd());
        xdp.attach(ifindex as i32, libbpf_rs::XdpFlags::SKB_MODE)
    }

    /// Attaches the program to `ifindex` through a BPF link.
    pub fn attach(&self, interface: &str, ifindex: u32, mode: XdpMode) -> Result<XdpLink, AttachError> {
        let prog_fd = self.skel.progs.furui_xdp.as_fd().as_raw_fd();
        attach::attach(prog_fd, interface, ifindex, mode)
    }
}

/// Calls `each` with every CPU's value of slot `idx` of a per-CPU map.
fn for_each_cpu(
    map: &libbpf_rs::MapMut<'static>,
    name: &'static str,
    idx: u32,
    mut each: impl FnMut(&[u8]),
) -> Result<(), XdpError> {
    let per_cpu = map
        .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
        .map_err(|source| XdpError::Map { map: name, source })?
        .unwrap_or_default();
    per_cpu.iter().for_each(|v| each(v));
    Ok(())
}
