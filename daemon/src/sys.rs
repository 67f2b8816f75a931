//! Small wrappers over the system calls furui makes outside the capture
//! rings: process hardening, interface lookup, limits, BPF links and
//! program queries, and a raw packet socket for the traffic generator.
//! With `capture/`, the only place `unsafe` is allowed.
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

/// The CPUs this process may run on.
pub fn allowed_cpus() -> io::Result<Vec<u32>> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).map_err(io::Error::from)?;
    Ok((0..nix::sched::CpuSet::count() as u32)
        .filter(|c| set.is_set(*c as usize).unwrap_or(false))
        .collect())
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: u32) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu as usize).map_err(io::Error::from)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(io::Error::from)
}

// <asm-generic/socket.h>; the libc crate lacks the last two on some targets.
const SO_BUSY_POLL: libc::c_int = 46;
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

fn setsockopt_int(fd: std::os::fd::RawFd, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed with it; an
    // invalid fd or option is an error return, never memory unsafety.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Preferred busy polling on a socket: the kernel runs the device's NAPI
/// poll in the caller's thread for up to `usecs` per call, `budget`
/// packets at a time, and defers interrupts while the caller keeps polling.
pub fn set_busy_poll(fd: std::os::fd::RawFd, usecs: u32, budget: u32) -> io::Result<()> {
    setsockopt_int(fd, SO_PREFER_BUSY_POLL, 1)?;
    setsockopt_int(fd, SO_BUSY_POLL, usecs as libc::c_int)?;
    setsockopt_int(fd, SO_BUSY_POLL_BUDGET, budget as libc::c_int)
}

/// One non-blocking receive call on a busy-polled socket: it drives the
/// device's NAPI poll (AF_XDP delivers through the rings, not this call).
pub fn busy_poll_once(fd: std::os::fd::RawFd) {
    // SAFETY: a zero-length receive into no buffer; the kernel writes nothing.
    let _ = unsafe {
        libc::recvfrom(
            fd,
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
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

/// Locks the pages holding `v` (a key schedule, a signing key) into RAM,
/// like `lock_in_ram`; `v` must not move afterwards (keep it boxed or in
/// an `Arc`).
pub fn lock_value_in_ram<T>(v: &T) -> io::Result<()> {
    // SAFETY: a shared borrow of `v` is readable for size_of::<T>() bytes.
    let bytes = unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) };
    lock_in_ram(bytes)
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

/// Creates a BPF link attaching XDP program `prog_fd` to `ifindex` with
/// XDP `flags`; dropping the returned fd detaches it.
pub fn bpf_xdp_link_create(prog_fd: std::os::fd::RawFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
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
pub fn xdp_attached_prog_id(ifindex: u32) -> u32 {
    let mut id: u32 = 0;
    // SAFETY: id is a valid out-pointer for the duration of the call.
    let rc = unsafe { libbpf_sys::bpf_xdp_query_id(ifindex as i32, 0, &mut id) };
    if rc < 0 {
        0
    } else {
        id
    }
}

/// The name of loaded BPF program `id`, if it can be read.
pub fn bpf_prog_name(id: u32) -> Option<String> {
    // SAFETY: plain syscall wrapper; a negative return is an error.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just returned to us and is owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed is valid for this plain C struct.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info and len are valid for writes of `len` bytes.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    if rc < 0 {
        return None;
    }
    let bytes: Vec<u8> = info.name.iter().map(|c| *c as u8).collect();
    Some(
        std::ffi::CStr::from_bytes_until_nul(&bytes)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// Detaches a netlink-attached XDP program from `ifindex` in the mode
/// `flags` names; false if the kernel refused.
pub fn xdp_detach(ifindex: u32, flags: u32) -> bool {
    // SAFETY: plain syscall wrapper with no pointers.
    unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, flags, std::ptr::null()) == 0 }
}
