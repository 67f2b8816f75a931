//! Stage 1 (model), for tests and fuzzing only (`testkit`): the classifier
//! end to end in Rust — the walk, the domestic lookups, the verdict — so a
//! differential test can hold `ebpf/furui.bpf.c` to it packet by packet.
//! The daemon never classifies this way: XDP decides in the kernel.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{class_of, walk, Action, Authorized, Class, PrefixSet, XDP_DROP, XDP_PASS, XDP_REDIRECT};

/// Reference model of the BPF classifier: the walk to the innermost IP
/// header (`walk::walk`), then the domestic lookups of its addresses.
pub fn classify_frame(frame: &[u8], domestic: &PrefixSet, decap: &walk::DecapConfig) -> Class {
    class_of_walk(frame, &walk::walk(frame, decap), domestic)
}

/// The class a finished walk gives `frame`.
pub fn class_of_walk(frame: &[u8], w: &walk::Walk, domestic: &PrefixSet) -> Class {
    match w.end {
        walk::End::Fixed(c) => c,
        walk::End::ByAddress {
            ip_offset: o,
            v6: false,
        } => {
            let src = Ipv4Addr::new(frame[o + 12], frame[o + 13], frame[o + 14], frame[o + 15]);
            let dst = Ipv4Addr::new(frame[o + 16], frame[o + 17], frame[o + 18], frame[o + 19]);
            class_of(domestic.contains_v4(src), domestic.contains_v4(dst))
        }
        walk::End::ByAddress { ip_offset: o, v6: true } => {
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&frame[o + 8..o + 24]);
            d.copy_from_slice(&frame[o + 24..o + 40]);
            class_of(
                domestic.contains_v6(Ipv6Addr::from(s)),
                domestic.contains_v6(Ipv6Addr::from(d)),
            )
        }
    }
}

/// The verdict the BPF program returns for a class: (counted action, XDP
/// return code). `socket_bound` says whether the RX queue has an AF_XDP
/// socket in the XSKMAP.
pub fn verdict(class: Class, authorized: &Authorized, inline: bool, socket_bound: bool) -> (Action, u32) {
    let (fb_action, fb_ret) = if inline {
        (Action::Pass, XDP_PASS)
    } else {
        (Action::Drop, XDP_DROP)
    };
    let capturable = class.measure().is_some() && authorized[class as usize];
    if !capturable {
        return (fb_action, fb_ret);
    }
    if socket_bound {
        (Action::Redirect, XDP_REDIRECT)
    } else {
        (Action::NoSocket, fb_ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::NUM_CLASSES;

    #[test]
    fn only_authorized_capture_classes_are_redirected() {
        let mut auth = [false; NUM_CLASSES];
        auth[Class::Transit as usize] = true;
        auth[Class::Domestic as usize] = true; // must be ignored
        assert_eq!(
            verdict(Class::Transit, &auth, false, true),
            (Action::Redirect, XDP_REDIRECT)
        );
        assert_eq!(verdict(Class::Domestic, &auth, false, true), (Action::Drop, XDP_DROP));
        assert_eq!(verdict(Class::Inbound, &auth, true, true), (Action::Pass, XDP_PASS));
        assert_eq!(
            verdict(Class::Transit, &auth, false, false),
            (Action::NoSocket, XDP_DROP)
        );
    }
}
