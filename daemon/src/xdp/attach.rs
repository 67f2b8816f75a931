//! Attaching the XDP program through a BPF link (closed on exit or crash,
//! which detaches it), and finding stale programs left by older attaches.

use std::io;
use std::os::fd::{OwnedFd, RawFd};

use crate::config::XdpMode;
use crate::sys;

const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const PROG_NAME: &str = "furui_xdp";

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("native XDP is not supported on {interface} ({source}); set `xdp_mode = \"generic\"` in [capture]")]
    NativeUnsupported {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("{interface} already has an XDP program attached (id {prog_id}, name `{name}`) by another process; stop it, or remove it with `ip link set dev {interface} xdp off`")]
    Busy {
        interface: String,
        prog_id: u32,
        name: String,
    },
    #[error("attaching XDP to {interface} failed")]
    Other {
        interface: String,
        #[source]
        source: io::Error,
    },
}

/// The attachment: dropping it detaches the program.
#[derive(Debug)]
pub struct XdpLink {
    _fd: OwnedFd,
    pub replaced_stale: Option<u32>,
}

/// Id of the XDP program attached to `ifindex` in any mode (0 if none).
pub fn attached_prog_id(ifindex: u32) -> u32 {
    sys::xdp_attached_prog_id(ifindex)
}

/// Detaches a netlink-attached (non-link) program; fails with EBUSY when
/// the program is held by a live link of another process.
fn detach_legacy(ifindex: u32) -> io::Result<()> {
    for flags in [0, XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE] {
        if sys::xdp_detach(ifindex, flags) && attached_prog_id(ifindex) == 0 {
            return Ok(());
        }
    }
    Err(io::Error::from_raw_os_error(libc::EBUSY))
}

pub fn attach(prog_fd: RawFd, interface: &str, ifindex: u32, mode: XdpMode) -> Result<XdpLink, AttachError> {
    let flags = match mode {
        XdpMode::Native => XDP_FLAGS_DRV_MODE,
        XdpMode::Generic => XDP_FLAGS_SKB_MODE,
    };
    let mut replaced_stale = None;
    let existing = attached_prog_id(ifindex);
    if existing != 0 {
        let name = sys::bpf_prog_name(existing).unwrap_or_else(|| String::from("?"));
        // A furui program still attached without a live owner is what an
        // older attach method leaves after a crash: replace it. A program
        // held by a running process (another furui included) is not ours
        // to take.
        if name == PROG_NAME && detach_legacy(ifindex).is_ok() {
            replaced_stale = Some(existing);
        } else {
            return Err(AttachError::Busy {
                interface: interface.to_string(),
                prog_id: existing,
                name,
            });
        }
    }
    match sys::bpf_xdp_link_create(prog_fd, ifindex, flags) {
        Ok(fd) => Ok(XdpLink {
            _fd: fd,
            replaced_stale,
        }),
        Err(e)
            if mode == XdpMode::Native
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(ENOTSUPP)
                ) =>
        {
            Err(AttachError::NativeUnsupported {
                interface: interface.to_string(),
                source: e,
            })
        }
        Err(e) => Err(AttachError::Other {
            interface: interface.to_string(),
            source: e,
        }),
    }
}

/// Kernel-internal ENOTSUPP (524), which some drivers leak to user space.
const ENOTSUPP: i32 = 524;
