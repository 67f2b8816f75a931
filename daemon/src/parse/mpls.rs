//! MPLS label stack: popped (bounded) to reach the IP packet beneath.

use super::{ParseError, Result};

pub const ETHERTYPE_MPLS_UNICAST: u16 = 0x8847;
pub const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
/// Deepest stack we pop; deeper is malformed for our purposes.
pub const MAX_LABELS: usize = 8;

/// Returns what follows the bottom-of-stack label.
pub fn pop_stack(mut b: &[u8]) -> Result<&[u8]> {
    for _ in 0..MAX_LABELS {
        let entry = b.get(..4).ok_or(ParseError::BadMplsStack)?;
        b = &b[4..];
        if entry[2] & 0x01 != 0 {
            // A stack with nothing beneath it is truncated.
            return if b.is_empty() {
                Err(ParseError::BadMplsStack)
            } else {
                Ok(b)
            };
        }
    }
    Err(ParseError::BadMplsStack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_to_bottom_of_stack() {
        let s = [0x18, 0x96, 0x01, 0x01, 0x45, 0x00];
        assert_eq!(pop_stack(&s).unwrap(), &[0x45, 0x00]);
        assert_eq!(
            pop_stack(&[0x18, 0x96, 0x00, 0x01, 0, 0]),
            Err(ParseError::BadMplsStack)
        );
        assert_eq!(pop_stack(&[0u8; 40]), Err(ParseError::BadMplsStack));
    }
}
