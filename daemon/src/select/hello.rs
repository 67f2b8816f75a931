//! A flow's first ClientHello on its way to a fingerprint: from TCP (at most
//! two segments, joined in a bounded buffer) or from QUIC Initial packets
//! (decrypted with the public Initial keys, CRYPTO frames joined in a
//! bounded buffer). Every held byte is zeroed when it is no longer needed.

use crate::budget::{Budget, Buf};
use crate::select::quic::{self, CryptoStream};
use crate::select::tls::{client_hello_len, fingerprint_handshake, fingerprint_record, Fingerprints, Transport};

/// Largest ClientHello reassembled from two TCP segments.
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// Client datagrams tried for Initial packets before a UDP flow is given
/// up on (a ClientHello spans one or two Initials in practice).
pub const MAX_QUIC_DATAGRAMS: u8 = 4;

#[derive(Default)]
pub enum Hello {
    #[default]
    Waiting,
    /// First segment of a split TCP ClientHello (bounded, charged to the
    /// worker's reassembly budget), zeroed when dropped.
    Partial(Box<Buf>),
    /// CRYPTO data from the Initial packets seen so far.
    Quic { crypto: Box<CryptoStream>, datagrams: u8 },
    /// Boxed, like the buffer: a flow's state stays small for the flows
    /// that never get this far.
    Done(Option<Box<Fingerprints>>),
}

/// Cheap test before any key derivation: a long-header packet of a version
/// whose Initial keys are public.
fn looks_like_quic_initial(d: &[u8]) -> bool {
    d.len() >= 7
        && d[0] & 0xc0 == 0xc0
        && matches!(
            u32::from_be_bytes([d[1], d[2], d[3], d[4]]),
            quic::VERSION_1 | quic::VERSION_2
        )
}

impl Hello {
    /// The initiator's next TCP payload. A ClientHello split over two
    /// segments is joined in a buffer from `budget`; with the budget spent
    /// the flow gets no fingerprint (the refusal is counted there).
    pub fn feed_tcp(&mut self, payload: &[u8], budget: &Budget) {
        if payload.is_empty() {
            return;
        }
        let next = match self {
            Hello::Waiting => match client_hello_len(payload) {
                Ok(need) if payload.len() >= need + 5 => Hello::Done(fingerprint_record(payload).ok().map(Box::new)),
                Ok(need) if need + 5 <= MAX_CLIENT_HELLO => {
                    // Sized for the whole message: the second segment never
                    // moves it.
                    match budget.buf(need + 5) {
                        Some(mut b) => {
                            b.extend(payload);
                            Hello::Partial(Box::new(b))
                        }
                        None => Hello::Done(None),
                    }
                }
                _ => Hello::Done(None),
            },
            // The second segment completes it, or nothing will.
            Hello::Partial(buf) => {
                let need = client_hello_len(buf).map_or(0, |n| n + 5);
                let take = need.saturating_sub(buf.len()).min(payload.len());
                let fp = if buf.extend(&payload[..take]) && buf.len() >= need {
                    fingerprint_record(buf).ok().map(Box::new)
                } else {
                    None
                };
                // Assigning `Done` drops the buffer, which zeroes it.
                Hello::Done(fp)
            }
            Hello::Quic { .. } | Hello::Done(_) => return,
        };
        *self = next;
    }

    /// The initiator's next UDP datagram; CRYPTO data is gathered in a
    /// buffer from `budget`.
    pub fn feed_quic(&mut self, datagram: &[u8], scratch: &mut Vec<u8>, budget: &Budget) {
        let next = match self {
            Hello::Waiting if looks_like_quic_initial(datagram) => {
                let mut crypto = Box::new(CryptoStream::new(budget));
                Self::quic_step(datagram, scratch, &mut crypto, 0)
            }
            Hello::Quic { crypto, datagrams } => {
                if !looks_like_quic_initial(datagram) {
                    return;
                }
                Self::quic_step(datagram, scratch, crypto, *datagrams)
            }
            Hello::Waiting | Hello::Partial(_) => Hello::Done(None),
            Hello::Done(_) => return,
        };
        *self = next;
    }

    /// One more client datagram: the next state.
    fn quic_step(datagram: &[u8], scratch: &mut Vec<u8>, crypto: &mut Box<CryptoStream>, seen: u8) -> Hello {
        let seen = seen + 1;
        if quic::open_initials(datagram, scratch, crypto).is_err() || crypto.hopeless() {
            return Hello::Done(None);
        }
        if let Some(msg) = crypto.client_hello() {
            return Hello::Done(fingerprint_handshake(msg, Transport::Quic).ok().map(Box::new));
        }
        if seen >= MAX_QUIC_DATAGRAMS {
            return Hello::Done(None);
        }
        Hello::Quic {
            crypto: std::mem::take(crypto),
            datagrams: seen,
        }
    }

    pub fn fingerprint(&self) -> Option<&Fingerprints> {
        match self {
            Hello::Done(fp) => fp.as_deref(),
            _ => None,
        }
    }
}

impl Hello {
    /// Gives up a reassembly in progress (its buffer is zeroed and goes
    /// back to the budget); true if there was one.
    pub fn abandon(&mut self) -> bool {
        if matches!(self, Hello::Partial(_) | Hello::Quic { .. }) {
            *self = Hello::Done(None);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_client_hello_is_charged_to_the_budget_refused_beyond_it_and_given_back() {
        let budget = Budget::new(20_000);
        // A first segment claiming a 16,000-byte ClientHello.
        let claim = [22, 3, 1, 0x3e, 0x84, 1, 0, 0x3e, 0x80, 3, 3];
        let (mut a, mut b) = (Hello::default(), Hello::default());
        a.feed_tcp(&claim, &budget);
        assert!(matches!(a, Hello::Partial(_)));
        assert_eq!((budget.used(), budget.refused()), (16_009, 0));
        // The second does not fit: no fingerprint, counted.
        b.feed_tcp(&claim, &budget);
        assert!(matches!(b, Hello::Done(None)));
        assert_eq!((budget.used(), budget.refused()), (16_009, 1));
        // Given up (the flow stage's timeout): the bytes go back.
        assert!(a.abandon());
        assert!(!a.abandon(), "nothing left to give up");
        assert_eq!(budget.used(), 0);
        assert_eq!(a.fingerprint(), None);
    }
}
