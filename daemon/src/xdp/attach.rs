//! Attaching the XDP program through a BPF link (closed on exit or crash,
//! which detaches it), and finding stale programs left by older attaches.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::config::XdpMode;

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

fn link_create(prog_fd: RawFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: zeroed is a valid value for this plain C options struct; sz
    // tells libbpf which fields we know about.
    let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
    opts.flags = flags;
    // SAFETY: prog_fd is a loaded program's fd that outlives this call;
    // opts is a valid, initialized options struct.
    let fd = unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a non-negative return is a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Id of the XDP program attached to `ifindex` in any mode (0 if none).
pub fn attached_prog_id(ifindex: u32) -> u32 {
    let mut id: u32 = 0;
    // SAFETY: id is a valid out-pointer for the duration of the call.
    let rc = unsafe { libbpf_sys::bpf_xdp_query_id(ifindex as i32, 0, &mut id) };
    if rc < 0 {
        0
    } else {
        id
    }
}

fn prog_name(id: u32) -> String {
    // SAFETY: plain syscall wrapper; a negative return is an error.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return String::from("?");
    }
    // SAFETY: fd was just returned to us and is owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed is valid for this plain C struct.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info and len are valid for writes of `len` bytes.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut info, &mut len) };
    if rc < 0 {
        return String::from("?");
    }
    let bytes: Vec<u8> = info.name.iter().map(|c| *c as u8).collect();
    CStr::from_bytes_until_nul(&bytes)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Detaches a netlink-attached (non-link) program; fails with EBUSY when
/// the program is held by a live link of another process.
fn detach_legacy(ifindex: u32) -> io::Result<()> {
    for flags in [0, XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE] {
        // SAFETY: plain syscall wrapper with no pointers.
        let rc = unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, flags, std::ptr::null()) };
        if rc == 0 && attached_prog_id(ifindex) == 0 {
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
        let name = prog_name(existing);
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
    match link_create(prog_fd, ifindex, flags) {
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
