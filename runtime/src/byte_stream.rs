//! A codec for protocols without message boundaries: echo servers, proxies,
//! tunnels.

use crate::{Codec, ProtocolError, RecvBuf};

/// Frames are whatever bytes have arrived, in order; there is no message
/// boundary, so nothing is ever malformed or too large (a frame is at most
/// one read budget).
///
/// Allocation-free in steady state, and the bytes are copied neither on the
/// way in nor on the way out:
/// * a large read becomes the frame itself: the receive buffer's storage is
///   handed over ([`RecvBuf::take_all`]) when it fills at least half of it,
///   so such a frame holds at most twice its bytes; a small one is copied
///   into a recycled buffer of this codec's (at most 4 KiB);
/// * a frame's buffer becomes the connection's write buffer when it is
///   encoded (unless bytes are already waiting there, which it then joins),
///   and once written the buffer goes back to the thread's pool
///   ([`recycle_buffer`](crate::recycle_buffer)) for the next read. A frame forwarded to
///   another connection moves there the same way.
///
/// The codec travels with its connection, so nothing is shared between
/// threads; the pool is per thread.
#[derive(Debug, Default)]
pub struct ByteStream {
    /// An empty buffer to decode the next small frame into.
    spare: Vec<u8>,
}

/// Largest spare buffer a connection keeps between frames: a page, enough
/// for a batch of small messages; an idle connection holds at most this
/// much more than without recycling (the write buffer is the runtime's,
/// bounded by it). Larger input is taken without a copy instead.
const KEEP_SPARE: usize = 4 * 1024;

impl Codec for ByteStream {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Vec<u8>>, ProtocolError> {
        if src.is_empty() {
            return Ok(None);
        }
        if src.len() > KEEP_SPARE {
            return Ok(Some(src.take_all()));
        }
        let mut frame = std::mem::take(&mut self.spare);
        frame.extend_from_slice(src.as_slice());
        src.consume(src.len());
        Ok(Some(frame))
    }

    fn encode(&mut self, mut frame: Vec<u8>, dst: &mut Vec<u8>) {
        if dst.is_empty() {
            // The frame's buffer is sent as it is; the one it replaces (empty:
            // written out) is kept for the next small decode, or pooled.
            std::mem::swap(dst, &mut frame);
        } else {
            dst.extend_from_slice(&frame);
            frame.clear();
        }
        if frame.capacity() <= KEEP_SPARE {
            if frame.capacity() > self.spare.capacity() {
                self.spare = frame;
            }
        } else {
            crate::recycle_buffer(frame);
        }
    }

    fn encoded_len(frame: &Vec<u8>) -> usize {
        frame.len()
    }
}
