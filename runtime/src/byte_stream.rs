//! A codec for protocols without message boundaries: echo servers, proxies,
//! tunnels.

use crate::{Codec, ProtocolError, RecvBuf};

/// Frames are whatever bytes have arrived, in order; there is no message
/// boundary, so nothing is ever malformed or too large (a frame is at most
/// one read budget).
///
/// Allocation-free in steady state, and the bytes are not copied on the way
/// out: a frame's buffer becomes the connection's write buffer when it is
/// encoded (unless bytes are already waiting there, which it then joins),
/// and the written-out buffer it replaces is kept to receive the next
/// frame. A frame forwarded to another connection moves there the same
/// way. The codec travels with its connection, so nothing is shared between
/// threads.
#[derive(Debug, Default)]
pub struct ByteStream {
    /// An empty buffer to decode the next frame into.
    spare: Vec<u8>,
}

/// Largest spare buffer a connection keeps between frames: a page, enough
/// for a batch of small messages; an idle connection holds at most this
/// much more than without recycling (the write buffer is the runtime's,
/// bounded by it).
const KEEP_SPARE: usize = 4 * 1024;

impl Codec for ByteStream {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn decode(&mut self, src: &mut RecvBuf) -> Result<Option<Vec<u8>>, ProtocolError> {
        if src.is_empty() {
            return Ok(None);
        }
        let mut frame = std::mem::take(&mut self.spare);
        frame.extend_from_slice(src.as_slice());
        src.consume(src.len());
        Ok(Some(frame))
    }

    fn encode(&mut self, mut frame: Vec<u8>, dst: &mut Vec<u8>) {
        if dst.is_empty() {
            // The frame's buffer is sent as it is; the one it replaces (empty:
            // written out) is kept for the next decode.
            std::mem::swap(dst, &mut frame);
            if frame.capacity() <= KEEP_SPARE && frame.capacity() > self.spare.capacity() {
                self.spare = frame;
            }
        } else {
            dst.extend_from_slice(&frame);
        }
    }

    fn encoded_len(frame: &Vec<u8>) -> usize {
        frame.len()
    }
}
