//! What selection keeps per flow: the handshakes on their way to
//! fingerprints — the initiator's ClientHello (`hello`, JA4/JA3), the
//! responder's ServerHello (JA3S, from its first payload), and each side's
//! SSH KEXINIT (`ssh`, HASSH and hasshServer).
//!
//! Invariant kept: what leaves is fingerprint strings; every buffer is
//! charged to the worker's budget and zeroed when dropped.

use super::hello::Hello;
use super::ssh::{Side, Ssh};
use super::tls::ja3s_record;
use crate::budget::Budget;
use crate::flow::Prints;
use crate::parse::L4;

#[derive(Default)]
pub struct Handshakes {
    pub hello: Hello,
    ssh_client: Ssh,
    ssh_server: Ssh,
    ja3s: Option<Box<str>>,
    /// The responder's first payload went by.
    server_started: bool,
}

impl Handshakes {
    /// One packet's payload, from the initiator or the responder; `cut`
    /// when the snap shortened it (an SSH side being joined is then given
    /// up rather than joined from a partial segment).
    pub fn feed(
        &mut self,
        l4: &L4,
        payload: &[u8],
        cut: bool,
        from_initiator: bool,
        quic_scratch: &mut Vec<u8>,
        budget: &Budget,
    ) {
        if cut {
            let side = if from_initiator {
                &mut self.ssh_client
            } else {
                &mut self.ssh_server
            };
            if side.in_progress() {
                *side = Ssh::Done(None);
            }
        }
        match (l4, from_initiator) {
            (L4::Tcp { .. }, true) => {
                self.hello.feed_tcp(payload, budget);
                self.ssh_client.feed(payload, Side::Client, budget);
            }
            (L4::Udp { .. }, true) => self.hello.feed_quic(payload, quic_scratch, budget),
            (L4::Tcp { .. }, false) if !payload.is_empty() => {
                if !self.server_started {
                    self.server_started = true;
                    if payload.first() == Some(&22) {
                        self.ja3s = ja3s_record(payload).ok().map(Into::into);
                    }
                }
                self.ssh_server.feed(payload, Side::Server, budget);
            }
            _ => {}
        }
    }

    pub fn prints(&self) -> Prints<'_> {
        let tls = self.hello.fingerprint();
        Prints {
            ja4: tls.map(|f| f.ja4.as_str()),
            ja3: tls.map(|f| f.ja3.as_str()),
            ja3s: self.ja3s.as_deref(),
            hassh: self.ssh_client.fingerprint(),
            hassh_server: self.ssh_server.fingerprint(),
        }
    }
}

/// The flow stage keeps a flow's `Handshakes` without looking inside.
impl crate::flow::PerFlow for Handshakes {
    fn fingerprints(&self) -> Prints<'_> {
        self.prints()
    }

    /// Gives up every reassembly in progress (buffers zeroed, given back);
    /// true if there was one. `expire` calls it once
    /// `flow::table::PER_FLOW_TIMEOUT` has passed since the flow began.
    fn abandon(&mut self) -> bool {
        let mut any = self.hello.abandon();
        for s in [&mut self.ssh_client, &mut self.ssh_server] {
            if s.in_progress() {
                *s = Ssh::Done(None);
                any = true;
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::PerFlow;
    use crate::select::ssh::tests::{client_kexinit, server_kexinit, HASSH_CLIENT, HASSH_SERVER};

    #[test]
    fn both_sides_of_an_ssh_flow_are_fingerprinted_and_abandon_gives_buffers_back() {
        let budget = Budget::new(64 * 1024);
        let tcp = L4::Tcp {
            src_port: 1,
            dst_port: 22,
            flags: 0x18,
        };
        let mut h = Handshakes::default();
        let mut scratch = Vec::new();
        h.feed(
            &tcp,
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
            false,
            true,
            &mut scratch,
            &budget,
        );
        h.feed(
            &tcp,
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
            false,
            false,
            &mut scratch,
            &budget,
        );
        h.feed(&tcp, &client_kexinit(), false, true, &mut scratch, &budget);
        let k = server_kexinit();
        h.feed(&tcp, &k[..50], false, false, &mut scratch, &budget);
        assert!(budget.used() > 0);
        assert_eq!(h.prints().hassh, Some(HASSH_CLIENT));
        assert_eq!(h.prints().hassh_server, None);
        assert!(h.abandon());
        assert_eq!(budget.used(), 0);
        assert_eq!(
            h.fingerprints().hassh,
            Some(HASSH_CLIENT),
            "a finished fingerprint stays"
        );
        assert!(!h.abandon());
        let mut h2 = Handshakes::default();
        h2.feed(&tcp, b"SSH-2.0-x\r\n", false, false, &mut scratch, &budget);
        h2.feed(&tcp, &k, false, false, &mut scratch, &budget);
        assert_eq!(h2.prints().hassh_server, Some(HASSH_SERVER));
        assert_eq!(h2.prints().ja3s, None);
    }
}
