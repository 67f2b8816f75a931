//! Small wrappers over the system calls furui makes outside the capture
//! rings: process hardening, interface lookup, limits, and a raw packet
//! socket for the traffic generator.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Makes the process non-dumpable: no core dumps, no ptrace by non-root,
/// /proc/<pid>/mem readable only with CAP_SYS_PTRACE.
pub fn set_non_dumpable() -> io::Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(io::Error::from)
}

pub fn is_dumpable() -> bool {
    nix::sys::prctl::get_dumpable().unwrap_or(true)
}

/// Interface index of `name`.
pub fn ifindex(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(io::Error::from)
}

/// Current soft RLIMIT_MEMLOCK in bytes (u64::MAX for unlimited).
pub fn memlock_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
        .map(|(soft, _)| soft)
        .unwrap_or(0)
}

/// The `memory.max` of this process's cgroup (cgroup v2) in bytes; None
/// when unlimited or unknown.
pub fn cgroup_memory_max() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let v = std::fs::read_to_string(format!("/sys/fs/cgroup{path}/memory.max")).ok()?;
    v.trim().parse().ok()
}

/// Drops every capability of the calling thread: ambient, inheritable,
/// effective and permitted. Threads created afterwards start with none.
/// Once the XDP program is attached, the AF_XDP sockets are bound and the
/// UMEM is locked, nothing the daemon does needs one (BPF map reads and
/// updates go through the file descriptors it already holds).
pub fn drop_all_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    // SAFETY: prctl(2) with constant integer arguments; no memory is passed.
    if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data::default(); 2];
    // SAFETY: capset(2) version 3 reads one header and two data structs,
    // laid out as above; both live until the call returns.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The process's effective capability mask (from /proc/self/status).
pub fn effective_capabilities() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// True if the process has CAP_IPC_LOCK in its effective set.
pub fn has_cap_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    effective_capabilities() & (1 << CAP_IPC_LOCK) != 0
}

/// Locks `len` bytes at `addr` into RAM and excludes them from core dumps.
///
/// # Safety
/// `addr..addr+len` must be a mapping owned by the caller for as long as
/// the lock matters.
pub unsafe fn lock_and_exclude_from_dumps(addr: *mut libc::c_void, len: usize) -> io::Result<()> {
    // SAFETY: the caller guarantees the range is a live mapping.
    if unsafe { libc::mlock(addr, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; MADV_DONTDUMP only changes dump behaviour.
    if unsafe { libc::madvise(addr, len, libc::MADV_DONTDUMP) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Locks the pages holding `secret` into RAM, so it is never swapped out
/// (the process is already non-dumpable). Best effort within
/// RLIMIT_MEMLOCK; the caller reports a failure.
pub fn lock_in_ram(secret: &[u8]) -> io::Result<()> {
    // SAFETY: the range is a live borrow for the duration of the call; a
    // lock that outlives it only keeps a page resident, which is harmless.
    if unsafe { libc::mlock(secret.as_ptr().cast(), secret.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An AF_PACKET raw socket bound to one interface (generator only).
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    pub fn open(interface: &str) -> io::Result<PacketSocket> {
        let ifindex = ifindex(interface)? as i32;
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PacketSocket { fd, ifindex })
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_ifindex = self.ifindex;
        sa.sll_halen = 6;
        let n = frame.len().min(6);
        sa.sll_addr[..n].copy_from_slice(&frame[..n]);
        loop {
            // SAFETY: frame and sa are valid for the given lengths.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sa as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if rc >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            // A full device queue is back-pressure, not failure: wait a bit.
            if e.raw_os_error() == Some(libc::ENOBUFS) || e.kind() == io::ErrorKind::WouldBlock {
                std::thread::sleep(std::time::Duration::from_micros(50));
                continue;
            }
            return Err(e);
        }
    }
}
