//! Stage 6: erasure. Every received frame is zeroed — all of its received
//! bytes — before its buffer can return to the fill ring, selected or not.
//!
//! Invariant kept: `furui_frames_erased_total == furui_frames_received_total`
//! once a batch is done; this is the only place that zeroes, and the
//! pipeline calls it for every frame on every path.

use std::hint::black_box;

/// Zeroes `frame` and returns the number of bytes erased.
#[inline]
pub fn erase(frame: &mut [u8]) -> usize {
    frame.fill(0);
    // The buffer is handed to the kernel afterwards through a ring the
    // compiler cannot see; black_box makes the zeroed bytes observable so
    // the stores can never be treated as dead and removed.
    black_box(&*frame);
    frame.len()
}

/// Appends `data` to a buffer that holds payload bytes without ever
/// leaving a copy behind: when the buffer must grow, the new allocation is
/// made here and the old one is zeroed before it is freed (a plain
/// `Vec` growth would free the old bytes unzeroed).
pub fn extend_zeroing(buf: &mut Vec<u8>, data: &[u8]) {
    resize_zeroing(buf, buf.len() + data.len());
    let at = buf.len() - data.len();
    buf[at..].copy_from_slice(data);
}

/// Resizes a payload buffer to `len` (new bytes zero), zeroing the old
/// allocation if it has to move.
pub fn resize_zeroing(buf: &mut Vec<u8>, len: usize) {
    if len > buf.capacity() {
        let mut grown = Vec::with_capacity(len.max(buf.capacity() * 2).max(256));
        grown.extend_from_slice(buf);
        erase(buf);
        *buf = grown;
    }
    buf.resize(len.max(buf.len()), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_a_payload_buffer_keeps_its_bytes_and_moves_once_per_doubling() {
        let mut b = Vec::new();
        extend_zeroing(&mut b, &[1, 2, 3]);
        let cap = b.capacity();
        extend_zeroing(&mut b, &vec![9; cap]);
        assert_eq!(&b[..4], &[1, 2, 3, 9]);
        assert_eq!(b.len(), 3 + cap);
        resize_zeroing(&mut b, 2);
        assert_eq!(b.len(), 3 + cap, "never shrinks");
    }

    #[test]
    fn erase_zeroes_every_byte_and_counts_them() {
        let mut f = vec![0xa5u8; 1514];
        assert_eq!(erase(&mut f), 1514);
        assert!(f.iter().all(|b| *b == 0));
    }
}
