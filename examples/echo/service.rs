//! The echo service: every byte received is sent back, in order.
//! Shared by the `echo` example and the integration tests.

use baton::{Codec, ConnId, ConnInfo, Ctx, ProtocolError, RecvBuf, Service};

/// Frames are whatever bytes have arrived; there is no message boundary.
///
/// Allocation-free in steady state: a frame's buffer becomes the
/// connection's write buffer when it is encoded, and the write buffer it
/// replaces (written out, empty) is kept to receive the next frame. Both
/// happen wherever the connection's step runs; the codec travels with the
/// connection, so nothing is shared between threads.
#[derive(Debug, Default)]
pub struct EchoCodec {
    /// An empty buffer to decode the next frame into.
    spare: Vec<u8>,
}

/// Largest spare buffer a connection keeps between frames: a page, enough
/// for a batch of small messages; an idle connection holds at most this
/// much more than without recycling (the write buffer is the runtime's,
/// bounded by it).
const KEEP_SPARE: usize = 4 * 1024;

impl Codec for EchoCodec {
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

/// Sends every frame back to the connection it came from.
#[derive(Debug, Default)]
pub struct Echo;

impl Service for Echo {
    type Codec = EchoCodec;
    type ConnState = ();
    type Command = ();

    fn codec(&mut self, _: &ConnInfo) -> EchoCodec {
        EchoCodec::default()
    }

    fn on_open(&mut self, _: &mut Ctx<'_, Self>, _: ConnId) {}

    fn on_frame(&mut self, ctx: &mut Ctx<'_, Self>, conn: ConnId, _: &mut (), frame: Vec<u8>) {
        // A refused send means the connection is closing or gone; the runtime
        // has already logged and counted the reason.
        let _ = ctx.send(conn, frame);
    }
}
